"""status.json and the warnings list, without running a verb."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from anomaly_cli.tasks import lifecycle


def test_warnings_from_loggers_and_python_are_collected_once_with_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    log = lifecycle.WarningLog()
    with log.collecting():
        logging.getLogger("adx").warning("threshold: fell back to the percentile")
        logging.getLogger("adx").warning("threshold: fell back to the percentile")
        logging.getLogger("adx").info("not a warning")
        warnings.warn("a deprecated thing", UserWarning, stacklevel=1)
    logging.getLogger("adx").warning("after the run: not collected")
    log.report(tmp_path)
    saved = json.loads((tmp_path / "warnings.json").read_text())
    assert saved == [
        {"source": "adx", "message": "threshold: fell back to the percentile", "count": 2},
        {"source": "UserWarning", "message": "a deprecated thing", "count": 1},
    ]
    err = capsys.readouterr().err
    assert "adx: 2 warning(s) during this run" in err
    assert "  - threshold: fell back to the percentile (2x)" in err


def test_a_run_without_warnings_saves_an_empty_list_and_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    lifecycle.WarningLog().report(tmp_path)
    assert json.loads((tmp_path / "warnings.json").read_text()) == []
    assert capsys.readouterr().err == ""


def test_a_live_writer_is_told_apart_from_a_dead_one(tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    for pid, alive in ((os.getppid(), True), (int(dead.stdout), False)):
        status = {"status": "running", "pid": pid, "host": socket.gethostname()}
        (tmp_path / "status.json").write_text(json.dumps(status))
        assert lifecycle.running_elsewhere(tmp_path) == (pid if alive else None)
    (tmp_path / "status.json").write_text(json.dumps({**status, "status": "finished"}))
    assert lifecycle.running_elsewhere(tmp_path) is None
    (tmp_path / "status.json").write_text("{damaged")
    assert lifecycle.running_elsewhere(tmp_path) is None
