"""Checks before Hydra creates a folder: output locations and existing runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomaly_cli import preflight
from anomaly_cli.errors import AdxUserError


def test_an_output_folder_needs_a_writable_folder_above_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    preflight.creatable(tmp_path / "a" / "b", "paths.output_dir")  # made on demand: fine
    (tmp_path / "file").write_text("")
    with pytest.raises(AdxUserError, match="is a file, not a folder"):
        preflight.creatable(tmp_path / "file", "paths.output_dir")
    with pytest.raises(AdxUserError, match=r"cannot be created: .*file is a file"):
        preflight.creatable(tmp_path / "file" / "sub", "paths.output_dir")
    # Tests run as root, who may write anywhere: stand in for a read-only folder.
    monkeypatch.setattr(preflight.os, "access", lambda *args: False)
    with pytest.raises(AdxUserError, match=f"no write permission in {tmp_path}"):
        preflight.creatable(tmp_path / "new", "hydra.run.dir")


def test_a_multirun_checks_every_job_before_the_first_starts():
    assert preflight.preflight("train", ["-m", "trainer.epochs=1,2", "model.latent_dim=2,3"]) == 4
    with pytest.raises(
        AdxUserError, match=r"threshold.q=101.*\(job 1: trainer.epochs=1 threshold.q=101\)"
    ):
        preflight.preflight("train", ["-m", "trainer.epochs=1,2", "threshold.q=5,101"])


def test_resume_may_write_into_its_own_folder_only(tmp_path: Path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    values = {"hydra.run.dir": str(run), "resume": str(run)}
    preflight._check_destination("train", values, multirun=False)
    with pytest.raises(AdxUserError, match="already holds a run"):
        preflight._check_destination("evaluate", values, multirun=False)
