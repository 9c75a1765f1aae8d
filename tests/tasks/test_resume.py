"""`adx train resume=<dir>` goes on from the last finished epoch."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import (
    adx_env,
    latest,
    run_adx,
    run_adx_in_process,
    run_adx_with,
    run_dirs,
    train_run,
)
from tests.faults import killed_writing

# `adx ARGS` with SIGINT handled as in a terminal, whatever the pytest worker passes
# down (a child inherits ignored and blocked signals). In full-suite runs the child
# used to ignore the test's SIGINT now and then (it trained on, exiting 0 or not
# within 120 s): the signal landed inside Keras' saving code, whose bare `except:`
# swallowed the KeyboardInterrupt. adx now holds signals while it saves
# (anomaly_cli/interrupts.py; test_faults.py reproduces that moment exactly).
ADX_WITH_CTRL_C = (
    "import signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from anomaly_cli.cli import main; sys.exit(main(sys.argv[1:]))"
)
SMALL = ("debug=tiny", "trainer.patience=50")


def _signal_state(pid: int) -> str:
    """The child's pending, blocked and ignored signal masks, for the failure message."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    keys = ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    return " ".join(line for line in lines if line.startswith(keys))


def _threads(pid: int) -> str:
    """Each thread's name, state and blocked mask: which one could take a SIGINT."""
    rows = []
    for task in sorted(Path(f"/proc/{pid}/task").iterdir()):
        fields = dict(
            line.split(":\t", 1)
            for line in (task / "status").read_text().splitlines()
            if ":\t" in line
        )
        rows.append(f"{fields['Name']}/{fields['State'][0]}/blk={fields['SigBlk']}")
    return " ".join(rows)


def _state(run: Path) -> dict:
    return json.loads((run / "checkpoints/state.json").read_text())


def test_a_run_killed_between_saves_resumes_to_an_uninterrupted_runs_numbers(tmp_path: Path):
    # Saved every 2 epochs and killed (SIGKILL, nothing runs after it) while epoch 3's
    # history is written: epoch 3 is lost and trained again, to the same numbers.
    killed = run_adx_with(
        killed_writing("history.csv", call=3),
        "train", *SMALL, "trainer.epochs=4", "trainer.checkpoint_every=2", cwd=tmp_path,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    (resumed,) = [tmp_path / "outputs" / name for name in run_dirs(tmp_path)]
    assert (_state(resumed)["epochs_done"], _state(resumed)["last_checkpoint"]) == (
        2,
        "last-0002.keras",
    )
    # Resumed in a process of its own, and longer than first asked for: nothing of the
    # first part's process can help it match the run that never stopped.
    result = run_adx(
        "train", f"resume={resumed}", "trainer.epochs=5", "trainer.verbose=auto", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert latest(tmp_path) == resumed  # same folder, no new one
    # A log, not a terminal: one plain line per epoch trained, no progress bar.
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split(" - ")[0] for line in epochs] == ["epoch 3/5", "epoch 4/5", "epoch 5/5"]
    assert "\r" not in result.stdout and "\b" not in result.stdout
    phases = json.loads((resumed / "status.json").read_text())["phase_seconds"]
    assert list(phases)[:3] == ["starting", "loading data", "building the model"]
    assert phases["training"] > 0 and "scoring" in phases
    straight = train_run(tmp_path, *SMALL, "trainer.epochs=5")
    assert (resumed / "scores.csv").read_bytes() == (straight / "scores.csv").read_bytes()
    assert list(pd.read_csv(resumed / "history.csv")["epoch"]) == [1, 2, 3, 4, 5]
    assert sorted(p.name for p in (resumed / "checkpoints").glob("last-*")) == ["last-0005.keras"]
    info = json.loads((resumed / "run.json").read_text())
    assert (info["resumed_at_epoch"], info["epochs_run"]) == (2, 5)
    assert 0 < info["checkpoint_seconds"] < info["train_seconds"]


@pytest.mark.slow  # tests/training/test_callbacks.py checks the counters' round trip
def test_a_resumed_plateau_schedule_lowers_the_rate_at_the_same_epochs(tmp_path: Path):
    # min_delta 1: no epoch improves, so the rate halves after every epoch but the first.
    plateau = ("optimizer.schedule=plateau", "optimizer.decay_rate=0.5", "optimizer.decay_epochs=1")
    quiet = ("trainer.verbose=0", "logger=none", "report.plots=[]")
    args = (*SMALL, *plateau, "trainer.min_delta=1", *quiet)
    first = run_adx_in_process("train", *args, "trainer.epochs=2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = latest(tmp_path)
    result = run_adx_in_process("train", f"resume={resumed}", "trainer.epochs=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    straight = train_run(tmp_path, *args, "trainer.epochs=4")
    rates = pd.read_csv(straight / "history.csv")["learning_rate"].tolist()
    assert rates == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])
    assert (resumed / "history.csv").read_bytes() == (straight / "history.csv").read_bytes()
    assert (resumed / "scores.csv").read_bytes() == (straight / "scores.csv").read_bytes()


def test_ctrl_c_leaves_a_run_that_resume_finishes(tmp_path: Path):
    args = [*SMALL, "dataset.n_normal=60", "trainer.epochs=500", "trainer.patience=500"]
    proc = subprocess.Popen(
        [sys.executable, "-c", ADX_WITH_CTRL_C, "train", *args, "trainer.verbose=0",
         "trainer.batch_size=8"],
        cwd=tmp_path, env=adx_env(tmp_path), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("outputs/*/checkpoints/state.json")):
        assert proc.poll() is None and time.monotonic() < deadline, "training never checkpointed"
        time.sleep(0.05)
    time.sleep(0.5)
    signals = _signal_state(proc.pid)
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        after = f"{_signal_state(proc.pid)}\nthreads: {_threads(proc.pid)}"
        proc.kill()
        _, stderr = proc.communicate()
        raise AssertionError(
            f"no exit 120 s after SIGINT\nbefore: {signals}\nafter: {after}\n{stderr[-2000:]}"
        ) from None
    assert proc.returncode == 130, f"{signals}\n{stderr[-2000:]}"
    (run,) = [tmp_path / "outputs" / name for name in run_dirs(tmp_path)]
    assert f"adx: interrupted while training; go on with: adx train resume={run}" in stderr
    assert not (run / "metrics.json").exists()
    assert latest(tmp_path) == run  # so `adx train resume=outputs/latest` goes on too
    done = _state(run)["epochs_done"]
    assert 1 <= done < 500
    assert (run / "checkpoints" / _state(run)["last_checkpoint"]).is_file()

    result = run_adx_in_process(
        "train", f"resume={run}", f"trainer.epochs={done + 2}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _state(run)["epochs_done"] == done + 2
    assert len(pd.read_csv(run / "history.csv")) == done + 2
    assert (run / "metrics.json").is_file() and latest(tmp_path) == run


def test_resume_refuses_what_it_cannot_do(synthetic_run: Path, tmp_path: Path):
    cases = [
        (("train", f"resume={tmp_path / 'nothing'}"), "nothing is not a folder"),
        (("train", f"resume={synthetic_run}", "model.latent_dim=3"), "only trainer.epochs"),
    ]
    for args, message in cases:
        result = run_adx_in_process(*args, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert run_dirs(tmp_path) == set()
