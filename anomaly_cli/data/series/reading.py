"""A series' CSV file: its rows in time order, and a CSV of anomaly intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomaly_cli.data.inputs import existing_file, require_columns
from anomaly_cli.errors import AdxUserError, first_lines

# pandas' errors for a file that is not a CSV table.
UNREADABLE_CSV = (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError)


def csv_path(value: Any, key: str) -> Path:
    return existing_file(value, key, "pass the path of a CSV file", f"pass {key}=<file.csv>")


def read_series(path: Path, time_column: str | None) -> pd.DataFrame:
    """The CSV's rows in time order (sorted by `time_column` when given)."""
    try:
        frame = pd.read_csv(path)
    except UNREADABLE_CSV as error:
        raise AdxUserError(
            f"dataset.path={path} is not a readable CSV file: {first_lines(error)}"
        ) from None
    if frame.empty:
        raise AdxUserError(f"dataset.path={path} holds no rows; the series needs data points")
    if time_column is None:
        return frame
    require_columns(frame, [time_column], "dataset.time_column", path)
    if frame[time_column].isna().any():
        row = int(np.flatnonzero(frame[time_column].isna().to_numpy())[0])
        raise AdxUserError(
            f"dataset.time_column={time_column} has an empty cell at row {row} of {path}; "
            "every point needs a time"
        )
    # A stable sort keeps the file's order among equal times.
    return frame.sort_values(time_column, kind="mergesort").reset_index(drop=True)


def read_intervals(value: Any) -> list[list[Any]]:
    """[[start, end], ...] from the CSV at dataset.intervals_path (columns start,end)."""
    path = csv_path(value, "dataset.intervals_path")
    try:
        frame = pd.read_csv(path)
    except UNREADABLE_CSV:
        frame = pd.DataFrame()
    if not {"start", "end"} <= set(frame.columns):
        raise AdxUserError(
            f"dataset.intervals_path={value} needs columns start,end "
            f"(found: {', '.join(map(str, frame.columns)) or 'none'})"
        )
    return frame[["start", "end"]].to_numpy().tolist()
