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
