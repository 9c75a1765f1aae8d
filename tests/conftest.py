"""Shared helpers: run `adx` inside a temporary directory, in this process or in its own.

`run_adx_in_process` runs the CLI's own code (`anomaly_cli.cli.main`, Hydra's
run folder, the verbs' error handling) inside the test process, so a run costs
its work and not a Python start and a TensorFlow import (6-8 s on a laptop).
`run_adx` starts a real `adx` process: tests of what only a process shows
(exit by signal, native log lines on file descriptor 2, imports at start-up)
use it. Both return a `subprocess.CompletedProcess`.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ADX = str(Path(sys.executable).with_name("adx"))
REPO = Path(__file__).resolve().parents[1]
# make test runs two workers on (often) two cores: one TensorFlow thread each
# instead of two pools fighting over both (about 8 % faster on 2 cores, the
# model zoo measured). Runs started from tests inherit it; set it to override.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

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
    "history.csv",
    "plots/roc.png",
    "plots/score_hist.png",
    "plots/pr.png",
    "plots/loss.png",
    "report.html",
    "status.json",
    "warnings.json",
)
FAST_TRAIN = ("trainer.verbose=0",)
# The smallest data that trains in a couple of seconds: what `debug=tiny` sets,
# spelt out for tests that read `dataset=synthetic` back from a run's overrides.
# Elsewhere "debug=tiny" says the same (and two quiet epochs) in one word.
# Every epoch saved (trainer.checkpoint_every=auto saves a tiny model less often),
# so what an interrupted test run keeps is known.
TINY = (
    "dataset=synthetic",
    "dataset.n_normal=100",
    "dataset.n_anomaly=30",
    "trainer.checkpoint_every=1",
)


def adx_env(cwd: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment `adx` runs with in a test: `base` (this process's), runs in
    cwd/outputs, TensorFlow quiet, and never ADX_DEBUG from the developer's shell."""
    env = {
        **(os.environ if base is None else base),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "ADX_OUTPUT_DIR": str(cwd / "outputs"),
    }
    env.pop("ADX_DEBUG", None)
    return env


def run_adx(
    *args: str, cwd: Path, timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`adx ARGS` as a process of its own in `cwd`; runs land in cwd/outputs. `env`
    adds variables. For what only a real process shows; else `run_adx_in_process`."""
    return _run([ADX, *args], cwd, timeout, env)


def run_adx_in_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`adx ARGS` run by the CLI's own code in this process, as `run_adx` runs it.

    The same `main`, Hydra app, run folder (`.hydra/` included), artifacts,
    exit codes and `adx: ...` lines on stderr as a process gets; what is
    printed is captured at Python level. A run starts from what a new process
    starts from (see `_fresh_process_state`) and leaves this process as it
    found it: working directory, environment, argv, logging, warning filters,
    the SIGTERM handler, Hydra's global state and Keras' session.

    What it does not show: native (C++) output on file descriptor 2, exits by
    signal, and imports at start-up. Tests of those use `run_adx`.
    """
    from anomaly_cli.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with (
        _fresh_process_state(cwd, env),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            main(list(args))
        except SystemExit as done:
            code = done.code
        except Exception:  # what Python prints and exits 1 with in a process
            traceback.print_exc()
            code = 1
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)  # sys.exit("text"), as Python does
            code = 1
    return subprocess.CompletedProcess(
        ["adx", *args], code or 0, stdout.getvalue(), stderr.getvalue()
    )


# Python's warning filters in a new process without -W (pytest installs its own).
_PROCESS_WARNING_FILTERS = (
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
)


@contextlib.contextmanager
def _fresh_process_state(cwd: Path, env: dict[str, str] | None) -> Iterator[None]:
    """What an `adx` process starts from, for one in-process run; restored after it.

    adx keeps per-process state that a second run in the same process must
    not inherit: the run folders the run-dir resolver claimed (keyed by
    parent and label, so a second run would get the first one's folder), the
    failed --multirun jobs, and the stage in its error lines. Hydra keeps its
    global config search path and the HydraConfig of the last job, and
    configures the root logger (its file handler writes the run's adx.log).

    Hydra's logging set-up (`logging.config.dictConfig`) closes every logging
    handler of the process. In a new process there are none yet; here there
    are pytest's and absl's (whose close() closes its stream unless that is
    sys.stderr at the time: here the capture below, so pytest's own stderr
    went). So the run sees an empty handler list, as a new process has.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from anomaly_cli import resolvers
    from anomaly_cli.tasks import common, lifecycle

    saved_cwd, saved_argv, saved_env = os.getcwd(), sys.argv[:], dict(os.environ)
    root = logging.getLogger()
    saved_root = (root.level, root.handlers[:], root.disabled)
    saved_handlers = (logging._handlerList[:], dict(logging._handlers))
    logging._handlerList[:] = []
    resolvers._claimed.clear()
    resolvers._created_parents.clear()
    resolvers._claiming = True
    common._failures.clear()
    lifecycle.set_stage("starting")
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None
    _clear_keras_session()
    os.environ.clear()
    os.environ.update({**adx_env(cwd, saved_env), **(env or {})})
    os.chdir(cwd)
    try:
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in reversed(_PROCESS_WARNING_FILTERS):
                warnings.filterwarnings(action, category=category, module=module)
            yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv  # main() sets a new list
        for handler in root.handlers[:]:
            if handler not in saved_root[1]:
                root.removeHandler(handler)
                handler.close()  # the run's adx.log
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]
        root.disabled = saved_root[2]
        made = logging._handlerList[:]
        logging._handlerList[:] = saved_handlers[0] + made
        logging._handlers.clear()
        logging._handlers.update(saved_handlers[1])
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
        resolvers._claimed.clear()
        resolvers._created_parents.clear()
        common._failures.clear()
        _clear_keras_session()


def _clear_keras_session() -> None:
    """Keras' layer names, graph and seed state, as a new process has them."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


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
    """A finished `adx train` run in cwd/outputs (in this process), for tests to read."""
    result = run_adx_in_process("train", *FAST_TRAIN, *overrides, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return latest(cwd)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` across processes (the test workers)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared_folder(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], Path]
) -> Path:
    """What `make(folder)` returns, made once per test session for every worker.

    Under pytest-xdist the first worker to ask makes it in the folder all
    workers share (the pytest-xdist docs' recipe); the others wait for it and
    reuse it. A `make` that fails leaves nothing behind, so the next worker
    tries again. Tests copy what they change (never change it in place).
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return make(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent
    made = root / f"{name}.made"
    with _locked(root / f"{name}.lock"):
        if made.is_file():
            return Path(made.read_text())
        folder = root / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        result = make(folder)
        made.write_text(str(result))
        return result


def shared_run(tmp_path_factory: pytest.TempPathFactory, name: str, *overrides: str) -> Path:
    """A finished train run that every test worker of this session reads, trained once."""
    return shared_folder(tmp_path_factory, name, lambda cwd: train_run(cwd, *overrides))


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_run(tmp_path_factory, "synthetic", "dataset=synthetic", "trainer.epochs=15")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch run to copy and damage (never change it in place)."""
    return shared_run(tmp_path_factory, "tiny", *TINY, "trainer.epochs=2")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_run(tmp_path_factory, "digits", "dataset=digits", "trainer.epochs=30")


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


# Test files whose tests take longest (a process per README command), run first so
# that pytest-xdist's workers share them instead of one worker finishing them last.
LONGEST_FIRST = ("tests/test_readme.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(REPO).as_posix()
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: pytest's order within each rank
