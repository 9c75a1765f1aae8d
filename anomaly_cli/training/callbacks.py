"""Checkpoints, history and early stopping that survive an interrupted run.

One callback does what Keras' ModelCheckpoint, CSVLogger and EarlyStopping do
separately, because neither writes atomically nor can restore its state.
After every epoch it updates the history and the early-stopping state; the
best model (weights only, no optimizer state: a third of the bytes with Adam)
and the latest model with its optimizer state are written when
training/checkpoint_policy.py says a save is worth its cost, and always when
training ends. Between saves the best epoch's weights wait in memory. A small
state.json names the latest checkpoint; it is written after the checkpoint it
names and the previous checkpoint is removed only then, so state.json always
points at a complete file, wherever a run is killed, and a resumed run goes on
from the epoch it names: epochs trained after it are trained again, to the
same numbers. An epoch whose loss is not a finite number is not recorded:
training stops there (it diverged), and the epochs before it are kept.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from anomaly_cli import interrupts, runs
from anomaly_cli.training.checkpoint_policy import CheckpointBudget
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
        every: int | None = 1,
    ):
        """`every`: save the latest state every that many epochs; None: when the
        checkpoint budget allows (trainer.checkpoint_every=auto)."""
        super().__init__()
        self.first_epoch = first_epoch
        self.run_dir = Path(run_dir)
        self.state = state
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.budget = CheckpointBudget(every)
        history = self.run_dir / runs.HISTORY
        rows = pd.read_csv(history).to_dict("records") if history.is_file() else []
        # Rows past the saved state belong to epochs that were not saved.
        self.rows: list[dict[str, Any]] = rows[: state.epochs_done]
        # The first epoch whose loss was NaN or infinite; training stops there.
        self.diverged_at: int | None = None
        # The best epoch's weights while they are not on disk yet; None while the
        # best epoch is the model as it is now, or is saved.
        self._best_weights: list[Any] | None = None
        self._best_unsaved = False
        # How much of budget.spent the state's checkpoint_seconds already counts.
        self._recorded = 0.0
        # Bytes of the model's variables, and with its optimizer's (the latest state).
        self._bytes: tuple[int, int] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.budget = CheckpointBudget(self.budget.every)  # time from here, not from building
        self._recorded = 0.0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        with interrupts.held():  # an epoch is recorded whole, and Ctrl-C is never lost
            self._record(epoch, logs or {})

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Training ends with everything saved: the best model always; the latest
        state too unless no later epoch can follow (stopped early or diverged, when
        the model now holds NaN weights)."""
        state = self.state
        with interrupts.held():
            if self.diverged_at is not None or state.stopped:
                self._save_best()
                self._save_state()
            elif state.last_checkpoint != _last_name(state.epochs_done) and state.epochs_done:
                self._save(state.epochs_done)

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
        improved = counted and value is not None and value < state.best - self.min_delta
        if improved:
            state.best, state.best_epoch, state.wait = float(value), epoch + 1, 0
            self._best_weights, self._best_unsaved = None, True
        elif counted:
            state.wait += 1
        if counted and state.wait >= self.patience:
            state.stopped = True
            self.model.stop_training = True
        self.rows.append({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}})
        runs.write_csv(self.run_dir / runs.HISTORY, pd.DataFrame(self.rows))
        if self.model.stop_training:
            return  # on_train_end saves what training ends with
        if self.budget.due(epoch + 1, self._expected(best=self._best_unsaved), self._expected()):
            self._save(epoch + 1)
        elif improved:
            # Kept until the next save; the weights go on changing meanwhile.
            with self.budget.timed("copy"):
                self._best_weights = _copy(self.model.variables)

    def _expected(self, best: bool = True) -> float:
        """Seconds the next save is expected to take: the latest state, and the best model."""
        if self._bytes is None:  # sizes do not change during training
            model_bytes = _nbytes(self.model.variables)
            optimizer = getattr(self.model, "optimizer", None)
            self._bytes = (model_bytes, model_bytes + _nbytes(getattr(optimizer, "variables", [])))
        model_bytes, state_bytes = self._bytes
        expected = self.budget.expected("last", state_bytes)
        return expected + (self.budget.expected("best", model_bytes) if best else 0.0)

    def _save(self, epoch: int) -> None:
        self._save_best()
        name = _last_name(epoch)
        with self.budget.timed("last"), runs.atomic_path(self._checkpoints / name) as tmp:
            self.model.save(tmp)
        previous, self.state.last_checkpoint = self.state.last_checkpoint, name
        self._save_state()
        if previous and previous != name:
            with contextlib.suppress(FileNotFoundError):
                (self._checkpoints / previous).unlink()

    def _save_best(self) -> None:
        """The best epoch's model, without optimizer state: it is scored, not trained on."""
        if not self._best_unsaved:
            return
        model, kept = self.model, self._best_weights
        now = _copy(model.variables) if kept is not None else None
        with self.budget.timed("best"), runs.atomic_path(self.run_dir / runs.CHECKPOINT) as tmp:
            if kept is not None:
                _assign(model.variables, kept)
            optimizer = getattr(model, "optimizer", None)
            model.optimizer = None  # Keras saves whatever the model holds
            try:
                model.save(tmp)
            finally:
                model.optimizer = optimizer
                if now is not None:
                    _assign(model.variables, now)
        self._best_weights, self._best_unsaved = None, False

    def _save_state(self) -> None:
        self.state.checkpoint_seconds += self.budget.spent - self._recorded
        self._recorded = self.budget.spent
        self.state.save(self.run_dir / runs.TRAINING_STATE)

    @property
    def _checkpoints(self) -> Path:
        return self.run_dir / runs.CHECKPOINT_DIR


class EpochLines(keras.callbacks.Callback):
    """One plain line per epoch, for the logs of batch jobs, where a progress bar's
    control characters (and its many lines when not on a terminal) only get in the way."""

    def __init__(self, epochs: int, checkpointer: RunCheckpointer):
        super().__init__()
        self.epochs = epochs
        self.checkpointer = checkpointer
        self._began = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._began = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = " - ".join(f"{k} {float(v):.6g}" for k, v in (logs or {}).items())
        state = self.checkpointer.state
        saved = ", saved" if state.last_checkpoint == _last_name(epoch + 1) else ""
        took = time.perf_counter() - self._began
        print(f"epoch {epoch + 1}/{self.epochs} - {values} ({took:.1f} s{saved})", flush=True)


def progress(
    verbose: object, epochs: int, checkpointer: RunCheckpointer
) -> tuple[int, list[keras.callbacks.Callback]]:
    """Keras' verbosity and adx's own epoch lines for trainer.verbose."""
    if verbose in (None, "auto"):
        if sys.stdout.isatty():
            return 1, []
        return 0, [EpochLines(epochs, checkpointer)]
    return int(verbose), []  # type: ignore[call-overload]


def _last_name(epoch: int) -> str:
    return f"last-{epoch:04d}.keras"


def _nbytes(variables: Any) -> int:
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def _copy(variables: Any) -> list[Any]:
    """The variables' values, copied where they live (a GPU's memory stays there)."""
    return [keras.ops.copy(v) for v in variables]


def _assign(variables: Any, values: list[Any]) -> None:
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


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
