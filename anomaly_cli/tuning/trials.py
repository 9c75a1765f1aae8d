"""One trial = one ordinary `adx train` run in `<tune run>/trials/<id>/`, and its record.

Both searches run their trainings through `TrialRunner`: Keras Tuner's
trials and the batch sizes of seed 002's Algorithm 1. A trial that fails
(bad hyperparameters, a crash) is recorded with its status and error and the
search goes on; an interrupt stops the search, and the trial's folder is
continued (`adx train resume=` in that folder) when the search resumes.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from anomaly_cli import runs
from anomaly_cli.data.base import Splits
from anomaly_cli.errors import AdxUserError, first_lines, one_line
from anomaly_cli.tasks.lifecycle import take_outcome, write_status
from anomaly_cli.tuning.objective import measure, run_info
from anomaly_cli.tuning.space import trial_config

TRIALS_DIR = "trials"
# Each trial's record, next to its run's files; trials.csv is rebuilt from them.
RECORD = "tune_trial.json"
# What the trial's training printed (progress, its metrics table).
OUTPUT = "output.txt"
FAILED = "failed"


@dataclass
class TrialRecord:
    trial: str
    params: dict[str, Any]
    objective: float
    epochs: int | None
    seconds: float
    status: str
    folder: str
    started: float = 0.0  # wall-clock time, which orders the trials in tables
    error: str = ""

    @property
    def usable(self) -> bool:
        """Whether the trial ended with a model and a number to rank it by."""
        return self.status != FAILED and math.isfinite(self.objective)


class TrialRunner:
    """Trains one trial's config in its own folder and measures it on validation."""

    def __init__(self, cfg: DictConfig, splits: Splits, run_dir: Path, objective: str) -> None:
        self.cfg, self.splits, self.run_dir, self.objective = cfg, splits, run_dir, objective

    def folder(self, trial_id: str) -> Path:
        return self.run_dir / TRIALS_DIR / trial_id

    def run(self, trial_id: str, params: dict[str, Any]) -> TrialRecord:
        """Train and measure; an interrupt (or SIGTERM) escapes, anything else is recorded."""
        from anomaly_cli.tasks.train import train
        from anomaly_cli.training import graph_memory

        folder = self.folder(trial_id)
        cfg = trial_config(self.cfg, params)
        if folder.is_dir():  # started before an interrupt: go on where it stopped
            cfg.resume = str(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_status(folder, "train", "running")
        traced_before = graph_memory.custom_gradients()
        started, wall = time.monotonic(), time.time()
        error, outcome = "", (FAILED, {})
        printed = io.StringIO()  # train's metrics table per trial: the search prints one line
        take_outcome()  # the trial's own outcome only, never one left by the search
        try:
            with contextlib.redirect_stdout(printed):
                train(cfg, folder)
                outcome = take_outcome()  # finished, or diverged (its best epoch assessed)
                value = measure(self.objective, self.splits, cfg, folder)
        except KeyboardInterrupt:
            write_status(folder, "train", "interrupted", next=f"adx tune resume={self.run_dir}")
            raise
        except Exception as failure:  # a failed trial must not end the search
            value, error = math.nan, _describe(failure)
        finally:
            graph_memory.free_job_graphs(traced_before)
            runs.write_text(folder / OUTPUT, printed.getvalue())
        info = run_info(folder)
        status, details = (FAILED, {"error": error}) if error else outcome
        write_status(folder, "train", status, **details)
        record = TrialRecord(
            trial=trial_id,
            params=dict(params),
            objective=value,
            epochs=info.get("epochs_run"),
            seconds=round(time.monotonic() - started, 3),
            status=status,
            folder=str(folder.relative_to(self.run_dir)),
            started=wall,
            error=error,
        )
        runs.write_json(folder / RECORD, _jsonable(asdict(record)))
        return record


def read_records(run_dir: Path) -> list[TrialRecord]:
    """Every recorded trial of the tune run, in the order they started."""
    found = []
    for path in (run_dir / TRIALS_DIR).glob(f"*/{RECORD}"):
        data = runs.read_json(path)
        data["objective"] = math.nan if data["objective"] is None else float(data["objective"])
        found.append(TrialRecord(**data))
    return sorted(found, key=lambda r: r.started)


def progress_line(record: TrialRecord, objective: str) -> str:
    value = f"{record.objective:.6g}" if math.isfinite(record.objective) else "-"
    params = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.params.items()
    )
    error = f" ({record.error})" if record.error else ""
    return (
        f"trial {record.trial}: {params}: {objective} {value}, {record.epochs or 0} epochs, "
        f"{record.seconds:.1f} s, {record.status}{error}"
    )


def _describe(failure: BaseException) -> str:
    kind = "" if isinstance(failure, AdxUserError) else f"{type(failure).__name__}: "
    return one_line(f"{kind}{first_lines(failure)}")[:300]


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    """NaN is not JSON: an objective that does not exist is written as null."""
    value = record["objective"]
    return {**record, "objective": value if math.isfinite(value) else None}
