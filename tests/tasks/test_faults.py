"""Faults during a run: interrupts at every stage, a full disk, bugs, a failed --multirun job.

Each fault is put at an exact stage by patching the real CLI (tests/faults.py),
then the test checks what the user is told, the exit code, what is kept on
disk, and that the run can be continued.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import (
    TINY,
    assert_one_line_error,
    latest,
    run_adx,
    run_adx_in_process,
    run_adx_with,
    run_dirs,
)
from tests.faults import disk_full_writing, killed_writing, raise_at, signal_at

SHORT = (*TINY, "trainer.verbose=0", "trainer.patience=50")


def _status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def _only_run(cwd: Path) -> Path:
    (name,) = run_dirs(cwd)
    return cwd / "outputs" / name


def _temporaries(run: Path) -> list[Path]:
    """Files the atomic writer leaves when killed mid-write: `.name.XXXXXXXX.suffix`."""
    return [p for p in run.rglob(".*.*") if p.is_file() and ".hydra" not in p.parts]


def _resumable(run: Path) -> None:
    """What `adx train resume=<run>` checks before it starts, without training again:
    for a state whose continuation another test here runs in full."""
    from anomaly_cli.training.state import resumable_overrides

    assert "dataset=synthetic" in resumable_overrides(run)


def _resume(run: Path, cwd: Path, *extra: str) -> None:
    """Go on from what a faulted `adx` process left (in this process: what is
    tested is the folder it left, not a second start-up)."""
    result = run_adx_in_process("train", f"resume={run}", *extra, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _status(run)["status"] == "finished"
    assert (run / "metrics.json").is_file()


def _ctrl_c(target: str, stage: str, epochs: int, cwd: Path) -> Path:
    """Train with Ctrl-C arriving when `target` is called; check what adx says."""
    fault = signal_at(target, "SIGINT")
    result = run_adx_with(fault, "train", *SHORT, f"trainer.epochs={epochs}", cwd=cwd)
    assert result.returncode == 130, result.stderr[-3000:]
    run = _only_run(cwd)
    assert f"adx: interrupted while {stage}; go on with: adx train resume={run}" in (
        result.stderr.splitlines()
    )
    assert "Traceback" not in result.stderr
    return run


def test_ctrl_c_while_loading_data_leaves_a_run_that_resume_starts(tmp_path: Path):
    run = _ctrl_c("anomaly_cli.data.loader.load_splits", "loading data", 2, tmp_path)
    status = _status(run)
    assert (status["status"], status["stage"]) == ("interrupted", "loading data")
    assert not (run / "checkpoints").exists()
    assert latest(tmp_path) == run  # `adx train resume=outputs/latest` works too

    _resume(run, tmp_path)
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [1, 2]


def test_ctrl_c_while_scoring_keeps_the_model_and_resume_only_scores(tmp_path: Path):
    run = _ctrl_c("anomaly_cli.tasks.assess.score_samples", "scoring", 2, tmp_path)
    assert (run / "checkpoints/best.keras").is_file() and not (run / "scores.csv").exists()

    _resume(run, tmp_path)
    info = json.loads((run / "run.json").read_text())
    assert (info["resumed_at_epoch"], info["epochs_run"]) == (2, 2)  # nothing retrained


def test_ctrl_c_while_drawing_plots_leaves_no_half_image(tmp_path: Path):
    run = _ctrl_c("anomaly_cli.reporting.plots.score_histogram", "drawing plots", 1, tmp_path)
    assert (run / "plots/roc.png").is_file() and not (run / "plots/score_hist.png").exists()
    assert _temporaries(run) == []
    _resumable(run)  # the same state as an interrupt while scoring, resumed above


def test_sigterm_from_a_scheduler_is_an_interrupt_with_exit_143(tmp_path: Path):
    fault = signal_at("anomaly_cli.training.fit.fit_model", "SIGTERM")
    result = run_adx_with(fault, "train", *SHORT, "trainer.epochs=1", cwd=tmp_path)
    assert result.returncode == 143, result.stderr[-3000:]
    run = _only_run(tmp_path)
    assert f"stopped by SIGTERM while training; go on with: adx train resume={run}" in (
        result.stderr
    )
    assert _status(run)["status"] == "interrupted"


def test_sigkill_while_loading_data_leaves_a_folder_that_resume_starts(tmp_path: Path):
    fault = signal_at("anomaly_cli.data.loader.load_splits", "SIGKILL")
    result = run_adx_with(fault, "train", *SHORT, "trainer.epochs=1", cwd=tmp_path)
    assert result.returncode == -9
    run = _only_run(tmp_path)
    assert _status(run)["status"] == "running"  # with the id of a process that is gone
    assert not (run / "checkpoints/state.json").exists()
    _resumable(run)  # starts from the beginning, as after Ctrl-C while loading (above)


def test_sigkill_while_saving_a_checkpoint_leaves_nothing_after_resume(tmp_path: Path):
    fault = killed_writing("best.keras", call=2)
    result = run_adx_with(fault, "train", *SHORT, "trainer.epochs=3", cwd=tmp_path)
    assert result.returncode == -9
    run = _only_run(tmp_path)
    leftovers = _temporaries(run)
    assert [p.name.split(".")[1] for p in leftovers] == ["best"]  # the half-written file
    assert json.loads((run / "checkpoints/state.json").read_text())["epochs_done"] == 1

    _resume(run, tmp_path)
    assert _temporaries(run) == []
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [1, 2, 3]


def test_interrupted_evaluate_leaves_no_folder(tiny_run: Path, tmp_path: Path):
    fault = signal_at("anomaly_cli.tasks.assess.score_samples", "SIGINT")
    result = run_adx_with(fault, "evaluate", f"run={tiny_run}", cwd=tmp_path)
    assert result.returncode == 130, result.stderr[-3000:]
    assert "interrupted while scoring; nothing was kept" in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_full_disk_while_checkpointing_keeps_the_last_good_epoch(tmp_path: Path):
    fault = disk_full_writing("state.json", call=2)
    result = run_adx_with(fault, "train", *SHORT, "trainer.epochs=3", cwd=tmp_path)
    run = _only_run(tmp_path)
    assert_one_line_error(
        result, "No space left on device", "free space", f"adx train resume={run} goes on"
    )
    state = json.loads((run / "checkpoints/state.json").read_text())
    assert (state["epochs_done"], state["last_checkpoint"]) == (1, "last-0001.keras")
    assert _temporaries(run) == []
    assert _status(run)["status"] == "failed"

    _resume(run, tmp_path)
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [1, 2, 3]


def test_full_disk_after_training_keeps_the_trained_model(tmp_path: Path):
    # The disk is still full when adx records the failure in status.json (write 2).
    fault = disk_full_writing("metrics.json") + disk_full_writing("status.json", call=2)
    result = run_adx_with(fault, "train", *SHORT, "trainer.epochs=1", cwd=tmp_path)
    run = _only_run(tmp_path)
    assert_one_line_error(result, "No space left on device", f"the trained model is kept in {run}")
    assert (run / "checkpoints/best.keras").is_file()
    assert _status(run)["status"] == "running"  # what could be written before the disk filled
    _resumable(run)  # trained, not scored: as after Ctrl-C while scoring


def test_a_bug_is_exit_1_with_the_traceback_in_the_log_not_on_the_terminal(tmp_path: Path):
    fault = raise_at("anomaly_cli.data.loader.load_splits", "ZeroDivisionError('boom')")
    result = run_adx_with(fault, "train", *SHORT, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    run = _only_run(tmp_path)
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("adx: ")]
    assert "internal error while loading data: ZeroDivisionError: boom" in line
    assert f"traceback is in {run / 'adx.log'}" in line and "ADX_DEBUG=1" in line
    assert "Traceback" not in result.stderr
    log = (run / "adx.log").read_text()
    assert "Traceback (most recent call last)" in log and "ZeroDivisionError: boom" in log
    assert _status(run)["status"] == "failed"

    shutil.rmtree(tmp_path / "outputs")
    debug = run_adx_with(fault, "train", *SHORT, cwd=tmp_path, env={"ADX_DEBUG": "1"})
    assert debug.returncode == 1 and "ZeroDivisionError: boom" in debug.stderr


def test_a_failed_multirun_job_does_not_stop_the_jobs_after_it(tmp_path: Path):
    result = run_adx_in_process(
        "train", "-m", "dataset.normal_class=11,0", "trainer.epochs=1", "trainer.verbose=0",
        "dataset.preprocess.image_size=8", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "adx: job 0_conv_ae_digits: error: dataset.normal_class=11" in result.stderr
    assert "adx: 1 of 2 jobs failed: 0_conv_ae_digits" in result.stderr
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["0_conv_ae_digits", "1_conv_ae_digits", "plots"]
    assert (sweep / "1_conv_ae_digits" / "metrics.json").is_file()
    # The failed job's folder is kept as a record (no model in it) for the sweep's summary.
    failed = sweep / "0_conv_ae_digits"
    assert _status(failed)["status"] == "failed" and _status(failed)["exit_code"] == 2
    assert "dataset.normal_class=11" in _status(failed)["error"]
    assert "dataset.normal_class=11" in (failed / "adx.log").read_text()
    assert not (failed / "checkpoints").exists()
    listed = "skipped job 0 (dataset.normal_class=11), folder 0_conv_ae_digits: train failed"
    assert listed in (sweep / "summary.txt").read_text() and listed in result.stdout


def test_warnings_are_listed_at_the_end_and_saved(tmp_path: Path):
    # conv_ae has no dropout, so Monte Carlo dropout warns that every pass is the same.
    # A process of its own: nothing but the list may reach its stderr (checked below).
    result = run_adx(
        "train", *SHORT, "trainer.epochs=1", "scoring.mc_dropout.samples=2", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = latest(tmp_path)
    saved = json.loads((run / "warnings.json").read_text())
    assert [w["source"] for w in saved] == ["adx"] and saved[0]["count"] == 2  # val and test
    assert "the model has no dropout" in saved[0]["message"]
    lines = result.stderr.splitlines()
    assert lines[0] == f"adx: 1 warning(s) during this run (saved in {run / 'warnings.json'}):"
    assert lines[1].startswith("  - scoring.mc_dropout.samples=2, but the model has no dropout")
    # Nothing else: TensorFlow's native start-up lines (I0000 ...) go to adx.log.
    assert len(lines) == 2, result.stderr


def test_a_resume_of_a_run_that_another_process_is_writing_is_refused(
    tiny_run: Path, tmp_path: Path
):
    import os
    import socket

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    status = {"status": "running", "pid": os.getpid(), "host": socket.gethostname()}
    (run / "status.json").write_text(json.dumps(status))
    # A process of its own: the writer named in status.json is this test's process.
    result = run_adx("train", f"resume={run}", cwd=tmp_path)
    assert_one_line_error(result, f"is still being trained by process {os.getpid()}")


@pytest.mark.parametrize("verb", ["train", "evaluate"])
def test_failed_run_leaves_no_empty_outputs_folder(verb: str, tiny_run: Path, tmp_path: Path):
    # Fails after Hydra made the run folder (and outputs/ for it): both go again.
    args = (
        ("train", "dataset.normal_class=11")
        if verb == "train"
        else ("evaluate", f"run={tiny_run}", "dataset.n_anomaly=0")
    )
    result = run_adx_in_process(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert not (tmp_path / "outputs").exists()


# SIGKILL while scoring leaves the state Ctrl-C while scoring leaves (tested above, with
# its resume), so that case runs in `make test-all` only.
SIGKILL_STAGES = [pytest.param("scoring", marks=pytest.mark.slow), "drawing plots"]


@pytest.mark.parametrize("stage", SIGKILL_STAGES)
def test_sigkill_after_training_leaves_a_resumable_run(stage: str, tmp_path: Path):
    fault = (
        signal_at("anomaly_cli.tasks.assess.score_samples", "SIGKILL")
        if stage == "scoring"
        else killed_writing("score_hist.png")
    )
    result = run_adx_with(fault, "train", *SHORT, "trainer.epochs=1", cwd=tmp_path)
    assert result.returncode == -9
    run = _only_run(tmp_path)
    assert (run / "checkpoints/state.json").is_file() and not (run / "run.json").exists()
    if stage == "scoring":
        _resumable(run)  # as after Ctrl-C while scoring
        return
    assert [p.name.split(".")[1] for p in _temporaries(run)] == ["score_hist"]
    _resume(run, tmp_path)
    assert _temporaries(run) == []
    assert json.loads((run / "run.json").read_text())["epochs_run"] == 1


def _artifacts(run: Path) -> list[str]:
    wanted = ["metrics.json", "scores.csv", "roc.csv", "threshold.json", "report.html"]
    wanted += ["run.json", "checkpoints/best.keras", "plots/roc.png"]
    return [name for name in wanted if not (run / name).is_file()]


def test_a_loss_that_explodes_in_the_first_epoch_still_ends_with_every_artifact(tmp_path: Path):
    result = run_adx_in_process(
        "train", *SHORT, "trainer.epochs=3", "optimizer.lr=1e6", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    warning = "training diverged: the loss was not a finite number in epoch 1; lower optimizer.lr"
    assert warning in result.stderr and "model of epoch 0 (untrained) is assessed" in result.stderr
    run = _only_run(tmp_path)
    assert _artifacts(run) == []
    info = json.loads((run / "run.json").read_text())
    assert (info["status"], info["diverged_at_epoch"], info["best_epoch"]) == ("diverged", 1, 0)
    assert info["best_val_loss"] is None and info["epochs_run"] == 0
    assert _status(run)["status"] == "diverged" and _status(run)["diverged_at_epoch"] == 1


def test_a_loss_that_explodes_later_is_assessed_with_the_best_epoch_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from anomaly_cli.training.callbacks import RunCheckpointer

    record = RunCheckpointer.on_epoch_end

    def nan_in_epoch_3(self, epoch, logs=None):  # a NaN loss, as a too high rate gives
        return record(self, epoch, {**logs, "loss": float("nan")} if epoch == 2 else logs)

    monkeypatch.setattr(RunCheckpointer, "on_epoch_end", nan_in_epoch_3)
    result = run_adx_in_process("train", *SHORT, "trainer.epochs=5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "not a finite number in epoch 3" in result.stderr
    run = _only_run(tmp_path)
    assert _artifacts(run) == []
    info = json.loads((run / "run.json").read_text())
    assert (info["status"], info["diverged_at_epoch"], info["epochs_run"]) == ("diverged", 3, 2)
    assert info["best_epoch"] in (1, 2)
    assert f"the best epoch before it ({info['best_epoch']}) is assessed" in result.stderr
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [1, 2]
    # Done for good: a resume does not train into the same NaN again.
    metrics = (run / "metrics.json").read_bytes()
    again = run_adx_in_process("train", f"resume={run}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to train: it diverged in epoch 3" in again.stdout + again.stderr
    assert (run / "metrics.json").read_bytes() == metrics


def test_ctrl_c_while_keras_saves_a_checkpoint_is_not_swallowed(tmp_path: Path):
    # Keras' saving code wraps its temporary weights file in a bare `except:`, which
    # caught a KeyboardInterrupt there and trained on: adx holds Ctrl-C while saving.
    # Inside that `try`, at epoch 2's first save (best.keras).
    fault = signal_at("keras.src.saving.saving_lib.is_memory_sufficient", "SIGINT", call=3)
    result = run_adx_with(fault, "train", *SHORT, "trainer.epochs=6", cwd=tmp_path)
    assert result.returncode == 130, result.stderr[-3000:]
    run = _only_run(tmp_path)
    assert "adx: interrupted while training; go on with" in result.stderr
    state = json.loads((run / "checkpoints/state.json").read_text())
    assert state["epochs_done"] == 2  # epoch 2's checkpoints were finished first
    _resumable(run)
