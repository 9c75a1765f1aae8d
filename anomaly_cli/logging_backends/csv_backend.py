"""logger=csv: one long CSV, <run>/logs/scalars.csv, rewritten whole after each epoch.

A row per epoch, split and value: `epoch,split,name,value,time` (split
train or val; name loss, learning_rate, epoch_seconds, ...), then the test
metrics and threshold (split test, at the last epoch). Long rather than wide,
so that values that appear later (a resumed run's new columns, the test
metrics) need no new header; `pandas.pivot` makes it wide. history.csv, the
checkpointer's record that resume goes on from, is written whatever the
logger and is not repeated here with its own columns.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from anomaly_cli import runs
from anomaly_cli.logging_backends.base import CSV_LOG, Backend, RunResults, epoch_callback
from anomaly_cli.training.state import TrainingState

COLUMNS = ["epoch", "split", "name", "value", "time"]


class CsvBackend(Backend):
    def __init__(self, cfg: DictConfig, run_dir: Path, resume: bool) -> None:
        super().__init__(cfg, run_dir, resume)
        self.path = self.run_dir / CSV_LOG
        self.rows: list[dict[str, Any]] = []
        state_file = self.run_dir / runs.TRAINING_STATE
        if resume and self.path.is_file() and state_file.is_file():
            # Epochs past the saved state were lost with their checkpoint and are
            # trained again; the old test rows belong to the run's earlier end.
            done = TrainingState.load(state_file).epochs_done
            kept = pd.read_csv(self.path)
            kept = kept[(kept["split"] != "test") & (kept["epoch"] <= done)]
            self.rows = kept.to_dict("records")

    def callbacks(self) -> list[Any]:
        return [epoch_callback(self._epoch)]

    def _epoch(self, epoch: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            split, name = ("val", key[4:]) if key.startswith("val_") else ("train", key)
            self._add(epoch, split, name, value)
        self._write()

    def finish(self, results: RunResults) -> None:
        for name, value in {**results.metrics, "threshold": results.threshold}.items():
            self._add(results.epochs, "test", name, value)
        self._write()

    def _add(self, epoch: int, split: str, name: str, value: float) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        self.rows.append(
            {"epoch": epoch, "split": split, "name": name, "value": value, "time": now}
        )

    def _write(self) -> None:
        runs.write_csv(self.path, pd.DataFrame(self.rows, columns=COLUMNS))
