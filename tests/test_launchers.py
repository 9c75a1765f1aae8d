"""Hydra's joblib and submitit launchers: refused up front when they cannot run, real sweeps when
they can, and TensorFlow's threads per job (docs/launchers.md)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from anomaly_cli import launchers
from anomaly_cli.errors import AdxUserError
from anomaly_cli.overrides import check_overrides
from anomaly_cli.preflight import preflight
from anomaly_cli.training.threads import job_threads
from tests.conftest import REPO, assert_one_line_error, run_adx, run_adx_in_process

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
# The smallest real job: one epoch on 130 generated images, no plots, no logger.
TINY_SWEEP = ("debug=tiny", "trainer.epochs=1", "report.plots=[]", "logger=none")


def test_a_missing_launcher_plugin_is_one_line_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(launchers, "installed", lambda module: False)
    for choice, plugin in (
        ("joblib", "joblib"),
        ("submitit_local", "submitit"),
        ("slurm", "submitit"),
    ):
        result = run_adx_in_process(
            "train", "-m", f"hydra/launcher={choice}", *TINY_SWEEP, cwd=tmp_path
        )
        assert_one_line_error(
            result,
            f"hydra/launcher={choice} needs Hydra's {plugin} launcher: "
            'pip install "anomaly-cli[launchers]"',
        )
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (
            ["hydra/launcher=jooblib"],
            "unknown hydra/launcher 'jooblib'; choose one of: basic, joblib",
        ),
        (["hydra/launcher=slurm"], "sbatch and srun, which are not on PATH here"),
        (
            ["hydra/launcher=joblib", "hydra.launcher.prefer=threads"],
            "hydra.launcher.prefer=threads would run the jobs as threads of one process",
        ),
        (["trainer.threads=0"], "trainer.threads=0 must be a whole number of at least 1"),
    ],
)
def test_a_launcher_that_cannot_run_is_refused_before_any_folder(
    overrides: list[str], fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(launchers, "on_slurm", lambda: False)  # as on this machine, not a cluster
    result = run_adx_in_process("train", "-m", *overrides, *TINY_SWEEP, cwd=tmp_path)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "outputs").exists()


def test_every_launcher_adx_documents_passes_its_checks(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(launchers, "on_slurm", lambda: True)  # as on a cluster's login node
    for choice in ("basic", "joblib", "submitit_local", "submitit_slurm", "slurm"):
        overrides = [f"hydra/launcher={choice}", "model.latent_dim=2,3"]
        check_overrides("train", overrides)  # composes the launcher's config


def test_the_slurm_config_extends_submitit_slurm_and_copies_of_it_stay_out_of_git():
    from hydra import compose, initialize_config_dir

    from anomaly_cli.config_dir import config_dir
    from anomaly_cli.resolvers import names_only, register

    register()
    with (
        names_only(),
        initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="adx"),
    ):
        cfg = compose("train", ["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    for key in ("partition", "gpus_per_node", "timeout_min", "mem_gb", "cpus_per_task"):
        assert key in launcher, key
    assert launcher.array_parallelism == 16 and launcher.timeout_min == 240
    assert launchers.plugin_of("slurm") == "submitit_slurm"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "configs/hydra/launcher/slurm_local.yaml"], cwd=REPO
    )
    if ignored.returncode == 128:  # not a git checkout (an unpacked sdist)
        pytest.skip("no git checkout")
    assert ignored.returncode == 0, "configs/hydra/launcher/slurm_local.yaml is not git-ignored"


def test_threads_per_job_follow_the_launcher():
    joblib = OmegaConf.create({"_target_": "hydra_plugins.hydra_joblib_launcher.x", "n_jobs": 2})
    assert job_threads(3, joblib) == 3  # trainer.threads wins
    assert job_threads(None, joblib) == max(1, CORES // 2)
    joblib.n_jobs = -1  # joblib's default: one job per core
    assert job_threads(None, joblib) == 1
    joblib.n_jobs = 1
    assert job_threads(None, joblib) is None
    submitit = OmegaConf.create({"_target_": "hydra_plugins.hydra_submitit_launcher.x"})
    assert job_threads(None, submitit) is None
    submitit.cpus_per_task = 3
    assert job_threads(None, submitit) == 3
    basic = OmegaConf.create({"_target_": "hydra._internal.core_plugins.basic_launcher.Basic"})
    assert job_threads(None, basic) is None
    assert job_threads(None) is None  # outside a Hydra job
    with pytest.raises(AdxUserError, match=r"trainer\.threads=True must be a whole number"):
        preflight("train", ["trainer.threads=true"])


def _sweep(cwd: Path) -> tuple[Path, list[Path]]:
    """The one sweep folder of cwd/outputs/multirun, and its job folders in job order."""
    sweeps = [p for p in (cwd / "outputs" / "multirun").iterdir() if p.is_dir()]
    assert len(sweeps) == 1, sweeps  # every job in the folder the main process claimed
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir() and p.name[:1].isdigit())
    return sweeps[0], jobs


def _status(job: Path) -> dict:
    return json.loads((job / "status.json").read_text())


def test_a_joblib_sweep_runs_jobs_in_worker_processes_that_contain_their_failures(tmp_path: Path):
    """Real worker processes (one per job, n_jobs=2): the second job has too few normal images
    for a test split, which it finds inside its worker; the first finishes with its share
    of the cores."""
    result = run_adx(
        "train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY_SWEEP,
        "dataset.n_normal=100,3", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    sweep, jobs = _sweep(tmp_path)
    assert [j.name for j in jobs] == ["0_conv_ae_synthetic", "1_conv_ae_synthetic"], result.stderr
    finished, failed = jobs
    assert _status(finished)["status"] == "finished", result.stderr[-3000:]
    assert (finished / "metrics.json").is_file()
    run = json.loads((finished / "run.json").read_text())
    assert run["threads"] == max(1, CORES // 2)
    assert _status(failed)["status"] == "failed"
    assert "the test split needs normal and anomaly samples" in _status(failed)["error"]
    # The main process learns of the failure from the job's folder, not from the worker.
    assert result.returncode == 2, result.stderr[-3000:]
    assert "1_conv_ae_synthetic" in result.stderr
    assert (sweep / "summary.csv").is_file()  # the sweep summary callback ran in the main process


@pytest.mark.slow
def test_a_submitit_local_sweep_runs_each_job_as_a_submitit_job(tmp_path: Path):
    result = run_adx(
        "train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
        "hydra.launcher.cpus_per_task=1", *TINY_SWEEP, "model.latent_dim=8,16",
        cwd=tmp_path, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep, jobs = _sweep(tmp_path)
    assert [j.name for j in jobs] == ["0_conv_ae_synthetic", "1_conv_ae_synthetic"]
    for job in jobs:
        assert _status(job)["status"] == "finished"
        assert (job / "metrics.json").is_file()
        assert json.loads((job / "run.json").read_text())["threads"] == 1  # cpus_per_task
    logs = list((sweep / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2, logs  # submitit ran each job as a job of its own
    assert (sweep / "summary.csv").is_file()


def test_a_schedulers_time_limit_warning_stops_a_job_like_sigterm():
    """submitit's SIGUSR1/SIGUSR2 before a time limit would re-queue the job to train again from
    its first epoch in its own folder; adx ends it as an interrupt instead (resume= goes on)."""
    import signal

    from anomaly_cli import interrupts

    for name in ("SIGUSR1", "SIGUSR2"):
        with pytest.raises(interrupts.Terminated, match=name), interrupts.terminate_as_interrupt():
            with interrupts.held():  # not while a checkpoint is written: after it
                os.kill(os.getpid(), getattr(signal, name))
            pytest.fail(f"the held {name} should have arrived at the end of the block")


@pytest.mark.slow
def test_a_job_past_its_time_limit_is_stopped_for_resume_not_requeued(tmp_path: Path):
    """submitit signals a job before its limit (here after 90 s of 2 min) and, left alone,
    re-queues it to train again from its first epoch in the same folder. adx stops it as an
    interrupt: its epochs are kept, resume= goes on, and the sweep still gets its summary."""
    result = run_adx(
        "train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=2",
        "hydra.launcher.cpus_per_task=1", "debug=tiny", "trainer.epochs=100000",
        "trainer.patience=100000", "report.plots=[]", "logger=none",
        cwd=tmp_path, timeout=400,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    sweep, jobs = _sweep(tmp_path)
    assert [j.name for j in jobs] == ["0_conv_ae_synthetic"]
    status = _status(jobs[0])
    assert status["status"] == "interrupted", status
    assert status["next"] == f"adx train resume={jobs[0]}"
    logs = "".join(p.read_text() for p in (sweep / ".submitit").glob("*/*_log.*"))
    assert "stopped by SIGUSR2 while training" in logs, logs[-3000:]
    assert "Requeued" not in logs  # submitit's line when it starts the job again
    state = json.loads((jobs[0] / "checkpoints" / "state.json").read_text())
    assert state["epochs_done"] >= 1
    assert (sweep / "summary.csv").is_file()


def test_a_job_knows_whether_a_launcher_runs_it_in_a_process_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv(launchers.MAIN_PROCESS, raising=False)
    assert not launchers.in_launcher_process()  # train() called outside `adx`
    launchers.mark_main_process()
    assert not launchers.in_launcher_process()  # the basic launcher: in `adx` itself
    monkeypatch.setenv(launchers.MAIN_PROCESS, "login-node:4242")
    assert launchers.in_launcher_process()  # a joblib worker, a submitit or SLURM job
