"""Which columns of the CSV form the series."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from anomaly_cli.data.inputs import require_columns
from anomaly_cli.errors import AdxUserError


def value_columns(frame: pd.DataFrame, cfg: DictConfig, path: Path) -> list[str]:
    """The configured columns, or every numeric column but the anomaly and time columns."""
    reserved = {cfg.get("anomaly_column"), cfg.get("time_column")} - {None}
    chosen = cfg.get("value_columns")
    if chosen is None:
        columns = [str(c) for c in frame.columns if c not in reserved and _numeric(frame[c])]
        if not columns:
            raise AdxUserError(
                f"{path} has no numeric column besides the anomaly and time columns "
                f"(columns: {', '.join(map(str, frame.columns))}); set dataset.value_columns"
            )
        return columns
    columns = [str(chosen)] if isinstance(chosen, str) else [str(c) for c in chosen]
    if not columns:
        raise AdxUserError("dataset.value_columns=[] names no column; list columns or use null")
    require_columns(frame, columns, "dataset.value_columns", path)
    for column in columns:
        if column in reserved:
            raise AdxUserError(
                f"dataset.value_columns holds {column}, the anomaly or time column; drop it"
            )
        values = frame[column]
        if not _numeric(values):
            bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
            example = f" (e.g. {bad.iloc[0]!r} at row {bad.index[0]})" if len(bad) else ""
            raise AdxUserError(
                f"dataset.value_columns: column {column} in {path} is not numeric{example}; "
                "list numeric columns only"
            )
    return columns


def _numeric(values: pd.Series) -> bool:
    # A 0/1 flag read as booleans is a label, not a measurement.
    return is_numeric_dtype(values) and not is_bool_dtype(values)
