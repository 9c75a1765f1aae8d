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
)
FAST_TRAIN = ("trainer.verbose=0",)


def adx_env(cwd: Path) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "ADX_OUTPUT_DIR": str(cwd / "outputs")}
    env.pop("ADX_DEBUG", None)
    return env


def run_adx(
    *args: str, cwd: Path, timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`adx ARGS` in `cwd`; runs land in cwd/outputs. `env` adds variables."""
    return subprocess.run(
        [ADX, *args],
        cwd=cwd,
        env={**adx_env(cwd), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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
