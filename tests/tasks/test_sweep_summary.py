"""The sweep summary callback: written after the last job of `adx train -m`, listing a
job that failed; never raising; counting failures it found in the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from anomaly_cli.tasks import sweep_summary
from tests.conftest import run_adx_in_process

SUMMARY_FILES = ("summary.txt", "summary.csv", "summary.md", "summary_long.csv")


def test_a_sweep_ends_with_a_summary_that_lists_its_failed_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from anomaly_cli.tasks import assess

    original, calls = assess.assess, []

    def fails_first(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:  # a bug in the assessment of job 0, after its training
            raise RuntimeError("injected bug in the assessment")
        return original(*args, **kwargs)

    monkeypatch.setattr(assess, "assess", fails_first)
    from anomaly_cli.training import graph_memory

    traced_before = graph_memory.custom_gradients()
    result = run_adx_in_process(
        "train",
        "-m",
        "debug=tiny",
        "trainer.epochs=1",
        "report.plots=[]",
        "logger=none",
        "model.latent_dim=4,8",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr[-3000:]  # an internal error in one job
    assert "adx: 1 of 2 jobs failed: 0_conv_ae_synthetic" in result.stderr
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    for name in (*SUMMARY_FILES, "plots/roc.png", "plots/train_time.png", "report.html"):
        assert (sweep / name).is_file(), name
    # One finished job: its column is named by its model, and equals its metrics.json.
    frame = pd.read_csv(sweep / "summary.csv").set_index("metric")
    metrics = json.loads((sweep / "1_conv_ae_synthetic" / "metrics.json").read_text())
    assert list(frame.columns) == ["conv_ae"]
    assert metrics and {k: frame.loc[k, "conv_ae"] for k in metrics} == metrics
    text = (sweep / "summary.txt").read_text()
    assert text.startswith(f"Sweep {sweep.name}: 1 of 2 jobs finished")
    assert (
        "skipped job 0 (model.latent_dim=4), folder 0_conv_ae_synthetic: train failed: "
        "RuntimeError: injected bug in the assessment"
    ) in text
    assert text in result.stdout  # printed after the last job
    long = pd.read_csv(sweep / "summary_long.csv")
    assert long["status"].iloc[0] == "failed" and long["job"].tolist()[0] == 0
    assert (long["status"].iloc[1:] == "finished").all() and len(long) == len(frame) + 1
    # The failed job kept its trained model: a later error never deletes one.
    assert (sweep / "0_conv_ae_synthetic" / "checkpoints" / "best.keras").is_file()
    # Each job's traced custom gradients (conv_ae traces two), which hold its graphs,
    # were forgotten when it ended: a long sweep's process does not grow with them.
    assert graph_memory.custom_gradients() <= traced_before


def test_only_train_and_evaluate_sweeps_get_a_summary():
    def config(task_name: str, **more: object) -> object:
        return OmegaConf.create({"task_name": task_name, **more})

    assert sweep_summary.summarised(config("train"))
    assert sweep_summary.summarised(config("evaluate"))
    assert not sweep_summary.summarised(config("compare"))
    assert not sweep_summary.summarised(config("predict"))
    # A benchmark is a train config with a `benchmark` node; it writes its own tables.
    assert not sweep_summary.summarised(config("train", benchmark={"name": "b"}))


def test_a_summary_that_cannot_be_written_is_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    folder = tmp_path / "sweep"
    folder.write_text("a file where the sweep folder should be")
    config = OmegaConf.create({"task_name": "train", "hydra": {"sweep": {"dir": str(folder)}}})
    sweep_summary.SweepSummary().on_multirun_end(config)  # must not raise
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("adx: warning: the sweep's summary was not")
    assert f"adx compare runs={folder}" in err[0]


def test_jobs_that_stopped_in_other_processes_set_the_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Jobs another process ran (joblib, SLURM) fail in their folders, not in this process."""
    from anomaly_cli.cli import _exit_for_failed_jobs

    sweep = tmp_path / "sweep"
    task = ["trainer.seed=1,2,3"]
    record = {"hydra": {"overrides": {"task": task}, "sweeper": {"_target_": "BasicSweeper"}}}
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(record))
    ended = {
        "0_conv_ae_digits": {"status": "interrupted", "stage": "training", "next": "adx ..."},
        "1_conv_ae_digits": {"status": "failed", "error": "bad value", "exit_code": 2},
    }
    for number, (name, status) in enumerate(ended.items()):
        (sweep / name / ".hydra").mkdir(parents=True)
        (sweep / name / ".hydra" / "overrides.yaml").write_text(f"- trainer.seed={number + 1}\n")
        (sweep / name / "status.json").write_text(json.dumps({"verb": "train", **status}))
    summary = sweep_summary.write_summary(sweep)
    assert [j.status for j in summary.jobs] == ["interrupted", "failed", "not started"]
    with pytest.raises(SystemExit) as exited:
        _exit_for_failed_jobs(3)
    assert exited.value.code == 2  # bad input says more than an interrupt (130)
    err = capsys.readouterr().err
    assert "adx: 2 of 3 jobs failed: 0_conv_ae_digits, 1_conv_ae_digits" in err
    assert sweep_summary.take_failures() == []  # taken once: the next command starts clean


def test_an_evaluate_sweep_reaches_hydra_with_its_flag_before_the_overrides(tiny_run: Path):
    """evaluate adds the source run's groups; Hydra's parser takes no override before `-m`."""
    from anomaly_cli.tasks.evaluate import rewrite_overrides

    args = rewrite_overrides(["-m", f"run={tiny_run}", "threshold=youden,percentile"])
    assert args[:3] == ["-m", f"run={tiny_run}", "threshold=youden,percentile"]
    assert "dataset=synthetic" in args[3:]  # the source run's own choice, carried
