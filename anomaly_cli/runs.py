"""Run-directory layout and atomic artifact I/O.

Every artifact is written to a temporary file in the same folder and renamed
into place, so a killed run leaves either the old file or the new one, never
half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from anomaly_cli.errors import AdxUserError
from anomaly_cli.resolvers import LATEST

# File names inside a run directory, in one place so verbs agree on them.
CONFIG = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT = f"{CHECKPOINT_DIR}/best.keras"
# Latest epoch's model and optimizer (last-NNNN.keras) and the state naming it.
TRAINING_STATE = f"{CHECKPOINT_DIR}/state.json"
HISTORY = "history.csv"
SCORES = "scores.csv"
ROC = "roc.csv"
PR = "pr.csv"
THRESHOLD = "threshold.json"
METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
METRICS_TXT = "metrics.txt"
# Pixel AUROC / AUPR against ground-truth masks, when the test split has them.
PIXEL_METRICS = "pixel_metrics.json"
RUN_INFO = "run.json"
# What the data was: source, protocol, counts per split and class, skipped files.
DATA_INFO = "data.json"
# State fitted on train (scaler, PCA, z-score) that evaluate reapplies.
DATA_TRANSFORM = "data_transform.json"
ROC_PLOT = "plots/roc.png"
HIST_PLOT = "plots/score_hist.png"
SWEEP_TXT = "sweep.txt"
SWEEP_CSV = "sweep.csv"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success.

    The temporary name keeps the suffix, since some writers (Keras, matplotlib)
    choose the format from it.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | os.PathLike[str], frame: Any) -> None:
    """Write a pandas DataFrame without its index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def update_latest(run_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str]) -> None:
    """Point `<output_dir>/latest` at `run_dir` (a relative link, swapped atomically)."""
    out = Path(output_dir)
    link = out / LATEST
    target = os.path.relpath(Path(run_dir).resolve(), out.resolve())
    tmp = out / f".{LATEST}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def remove_run_dir(run_dir: str | os.PathLike[str]) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)


def find_run(run: str | None, output_dir: str, needs: tuple[str, ...]) -> Path:
    """The run directory a verb re-enters, checked to hold the files it needs."""
    path = Path(run) if run else Path(output_dir) / LATEST
    label = f"run={run}" if run else f"the latest run ({path})"
    if not path.is_dir():
        hint = "pass run=<dir> of a finished run" if run else "train a model first or pass run="
        raise AdxUserError(f"{label} is not a run directory; {hint}")
    for name in needs:
        if not (path / name).is_file():
            raise AdxUserError(
                f"{label} has no {name}; pass run=<dir> of a finished train or evaluate run"
            )
    return path.resolve()
