"""A benchmark folder's record: results.csv (one row per finished or failed cell) and cells.json.

Only the process that launches the cells writes these files, always whole
and atomically (a temporary file renamed over the old one), so an interrupt
at any moment leaves the previous complete file. `cells.json` is written
before a batch is launched and says which folder holds which cell; a cell
that finished after its row could be written (the launcher was killed) is
recovered from its folder on the next run, so no finished cell is run twice.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomaly_cli import runs
from anomaly_cli.benchmarking.grid import Cell, contamination_text
from anomaly_cli.errors import first_lines

if TYPE_CHECKING:
    import pandas as pd

RESULTS_CSV = "results.csv"
CELLS_JSON = "cells.json"
CELLS_DIR = "cells"
FINISHED = "finished"
FAILED = "failed"
# Its training stopped at a NaN loss; scored with the best epoch before: a result.
DIVERGED = "diverged"
WITH_RESULTS = (FINISHED, DIVERGED)
# results.csv's first columns; each metric of metrics.json follows them.
ID_COLUMNS = (
    "model",
    "normal_class",
    "contamination",
    "repeat",
    "trainer_seed",
    "dataset_seed",
    "settings",
    "status",
    "error",
)
TAIL_COLUMNS = ("train_seconds", "folder", "recorded")
_INTEGER_COLUMNS = ("repeat", "trainer_seed")


def read_results(folder: Path) -> pd.DataFrame:
    """results.csv as text columns plus numbers; an unreadable file is rebuilt by recovery."""
    import pandas as pd

    path = folder / RESULTS_CSV
    if not path.is_file():
        return pd.DataFrame(columns=[*ID_COLUMNS, *TAIL_COLUMNS])
    try:
        text = {c: str for c in ID_COLUMNS if c not in _INTEGER_COLUMNS}
        frame = pd.read_csv(path, dtype=text)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        damaged = path.with_name(f"{RESULTS_CSV}.damaged-{int(time.time())}")
        path.rename(damaged)
        from anomaly_cli.tasks.common import log

        log.warning(
            "%s could not be read (%s); kept as %s, and finished cells are read back from "
            "their folders",
            path,
            first_lines(error)[:120],
            damaged.name,
        )
        return pd.DataFrame(columns=[*ID_COLUMNS, *TAIL_COLUMNS])
    missing = [c for c in ID_COLUMNS if c not in frame.columns]
    if missing:
        raise runs.DamagedFile(
            f"{path} lacks column(s) {', '.join(missing)}; move it aside and run the same "
            "command again (finished cells are read back from their folders)"
        )
    for column in text:  # a blank text cell is '', not NaN: settings '' means the defaults
        frame[column] = frame[column].fillna("")
    return frame


def key_of_row(row: Mapping[str, Any]) -> tuple[str, str, str, int]:
    return (
        str(row["model"]),
        str(row["normal_class"]),
        str(row["contamination"]),
        int(row["repeat"]),
    )


def finished_keys(frame: pd.DataFrame) -> set[tuple[tuple[str, str, str, int], str]]:
    """(cell key, settings) of every finished row."""
    done = frame[frame["status"].isin(WITH_RESULTS)]
    return {(key_of_row(row), str(row["settings"])) for row in done.to_dict("records")}


def append_rows(folder: Path, frame: pd.DataFrame, rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """results.csv with `rows` added, written whole (atomically); returns the new frame."""
    import pandas as pd

    new = pd.DataFrame(list(rows))
    if new.empty:
        return frame
    merged = pd.concat([frame, new], ignore_index=True) if len(frame) else new
    metrics = [c for c in merged.columns if c not in (*ID_COLUMNS, *TAIL_COLUMNS)]
    merged = merged[[*ID_COLUMNS, *metrics, *TAIL_COLUMNS]]
    runs.write_csv(folder / RESULTS_CSV, merged)
    return merged


def row_for(cell: Cell, settings: str, cell_dir: Path, bench_dir: Path) -> dict[str, Any]:
    """What a launched cell's folder says: its metrics, or why it has none."""
    row: dict[str, Any] = {
        "model": cell.model,
        "normal_class": cell.normal_class,
        "contamination": contamination_text(cell.contamination),
        "repeat": cell.repeat,
        "trainer_seed": cell.trainer_seed,
        "dataset_seed": "" if cell.dataset_seed is None else cell.dataset_seed,
        "settings": settings,
        "status": FAILED,
        "error": "",
        "train_seconds": math.nan,
        "folder": _relative(cell_dir, bench_dir),
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    metrics_path = cell_dir / runs.METRICS_JSON
    if metrics_path.is_file():
        try:
            metrics = runs.read_json(metrics_path)
        except (OSError, ValueError) as error:
            row["error"] = f"metrics.json unreadable: {first_lines(error)[:200]}"
            return row
        row.update({str(k): v for k, v in metrics.items() if isinstance(v, (int, float))})
        info = runs.optional_json_object(cell_dir / runs.RUN_INFO)
        row["train_seconds"] = info.get("train_seconds", math.nan)
        status = runs.optional_json_object(cell_dir / runs.STATUS)
        row["status"] = DIVERGED if status.get("status") == DIVERGED else FINISHED
        row["error"] = str(status.get("error") or "") if row["status"] == DIVERGED else ""
        return row
    status = runs.optional_json_object(cell_dir / runs.STATUS)
    if not cell_dir.is_dir():
        row["error"] = "the job left no folder (its error is in the launcher's output)"
    else:
        state = status.get("status") or "no status.json"
        error = status.get("error") or ""
        row["status"] = FAILED if state != "interrupted" else "interrupted"
        row["error"] = f"{state}: {error}" if error else str(state)
    return row


def _relative(path: Path, start: Path) -> str:
    try:
        return str(path.relative_to(start))
    except ValueError:
        return str(path)


def read_cell_map(folder: Path) -> dict[str, dict[str, Any]]:
    """cells.json: cell folder (relative) -> the cell and settings it was launched for."""
    try:
        data = json.loads((folder / CELLS_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_cell_map(folder: Path, mapping: Mapping[str, dict[str, Any]]) -> None:
    runs.write_json(folder / CELLS_JSON, dict(mapping))


def cell_entry(cell: Cell, settings: str) -> dict[str, Any]:
    return {**asdict(cell), "settings": settings}


def cell_from_entry(entry: Mapping[str, Any]) -> tuple[Cell, str]:
    fields = {k: entry[k] for k in Cell.__dataclass_fields__ if k != "extra"}
    return Cell(**fields, extra=tuple(entry.get("extra") or ())), str(entry.get("settings", ""))


def recover(bench_dir: Path, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for cells that finished after the last results.csv was written."""
    recorded = set(frame["folder"].astype(str)) if "folder" in frame.columns else set()
    rows = []
    for relative, entry in read_cell_map(bench_dir).items():
        cell_dir = bench_dir / relative
        if relative in recorded or not (cell_dir / runs.METRICS_JSON).is_file():
            continue
        try:
            cell, settings = cell_from_entry(entry)
        except (KeyError, TypeError):
            continue
        rows.append(row_for(cell, settings, cell_dir, bench_dir))
    return rows


def free_folder(bench_dir: Path, cell: Cell) -> Path:
    """cells/<name>, or cells/<name>_2, ... when an earlier attempt's folder is there."""
    base = bench_dir / CELLS_DIR / cell.name
    candidate, attempt = base, 1
    while candidate.exists():
        attempt += 1
        candidate = base.with_name(f"{base.name}_{attempt}")
    return candidate
