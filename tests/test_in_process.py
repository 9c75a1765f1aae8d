"""`run_adx_in_process` (tests/conftest.py) stands in for a real `adx` process.

Most end-to-end tests run the CLI in the test process; these check that such a
run writes what a process writes, says what it says, and leaves the test
process as it found it.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import assert_one_line_error, latest, run_adx, run_adx_in_process, run_dirs


def _files(run: Path) -> list[str]:
    # TensorBoard names its event files (tb/) by the time, host and process id.
    names = (str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    return sorted(re.sub(r"events\.out\.tfevents\..*", "events", name) for name in names)


def _printed(stdout: str) -> list[str]:
    """What a run printed, less its log lines (they hold the time)."""
    return [line for line in stdout.splitlines() if not re.match(r"\[\d{4}-\d\d-\d\d ", line)]


def test_a_train_run_writes_the_same_folder_in_process_as_in_a_process(tmp_path: Path):
    args = ("train", "debug=tiny", "trainer.epochs=1")
    own, here = tmp_path / "own", tmp_path / "here"
    own.mkdir(), here.mkdir()
    by_process = run_adx(*args, cwd=own)
    in_process = run_adx_in_process(*args, cwd=here)
    assert by_process.returncode == in_process.returncode == 0, by_process.stderr[-2000:]
    first, second = latest(own), latest(here)
    assert len(_files(first)) > 15 and _files(first) == _files(second)
    for name in ("scores.csv", "metrics.json", ".hydra/overrides.yaml"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    config = (first / "config.yaml").read_text()  # holds the output folder's path
    assert (
        str(own) in config
        and config.replace(str(own), str(here)) == (second / "config.yaml").read_text()
    )
    printed = _printed(in_process.stdout)
    assert any("| AUROC" in line for line in printed)
    assert _printed(by_process.stdout.replace(str(first), str(second))) == printed


def test_a_refused_command_ends_the_same_in_process_as_in_a_process(tmp_path: Path):
    args = ("train", "trainer.epochs=0")
    by_process, in_process = run_adx(*args, cwd=tmp_path), run_adx_in_process(*args, cwd=tmp_path)
    line = assert_one_line_error(in_process, "trainer.epochs=0 must be at least 1")
    assert assert_one_line_error(by_process) == line
    assert (by_process.stdout, by_process.stderr) == (in_process.stdout, in_process.stderr)


def _scored_run(root: Path) -> Path:
    """A folder `adx sweep` reads (scores.csv only): a Hydra run without TensorFlow."""
    run = root / "scored"
    run.mkdir()
    labels = np.r_[np.zeros(30, int), np.ones(10, int)]
    scores = np.random.default_rng(0).random(40) + labels * 0.5
    frame = pd.DataFrame({"id": range(40), "label": labels, "score": scores, "prediction": 0})
    frame.to_csv(run / "scores.csv", index=False)
    return run


def _process_state() -> tuple:
    """What a run must leave in the test process as it found it."""
    root = logging.getLogger()
    return (
        os.getcwd(),
        dict(os.environ),
        sys.argv[:],
        root.handlers[:],
        root.level,
        warnings.filters[:],
        signal.getsignal(signal.SIGTERM),
    )


def test_runs_in_a_row_get_their_own_folders_and_leave_the_process_as_it_was(tmp_path: Path):
    run = _scored_run(tmp_path)
    before = _process_state()
    for _ in range(2):
        result = run_adx_in_process("sweep", f"run={run}", "threshold=0.2:0.8", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "| Metric" in result.stdout
    assert _process_state() == before
    folders = run_dirs(tmp_path)
    assert len(folders) == 2  # not the first run's folder claimed again
    logging.getLogger("adx").warning("logged after the runs")
    for name in folders:
        log = tmp_path / "outputs" / name / "adx.log"
        assert log.is_file() and "logged after the runs" not in log.read_text()
