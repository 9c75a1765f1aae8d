"""A sweep's summary rebuilt from its folder: finished, failed and never-started jobs,
the reported column and the long CSV; no training (the jobs are copies of one run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import yaml
from omegaconf import OmegaConf

from anomaly_cli.reporting import summary
from tests.conftest import run_adx_in_process

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
FAILED = "dataset.n_normal=3 leaves too few normal images for a validation split"
REPORTED = {"source": "seed 999, Table 1", "values": {"trainer.seed=1": {"auroc": 0.9}}}


def _job(tiny_run: Path, folder: Path, overrides: list[str], copy: bool = True) -> Path:
    if copy:
        shutil.copytree(tiny_run, folder, ignore=shutil.ignore_patterns("checkpoints", "tb"))
    else:  # what a failed job leaves: .hydra/, adx.log and status.json
        (folder / ".hydra").mkdir(parents=True)
        status = {"verb": "train", "status": "failed", "stage": "loading data", "error": FAILED}
        (folder / "status.json").write_text(json.dumps(status))
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return folder


def _sweep(tiny_run: Path, root: Path) -> tuple[Path, list[str]]:
    """Four jobs trainer.seed=1..4: two finished, one failed, one never started."""
    base = yaml.safe_load((tiny_run / ".hydra" / "overrides.yaml").read_text())
    sweep = root / "multirun" / "2026-01-01_00-00-00_train"
    sweep.mkdir(parents=True)
    task = [*base, "trainer.seed=1,2,3,4"]
    record = {"hydra": {"overrides": {"task": task}, "sweeper": {"_target_": BASIC_SWEEPER}}}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(record))
    first = _job(tiny_run, sweep / "0_conv_ae_synthetic", [*base, "trainer.seed=1"])
    config = OmegaConf.load(first / "config.yaml")
    config.reported = REPORTED
    OmegaConf.save(config, first / "config.yaml")
    _job(tiny_run, sweep / "1_conv_ae_synthetic", [*base, "trainer.seed=2"])
    _job(tiny_run, sweep / "2_conv_ae_synthetic", [*base, "trainer.seed=3"], copy=False)
    return sweep, base


def test_a_rebuilt_summary_lists_finished_failed_and_unstarted_jobs(tiny_run: Path, tmp_path: Path):
    sweep, _ = _sweep(tiny_run, tmp_path / "in")
    result = run_adx_in_process("compare", f"runs={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = [p for p in (tmp_path / "outputs").iterdir() if "_compare_" in p.name]
    frame = pd.read_csv(folder / "compare.csv").set_index("metric")
    assert list(frame.columns) == ["trainer.seed=1", "trainer.seed=2"]
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics and {k: frame.loc[k, "trainer.seed=1"] for k in metrics} == metrics
    text = (folder / "compare.txt").read_text()
    assert text.startswith(f"Sweep {sweep.name}: 2 of 4 jobs finished")
    failed = f"skipped job 2 (trainer.seed=3), folder 2_conv_ae_synthetic: train failed: {FAILED}"
    assert failed in text
    assert "not started: job 3 (trainer.seed=4)" in text and text in result.stdout
    # The reported column sits right after its job's, blank where nothing was reported.
    header = next(line for line in text.splitlines() if line.startswith("| Metric"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells == ["Metric", "trainer.seed=1", "trainer.seed=1 (reported)", "trainer.seed=2"]
    auroc = next(line for line in text.splitlines() if line.startswith("| AUROC"))
    assert [c.strip() for c in auroc.strip("|").split("|")][2] == "0.9000"
    f1 = next(line for line in text.splitlines() if line.startswith("| F1"))
    assert [c.strip() for c in f1.strip("|").split("|")][2] == ""
    assert "'(reported)' columns: the numbers the source document printed (seed 999" in text
    assert "trainer.seed=1 (reported)" in (folder / "compare.md").read_text()
    # Long format: a row per finished job and metric, one per job that did not finish.
    long = pd.read_csv(folder / "compare_long.csv")
    assert list(long.columns) == list(summary.LONG_COLUMNS)
    assert long["job"].tolist() == [0] * len(frame) + [1] * len(frame) + [2, 3]
    assert long["status"].tolist()[-2:] == ["failed", "not started"]
    assert long["error"].tolist()[-2] == FAILED
    first = long[long["job"] == 0].set_index("metric")
    assert first.loc["auroc", "reported"] == 0.9 and first["reported"].notna().sum() == 1
    assert first.loc["auroc", "value"] == metrics["auroc"]
    # The sweep's own summary, as its callback writes it, is the same table.
    from anomaly_cli.tasks.sweep_summary import take_failures, write_summary

    write_summary(sweep)
    assert (sweep / "summary.txt").read_text() == text
    assert (sweep / "summary_long.csv").read_text() == (folder / "compare_long.csv").read_text()
    assert (sweep / "plots" / "roc.png").is_file() and (sweep / "report.html").is_file()
    assert [f.run_dir.name for f in take_failures()] == ["2_conv_ae_synthetic"]


def test_job_states_come_from_status_json(tmp_path: Path):
    def state(record: dict | None) -> tuple[str, str]:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        (folder / ".hydra").mkdir(parents=True)
        if record is not None:
            (folder / "status.json").write_text(json.dumps({"verb": "train", **record}))
        job = summary.read_job(0, (), folder)
        return job.status, job.error

    assert state({"status": "failed", "error": "NaN loss"}) == ("failed", "NaN loss")
    interrupted = {"status": "interrupted", "stage": "training", "next": "adx train resume=x"}
    assert state(interrupted) == ("interrupted", "while training; go on with: adx train resume=x")
    # A job whose process is gone without writing an end (SIGKILL, out of memory).
    import socket

    gone = {"status": "running", "pid": 2**22 + 7, "host": socket.gethostname()}
    assert state(gone)[0] == "killed" and "out of memory" in state(gone)[1]
    assert state(None) == ("unknown", "no metrics.json and no status.json")


def test_the_job_list_is_hydras_expansion_of_multirun_yaml(tmp_path: Path):
    task = ["model=conv_ae,vae", "trainer.seed=1,2", "trainer.epochs=3"]
    record = {"hydra": {"overrides": {"task": task}, "sweeper": {"_target_": BASIC_SWEEPER}}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(record))
    jobs = summary.sweep_jobs(tmp_path)
    assert [j.number for j in jobs] == [0, 1, 2, 3]
    assert {j.status for j in jobs} == {summary.NOT_STARTED}
    assert jobs[1].overrides == ("model=conv_ae", "trainer.seed=2", "trainer.epochs=3")
    assert summary.job_name(jobs[1], jobs) == "model=conv_ae trainer.seed=2"
    # Another sweeper picks its jobs as it goes: no list, so nothing is "not started".
    record["hydra"]["sweeper"]["_target_"] = "hydra_plugins.optuna.OptunaSweeper"
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(record))
    assert summary.sweep_jobs(tmp_path) == []


def test_a_diverged_job_keeps_its_column_and_is_listed_as_diverged(tiny_run: Path, tmp_path: Path):
    sweep, _ = _sweep(tiny_run, tmp_path)
    diverged = sweep / "1_conv_ae_synthetic"
    error = "training diverged in epoch 3; assessed with epoch 2"
    status = {"verb": "train", "status": "diverged", "error": error, "diverged_at_epoch": 3}
    (diverged / "status.json").write_text(json.dumps(status))
    from anomaly_cli.tasks.sweep_summary import take_failures, write_summary

    write_summary(sweep)
    frame = pd.read_csv(sweep / "summary.csv").set_index("metric")
    assert list(frame.columns) == ["trainer.seed=1", "trainer.seed=2"]
    text = (sweep / "summary.txt").read_text()
    assert text.startswith(f"Sweep {sweep.name}: 2 of 4 jobs finished")
    assert f"diverged: job 1 (trainer.seed=2), folder 1_conv_ae_synthetic: {error}" in text
    long = pd.read_csv(sweep / "summary_long.csv")
    statuses = long.drop_duplicates("job").set_index("job")["status"]
    assert statuses.to_dict() == {0: "finished", 1: "diverged", 2: "failed", 3: "not started"}
    assert set(long[long["job"] == 1]["error"]) == {error}
    # A diverged job has its result: only the failed one sets adx's exit code.
    assert [f.run_dir.name for f in take_failures()] == ["2_conv_ae_synthetic"]
