"""Metric tables in seed 000's layout: metrics as rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from tabulate import tabulate

from anomaly_cli.evaluation.metrics import COUNTS, display_name


def format_value(key: str, value: Any) -> str:
    return str(int(value)) if key in COUNTS else f"{float(value):.4f}"


def metrics_table(metrics: Mapping[str, Any]) -> str:
    rows = [[display_name(k), format_value(k, v)] for k, v in metrics.items()]
    return tabulate(rows, headers=["Metric", "Value"], tablefmt="grid", disable_numparse=True)


def metrics_frame(metrics: Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({"metric": list(metrics), "value": list(metrics.values())})


def sweep_frame(columns: Sequence[str], per_threshold: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per metric, one column per threshold (as typed)."""
    keys = list(per_threshold[0])
    data = {"metric": keys}
    for column, metrics in zip(columns, per_threshold, strict=True):
        data[column] = [metrics[k] for k in keys]
    return pd.DataFrame(data)


def sweep_table(frame: pd.DataFrame) -> str:
    columns = [c for c in frame.columns if c != "metric"]
    rows = [
        [
            display_name(row["metric"]),
            *(format_value(row["metric"], row[c]) for c in columns),
        ]
        for _, row in frame.iterrows()
    ]
    return tabulate(rows, headers=["Metric", *columns], tablefmt="grid", disable_numparse=True)
