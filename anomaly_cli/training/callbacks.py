"""Checkpoints, history and early stopping that survive an interrupted run.

One callback does what Keras' ModelCheckpoint, CSVLogger and EarlyStopping do
separately, because neither writes atomically nor can restore its state:
after every epoch it saves the best model (when the monitored loss improved),
the history, the latest model with its optimizer state, and a small
state.json that names that latest checkpoint. An epoch whose loss is not a
finite number is not recorded: training stops there (it diverged), and the
epochs before it stay as they were saved. The state file is written after
the checkpoint it names and the previous checkpoint is removed only then, so
state.json always points at a complete file, wherever a run is killed.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import keras
import pandas as pd

from anomaly_cli import interrupts, runs
from anomaly_cli.training.state import TrainingState


class RunCheckpointer(keras.callbacks.Callback):
    def __init__(
        self,
        run_dir: Path,
        state: TrainingState,
        monitor: str,
        patience: int,
        min_delta: float,
        first_epoch: int = 1,
    ):
        super().__init__()
        self.first_epoch = first_epoch
        self.run_dir = Path(run_dir)
        self.state = state
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        history = self.run_dir / runs.HISTORY
        rows = pd.read_csv(history).to_dict("records") if history.is_file() else []
        # Rows past the saved state belong to an epoch whose checkpoint was lost.
        self.rows: list[dict[str, Any]] = rows[: state.epochs_done]
        # The first epoch whose loss was NaN or infinite; training stops there.
        self.diverged_at: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        with interrupts.held():  # an epoch is recorded whole, and Ctrl-C is never lost
            self._record(epoch, logs or {})

    def _record(self, epoch: int, logs: dict[str, Any]) -> None:
        if not all(math.isfinite(float(v)) for v in logs.values()):
            # NaN weights would become the last (and maybe the best) checkpoint and
            # every later epoch would be NaN too: stop, keeping the epochs before.
            self.diverged_at = epoch + 1
            self.model.stop_training = True
            return
        state = self.state
        state.epochs_done = epoch + 1
        value = logs.get(self.monitor)
        # Warm-up epochs optimise another objective: neither best nor patience.
        counted = epoch + 1 >= self.first_epoch
        if counted and value is not None and value < state.best - self.min_delta:
            state.best, state.best_epoch, state.wait = float(value), epoch + 1, 0
            with runs.atomic_path(self.run_dir / runs.CHECKPOINT) as tmp:
                self.model.save(tmp)
        elif counted:
            state.wait += 1
        if counted and state.wait >= self.patience:
            state.stopped = True
            self.model.stop_training = True
        self.rows.append({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}})
        runs.write_csv(self.run_dir / runs.HISTORY, pd.DataFrame(self.rows))
        self._save_last(epoch + 1)

    def _save_last(self, epoch: int) -> None:
        name = f"last-{epoch:04d}.keras"
        with runs.atomic_path(self.run_dir / runs.CHECKPOINT_DIR / name) as tmp:
            self.model.save(tmp)
        previous, self.state.last_checkpoint = self.state.last_checkpoint, name
        self.state.save(self.run_dir / runs.TRAINING_STATE)
        if previous and previous != name:
            with contextlib.suppress(FileNotFoundError):
                (self.run_dir / runs.CHECKPOINT_DIR / previous).unlink()


class PlateauSchedule(keras.callbacks.ReduceLROnPlateau):
    """optimizer.schedule=plateau: Keras' ReduceLROnPlateau, with its counters kept in
    the run's training state, so a resumed run lowers the rate at the same epochs as
    one that never stopped (the rate itself is saved with the optimizer)."""

    def __init__(self, state: TrainingState, **kwargs: Any):
        super().__init__(mode="min", **kwargs)
        self.state = state

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if math.isfinite(self.state.plateau_best):
            self.best, self.wait = self.state.plateau_best, self.state.plateau_wait

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        if self.best is not None and math.isfinite(float(self.best)):
            self.state.plateau_best, self.state.plateau_wait = float(self.best), int(self.wait)
