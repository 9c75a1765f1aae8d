"""The anomaly flag of each point: from a 0/1 column or from anomaly intervals."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig

from anomaly_cli.data.base import ANOMALY
from anomaly_cli.data.inputs import is_whole, plain, require_columns
from anomaly_cli.data.series.reading import read_intervals
from anomaly_cli.errors import AdxUserError

LABEL_SOURCES = ("anomaly_column", "intervals", "intervals_path")
FLAG_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}


def point_labels(frame: pd.DataFrame, cfg: DictConfig, path: Path) -> np.ndarray:
    """0 normal / 1 anomaly per point, from anomaly_column or from intervals."""
    sources = [k for k in LABEL_SOURCES if cfg.get(k) is not None]
    if not sources:
        raise AdxUserError(
            "dataset=timeseries needs point labels to evaluate; set dataset.anomaly_column "
            "(a 0/1 column), dataset.intervals=[[start,end],...] or dataset.intervals_path"
        )
    if len(sources) > 1:
        raise AdxUserError(
            f"dataset.{' and dataset.'.join(sources)} are all set; keep one source of labels"
        )
    if cfg.get("anomaly_column") is not None:
        return flag_column(frame, str(cfg.anomaly_column), path)
    if cfg.get("intervals") is not None:
        intervals, key = cfg.intervals, f"dataset.intervals={plain(cfg.intervals)}"
    else:
        intervals = read_intervals(cfg.intervals_path)
        key = f"dataset.intervals_path={cfg.intervals_path}"
    return interval_labels(intervals, len(frame), key)


def flag_column(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """A column of 0/1 or true/false as int8 labels; any other value is an error."""
    require_columns(frame, [column], "dataset.anomaly_column", path)
    text = frame[column].map(lambda v: "<empty>" if pd.isna(v) else str(v).strip().lower())
    bad = sorted(set(text[~text.isin(list(FLAG_VALUES))]))
    if bad:
        raise AdxUserError(
            f"dataset.anomaly_column={column} in {path} must hold 0/1 or true/false, "
            f"found {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}"
        )
    return text.map(FLAG_VALUES).to_numpy(dtype=np.int8)


def interval_labels(intervals: Sequence[Any], n: int, key: str) -> np.ndarray:
    """Labels of n points with [start, end] (inclusive) marked anomalous."""
    labels = np.zeros(n, dtype=np.int8)
    for item in intervals:
        pair = list(item) if isinstance(item, (list, tuple, ListConfig)) else [item]
        if len(pair) != 2 or not all(is_whole(v) for v in pair):
            raise AdxUserError(f"{key}: interval {plain(item)} must be [start, end] point indices")
        start, end = int(pair[0]), int(pair[1])
        if not 0 <= start <= end < n:
            raise AdxUserError(
                f"{key}: interval [{start}, {end}] must satisfy 0 <= start <= end < {n} "
                "(the series' point count)"
            )
        labels[start : end + 1] = ANOMALY
    return labels


def label_source(cfg: DictConfig) -> str:
    """Where the labels came from, for data.json."""
    if cfg.get("anomaly_column") is not None:
        return f"anomaly_column {cfg.anomaly_column}"
    if cfg.get("intervals") is not None:
        return f"intervals {plain(cfg.intervals)}"
    return f"intervals_path {Path(str(cfg.intervals_path)).resolve()}"
