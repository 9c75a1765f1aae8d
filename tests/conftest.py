"""Shared helpers: run `adx` in a subprocess inside a temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ADX = str(Path(sys.executable).with_name("adx"))
REPO = Path(__file__).resolve().parents[1]

# Every artifact a train or evaluate run directory must hold.
RUN_ARTIFACTS = (
    ".hydra/config.yaml",
    ".hydra/overrides.yaml",
    "adx.log",
    "config.yaml",
    "checkpoints/best.keras",
    "scores.csv",
    "roc.csv",
    "pr.csv",
    "threshold.json",
    "metrics.json",
    "metrics.csv",
    "metrics.txt",
    "run.json",
    "data.json",
    "plots/roc.png",
    "plots/score_hist.png",
    "status.json",
    "warnings.json",
)
FAST_TRAIN = ("trainer.verbose=0",)
# The smallest data that trains in a couple of seconds.
TINY = ("dataset=synthetic", "dataset.n_normal=100", "dataset.n_anomaly=30")


def adx_env(cwd: Path) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "ADX_OUTPUT_DIR": str(cwd / "outputs")}
    env.pop("ADX_DEBUG", None)
    return env


def run_adx(
    *args: str, cwd: Path, timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`adx ARGS` in `cwd`; runs land in cwd/outputs. `env` adds variables."""
    return _run([ADX, *args], cwd, timeout, env)


def _run(
    command: list[str], cwd: Path, timeout: int, env: dict[str, str] | None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env={**adx_env(cwd), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_adx_with(
    setup: str, *args: str, cwd: Path, timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`adx ARGS` in a Python process that first runs `setup`, code that injects a
    fault into the real CLI (see tests/faults.py). SIGINT is handled as in a terminal,
    whatever the pytest worker passes down."""
    code = "\n".join(
        [
            "import signal, sys",
            "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})",
            "signal.signal(signal.SIGINT, signal.default_int_handler)",
            setup,
            "from anomaly_cli.cli import main",
            "main(sys.argv[1:])",
        ]
    )
    return _run([sys.executable, "-c", code, *args], cwd, timeout, env)


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], *fragments: str, code: int = 2
) -> str:
    """Exit `code`, exactly one `adx: error:` line holding every fragment, no traceback."""
    assert result.returncode == code, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("adx: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def run_dirs(cwd: Path) -> set[str]:
    out = cwd / "outputs"
    return {p.name for p in out.iterdir() if p.name != "latest"} if out.exists() else set()


def latest(cwd: Path) -> Path:
    return (cwd / "outputs" / "latest").resolve()


def train_run(cwd: Path, *overrides: str) -> Path:
    result = run_adx("train", *FAST_TRAIN, *overrides, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return latest(cwd)


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_run(tmp_path_factory.mktemp("synthetic"), "dataset=synthetic", "trainer.epochs=15")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch run to copy and damage (never change it in place)."""
    return train_run(tmp_path_factory.mktemp("tiny"), *TINY, "trainer.epochs=2")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_run(tmp_path_factory.mktemp("digits"), "dataset=digits", "trainer.epochs=30")


def compose_config(verb: str, *overrides: str) -> Any:
    """The config `adx <verb> OVERRIDES` would run with, composed in-process."""
    from hydra import compose, initialize_config_dir

    from anomaly_cli.config_dir import config_dir
    from anomaly_cli.resolvers import register

    register()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="adx"):
        return compose(verb, overrides=list(overrides))


def train_in_process(cwd: Path, *overrides: str) -> tuple[Path, dict]:
    """`adx train` without a subprocess, for data that only exists in this process
    (tfds.testing.mock_data). Returns the run dir and the test metrics."""
    from anomaly_cli.tasks.train import train

    os.environ["ADX_OUTPUT_DIR"] = str(cwd / "outputs")
    cfg = compose_config("train", *FAST_TRAIN, *overrides)
    (cwd / "outputs").mkdir(exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="in_process_train_", dir=cwd / "outputs"))
    return run_dir, train(cfg, run_dir)
