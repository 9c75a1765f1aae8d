"""The checkpointer ignores warm-up epochs for the best checkpoint and for patience; the
plateau schedule keeps its counters in the training state."""

from __future__ import annotations

from pathlib import Path

import keras
import pandas as pd
import pytest

from anomaly_cli import runs
from anomaly_cli.training.callbacks import PlateauSchedule, RunCheckpointer
from anomaly_cli.training.state import TrainingState


def test_warm_up_epochs_are_neither_best_nor_counted_for_patience(tmp_path: Path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    state = TrainingState()
    checkpointer = RunCheckpointer(
        tmp_path, state, monitor="val_loss", patience=1, min_delta=0.0, first_epoch=3
    )
    checkpointer.set_model(model)
    model.stop_training = False  # what fit() sets before the first epoch
    # Warm-up losses are low (another objective); epoch 3 is the first that counts.
    for epoch, loss in enumerate([0.1, 0.1, 0.5, 0.4]):
        checkpointer.on_epoch_end(epoch, {"val_loss": loss})
        assert not model.stop_training
    assert (state.best, state.best_epoch, state.wait) == (0.4, 4, 0)
    checkpointer.on_epoch_end(4, {"val_loss": 0.45})
    assert model.stop_training and state.stopped
    assert (tmp_path / runs.CHECKPOINT).is_file()
    assert pd.read_csv(tmp_path / runs.HISTORY).epoch.tolist() == [1, 2, 3, 4, 5]


def test_a_non_finite_loss_stops_training_and_keeps_the_epochs_before(tmp_path: Path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    state = TrainingState()
    checkpointer = RunCheckpointer(tmp_path, state, monitor="val_loss", patience=5, min_delta=0)
    checkpointer.set_model(model)
    model.stop_training = False
    checkpointer.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.4})
    best = (tmp_path / runs.CHECKPOINT).read_bytes()
    checkpointer.on_epoch_end(1, {"loss": float("nan"), "val_loss": float("nan")})
    assert model.stop_training and checkpointer.diverged_at == 2
    # Epoch 2 wrote nothing: the state, best model and history still describe epoch 1.
    assert (state.epochs_done, state.last_checkpoint) == (1, "last-0001.keras")
    assert TrainingState.load(tmp_path / runs.TRAINING_STATE).epochs_done == 1
    assert (tmp_path / runs.CHECKPOINT).read_bytes() == best
    assert pd.read_csv(tmp_path / runs.HISTORY).epoch.tolist() == [1]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best.keras",
        "last-0001.keras",
        "state.json",
    ]


def test_a_plateau_schedule_picks_up_its_counters_where_the_saved_state_left_them():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    state = TrainingState()

    def epoch(schedule: PlateauSchedule, number: int) -> float:
        schedule.on_epoch_end(number, {"val_loss": 1.0})  # never improves after the first
        return float(model.optimizer.learning_rate)

    first = PlateauSchedule(state, monitor="val_loss", factor=0.5, patience=1)
    first.set_model(model)
    first.on_train_begin()
    assert [epoch(first, 0), epoch(first, 1)] == pytest.approx([1e-3, 5e-4])
    assert (state.plateau_best, state.plateau_wait) == (1.0, 0)
    # A resumed run: a new callback, the state read back; without it epoch 3 would count
    # as the first (an improvement) and keep the rate.
    saved = TrainingState(**state.__dict__)
    resumed = PlateauSchedule(saved, monitor="val_loss", factor=0.5, patience=1)
    resumed.set_model(model)
    resumed.on_train_begin()
    assert epoch(resumed, 2) == pytest.approx(2.5e-4)


def test_the_best_epoch_waits_in_memory_until_a_save_and_is_saved_without_the_optimizer(
    tmp_path: Path,
):
    import zipfile

    import h5py
    import numpy as np

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.optimizer.build(model.trainable_variables)
    state = TrainingState()
    checkpointer = RunCheckpointer(tmp_path, state, "val_loss", patience=9, min_delta=0, every=3)
    checkpointer.set_model(model)
    model.stop_training = False
    checkpointer.on_train_begin()
    weights = {}
    for epoch, loss in enumerate([0.5, 0.3, 0.4]):  # epoch 2 is the best; only 3 is saved
        model.set_weights([np.full(w.shape, epoch + 1.0, "float32") for w in model.get_weights()])
        weights[epoch + 1] = model.get_weights()
        checkpointer.on_epoch_end(epoch, {"val_loss": loss})
        assert (tmp_path / runs.CHECKPOINT).is_file() == (epoch == 2)
    assert (state.best_epoch, state.last_checkpoint) == (2, "last-0003.keras")
    best = keras.saving.load_model(tmp_path / runs.CHECKPOINT, compile=False)
    assert all(np.array_equal(a, b) for a, b in zip(best.get_weights(), weights[2], strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights[3], strict=True))
    with (
        zipfile.ZipFile(tmp_path / runs.CHECKPOINT) as archive,
        archive.open("model.weights.h5") as member,
        h5py.File(member) as weights_file,
    ):
        assert "optimizer" not in weights_file  # scored, never trained on
    with (
        zipfile.ZipFile(tmp_path / "checkpoints/last-0003.keras") as archive,
        archive.open("model.weights.h5") as member,
        h5py.File(member) as weights_file,
    ):
        assert "optimizer" in weights_file  # what resume= goes on from
    # Epoch 4 is not due; training ends there, so it is saved then.
    checkpointer.on_epoch_end(3, {"val_loss": 0.35})
    assert state.last_checkpoint == "last-0003.keras"
    checkpointer.on_train_end()
    assert TrainingState.load(tmp_path / runs.TRAINING_STATE).last_checkpoint == "last-0004.keras"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best.keras",
        "last-0004.keras",
        "state.json",
    ]
    assert state.checkpoint_seconds > 0


def test_off_a_terminal_training_prints_one_plain_line_per_epoch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from anomaly_cli.training.callbacks import EpochLines, progress

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpointer = RunCheckpointer(tmp_path, TrainingState(), "val_loss", patience=5, min_delta=0)
    checkpointer.set_model(model)
    model.stop_training = False
    verbose, lines = progress("auto", 2, checkpointer)  # pytest's stdout is no terminal
    assert verbose == 0 and [type(c) for c in lines] == [EpochLines]
    assert progress(1, 2, checkpointer) == (1, [])  # what the user asked for wins
    for epoch in range(2):
        lines[0].on_epoch_begin(epoch)
        checkpointer.on_epoch_end(epoch, {"loss": 0.5, "val_loss": 0.25})
        lines[0].on_epoch_end(epoch, {"loss": 0.5, "val_loss": 0.25})
    printed = capsys.readouterr().out
    assert printed.splitlines() == [
        line for line in printed.splitlines() if line.startswith("epoch ")
    ]
    assert len(printed.splitlines()) == 2 and "\r" not in printed and "\b" not in printed
    assert printed.splitlines()[1].startswith("epoch 2/2 - loss 0.5 - val_loss 0.25 (")
    assert printed.splitlines()[1].endswith(" s, saved)")
