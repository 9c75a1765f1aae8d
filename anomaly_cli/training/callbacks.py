"""Callbacks that write to the run directory atomically."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
import pandas as pd

from anomaly_cli import runs


class AtomicBestCheckpoint(keras.callbacks.Callback):
    """Save the model whenever the monitored loss improves, via temp file + rename.

    Keras' ModelCheckpoint writes in place, so a run killed mid-save could
    leave a broken best.keras; this one never does.
    """

    def __init__(self, path: str | Path, monitor: str = "val_loss", min_delta: float = 0.0):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.min_delta = min_delta
        self.best = math.inf
        self.best_epoch = -1

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or not value < self.best - self.min_delta:
            return
        self.best, self.best_epoch = float(value), epoch
        with runs.atomic_path(self.path) as tmp:
            self.model.save(tmp)


class HistoryCSV(keras.callbacks.Callback):
    """history.csv rewritten after every epoch, so an interrupted run keeps its curve."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.rows.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})
        runs.write_csv(self.path, pd.DataFrame(self.rows))
