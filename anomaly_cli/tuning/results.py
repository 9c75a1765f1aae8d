"""What a search leaves in its run folder: trials.csv, the printed table, best_params.yaml.

best_params.yaml holds the best trial's values twice: as a mapping, and as
the `adx train` command line that trains the same configuration again. The
best trial's own folder (checkpoints, scores, metrics, plots) is named there
too; its metrics.json is copied to the tune folder as best_metrics.json.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from anomaly_cli import runs
from anomaly_cli.tuning.space import as_overrides
from anomaly_cli.tuning.trials import TrialRecord

TRIALS_CSV = "trials.csv"
TRIALS_TXT = "trials.txt"
BEST_PARAMS = "best_params.yaml"
BEST_METRICS = "best_metrics.json"
# Overrides of the tune command that a train command cannot take.
_TUNE_ONLY = ("tune.", "search=", "resume=", "hydra.", "task_name=")


def trials_frame(records: Sequence[TrialRecord], objective: str) -> pd.DataFrame:
    """One row per trial: its values, objective, epochs, seconds, status (and error)."""
    keys = list(dict.fromkeys(k for r in records for k in r.params))
    rows = [
        {
            "trial": r.trial,
            **{k: r.params.get(k) for k in keys},
            objective: r.objective if math.isfinite(r.objective) else None,
            "epochs": r.epochs,
            "seconds": r.seconds,
            "status": r.status,
            "error": r.error,
            "folder": r.folder,
        }
        for r in records
    ]
    columns = ["trial", *keys, objective, "epochs", "seconds", "status", "error", "folder"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["epochs"] = frame["epochs"].astype("Int64")  # a failed trial has none
    return frame


def write_trials(run_dir: Path, records: Sequence[TrialRecord], objective: str) -> str:
    """trials.csv and trials.txt; returns the table as printed."""
    from tabulate import tabulate

    frame = trials_frame(records, objective)
    runs.write_csv(run_dir / TRIALS_CSV, frame)
    shown = frame.drop(columns=["folder", "error"]).astype(object).where(frame.notna(), "-")
    text = tabulate(shown.values.tolist(), headers=list(shown.columns), tablefmt="simple")
    runs.write_text(run_dir / TRIALS_TXT, text + "\n")
    return text


def train_command(tune_overrides: Sequence[str], params: dict[str, Any]) -> str:
    """The `adx train` command that trains `params` with the rest of the tune command's setup."""
    kept = [o for o in tune_overrides if not o.lstrip("+~").startswith(_TUNE_ONLY)]
    searched = {o.split("=", 1)[0] for o in as_overrides(params)}
    kept = [o for o in kept if o.split("=", 1)[0] not in searched]
    return shlex.join(["adx", "train", *kept, *as_overrides(params)])


def write_best(
    run_dir: Path,
    best: TrialRecord,
    objective: str,
    tune_overrides: Sequence[str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """best_params.yaml, and the best trial's metrics.json copied beside it."""
    folder = run_dir / best.folder
    record = {
        "objective": objective,
        "value": best.objective,
        "trial": best.trial,
        "params": best.params,
        "overrides": as_overrides(best.params),
        "command": train_command(tune_overrides, best.params),
        "run": str(folder),
        "metrics": str(folder / runs.METRICS_JSON),
        **(extra or {}),
    }
    runs.write_text(run_dir / BEST_PARAMS, yaml.safe_dump(record, sort_keys=False))
    if (folder / runs.METRICS_JSON).is_file():
        metrics = (folder / runs.METRICS_JSON).read_text(encoding="utf-8")
        runs.write_text(run_dir / BEST_METRICS, metrics)
    return record
