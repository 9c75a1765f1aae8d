"""Empty cells of the series: filled by linear interpolation, or refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from anomaly_cli.errors import AdxUserError

# The same choices as dataset=tabular; for a series, impute means interpolate.
MISSING = ("impute", "error")


def fill_missing(
    frame: pd.DataFrame, columns: list[str], missing: str, path: Path
) -> tuple[np.ndarray, dict[str, int]]:
    """(points, columns) float64 values without NaN, and how many cells each column had empty."""
    if missing not in MISSING:
        raise AdxUserError(f"dataset.missing={missing} is unknown; choose one of: {MISSING}")
    filled = {}
    for column in columns:
        empty = frame[column].isna()
        if empty.all():
            raise AdxUserError(
                f"column {column} in {path} has no value at all; drop it from dataset.value_columns"
            )
        if empty.any() and missing == "error":
            raise AdxUserError(
                f"column {column} in {path} has {int(empty.sum())} empty cells (first at row "
                f"{int(np.flatnonzero(empty.to_numpy())[0])}); set dataset.missing=impute"
            )
        filled[column] = int(empty.sum())
    # Linear in point position; the edges repeat the nearest known value.
    values = frame[columns].astype(np.float64).interpolate(method="linear", limit_direction="both")
    return values.to_numpy(), filled
