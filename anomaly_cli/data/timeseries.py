"""A time series from a CSV file, cut into sliding windows.

Each row is one time point; `value_columns` form the series and the labels
come per point (`label_column`) or as anomaly intervals. The series is cut in
time order into train, val and test parts (no shuffling: the future must not
leak into training), and each part into windows of `window` points every
`stride` points, so no window crosses a cut. A window is one sample of shape
(window, columns), anomalous when any of its points is.

Empty cells are interpolated; every column is z-scored with statistics of the
training part only, saved as the run's transform so `adx evaluate` reuses
them. `point_scores.csv` spreads the test windows' scores back onto points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig

from anomaly_cli.data.base import (
    ANOMALY,
    CLEAN,
    NORMAL,
    TRANSDUCTIVE,
    UNSUPERVISED,
    ArraySplit,
    LoadContext,
    Splits,
)
from anomaly_cli.errors import AdxUserError

PARTS = ("train", "val", "test")
MISSING = ("interpolate", "error")
_LABEL_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}


def load(cfg: DictConfig, ctx: LoadContext) -> Splits:
    if ctx.protocol == TRANSDUCTIVE:
        raise AdxUserError(
            "protocol=transductive would score the training windows again; "
            "dataset=timeseries supports protocol=clean or protocol=unsupervised"
        )
    if ctx.protocol not in (CLEAN, UNSUPERVISED):
        raise AdxUserError(f"protocol={ctx.protocol} is unknown; choose clean or unsupervised")
    window, stride = int(cfg.window), int(cfg.stride)
    if window < 1:
        raise AdxUserError(f"dataset.window={window} must be at least 1 point")
    if stride < 1:
        raise AdxUserError(f"dataset.stride={stride} must be at least 1 point")
    path = _existing_file(cfg.path, "dataset.path")
    frame = read_series(path, cfg.get("time_column"))
    n = len(frame)
    if window > n:
        raise AdxUserError(
            f"dataset.window={window} is longer than the series ({n} points in {path}); "
            "lower dataset.window or use a longer series"
        )
    labels = point_labels(frame, cfg, path)
    columns = value_columns(frame, cfg, path)
    values, filled = fill_missing(frame, columns, str(cfg.missing), path)
    cuts = cut_points(n, cfg.split, window)

    starts, window_labels, dropped = part_windows(labels, cuts, window, stride, ctx.protocol)
    check_parts(window_labels, cuts, dropped, window, ctx.protocol)

    train_begin, train_end = cuts["train"]
    fit_rows = np.arange(train_begin, train_end)
    if ctx.protocol == CLEAN:  # labels are known: keep anomalies out of the statistics
        fit_rows = fit_rows[labels[fit_rows] == NORMAL]
    if ctx.transform is not None:
        transform = _checked_transform(ctx.transform, columns)
        fitted_on = "data_transform.json of the trained run"
    else:
        transform = fit_zscore(values[fit_rows], columns)
        fitted_on = "normal points of the train part" if ctx.protocol == CLEAN else "train part"
    scaled = apply_zscore(values, transform)

    times = None if cfg.get("time_column") is None else frame[cfg.time_column].to_numpy()
    parts = {
        name: _window_split(scaled, starts[name], window_labels[name], window, times)
        for name in PARTS
    }
    info = {
        "source": "csv time series",
        "path": str(path.resolve()),
        "columns": columns,
        "time_column": cfg.get("time_column"),
        "labels_from": _label_source(cfg),
        "window": window,
        "stride": stride,
        "points": {name: end - begin for name, (begin, end) in cuts.items()},
        "point_ranges": {name: [begin, end - 1] for name, (begin, end) in cuts.items()},
        "anomalous_points": {
            name: int(labels[begin:end].sum()) for name, (begin, end) in cuts.items()
        },
        "dropped_train_windows": dropped,
        "missing_values_filled": filled,
        "zscore": {"fitted_on": fitted_on, **_by_column(transform)},
    }
    return Splits(
        **parts,
        input_shape=(window, len(columns)),
        info=info,
        protocol=ctx.protocol,
        transform=transform,
        reports=point_score_report(starts["test"], window, labels, times),
    )


def read_series(path: Path, time_column: str | None) -> pd.DataFrame:
    """The CSV's rows in time order (sorted by `time_column` when given)."""
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise AdxUserError(
            f"dataset.path={path} is not a readable CSV file: {first_line}"
        ) from None
    if frame.empty:
        raise AdxUserError(f"dataset.path={path} holds no rows; the series needs data points")
    if time_column is None:
        return frame
    _require_columns(frame, [time_column], "dataset.time_column", path)
    if frame[time_column].isna().any():
        row = int(np.flatnonzero(frame[time_column].isna().to_numpy())[0])
        raise AdxUserError(
            f"dataset.time_column={time_column} has an empty cell at row {row} of {path}; "
            "every point needs a time"
        )
    # A stable sort keeps the file's order among equal times.
    return frame.sort_values(time_column, kind="mergesort").reset_index(drop=True)


def point_labels(frame: pd.DataFrame, cfg: DictConfig, path: Path) -> np.ndarray:
    """0 normal / 1 anomaly per point, from label_column or from intervals."""
    sources = [k for k in ("label_column", "intervals", "intervals_path") if cfg.get(k) is not None]
    if not sources:
        raise AdxUserError(
            "dataset=timeseries needs point labels to evaluate; set dataset.label_column "
            "(a 0/1 column), dataset.intervals=[[start,end],...] or dataset.intervals_path"
        )
    if len(sources) > 1:
        raise AdxUserError(
            f"dataset.{' and dataset.'.join(sources)} are all set; keep one source of labels"
        )
    if cfg.get("label_column") is not None:
        column = str(cfg.label_column)
        _require_columns(frame, [column], "dataset.label_column", path)
        text = frame[column].map(lambda v: "<empty>" if pd.isna(v) else str(v).strip().lower())
        bad = sorted(set(text[~text.isin(list(_LABEL_VALUES))]))
        if bad:
            raise AdxUserError(
                f"dataset.label_column={column} in {path} must hold 0/1 or true/false, "
                f"found {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}"
            )
        return text.map(_LABEL_VALUES).to_numpy(dtype=np.int8)
    if cfg.get("intervals") is not None:
        intervals, key = cfg.intervals, f"dataset.intervals={_plain(cfg.intervals)}"
    else:
        intervals = _read_intervals(cfg.intervals_path)
        key = f"dataset.intervals_path={cfg.intervals_path}"
    return interval_labels(intervals, len(frame), key)


def interval_labels(intervals: Sequence[Any], n: int, key: str) -> np.ndarray:
    """Labels of n points with [start, end] (inclusive) marked anomalous."""
    labels = np.zeros(n, dtype=np.int8)
    for item in intervals:
        pair = list(item) if isinstance(item, (list, tuple, ListConfig)) else [item]
        if len(pair) != 2 or not all(_is_int(v) for v in pair):
            raise AdxUserError(f"{key}: interval {_plain(item)} must be [start, end] point indices")
        start, end = int(pair[0]), int(pair[1])
        if not 0 <= start <= end < n:
            raise AdxUserError(
                f"{key}: interval [{start}, {end}] must satisfy 0 <= start <= end < {n} "
                "(the series' point count)"
            )
        labels[start : end + 1] = ANOMALY
    return labels


def value_columns(frame: pd.DataFrame, cfg: DictConfig, path: Path) -> list[str]:
    """The series' columns: the configured ones, or every numeric non-label, non-time column."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    reserved = {cfg.get("label_column"), cfg.get("time_column")} - {None}
    chosen = cfg.get("value_columns")
    if chosen is None:
        columns = [
            str(c)
            for c in frame.columns
            if c not in reserved and is_numeric_dtype(frame[c]) and not is_bool_dtype(frame[c])
        ]
        if not columns:
            raise AdxUserError(
                f"{path} has no numeric column besides the label and time columns "
                f"(columns: {', '.join(map(str, frame.columns))}); set dataset.value_columns"
            )
        return columns
    columns = [str(chosen)] if isinstance(chosen, str) else [str(c) for c in chosen]
    if not columns:
        raise AdxUserError("dataset.value_columns=[] names no column; list columns or use null")
    _require_columns(frame, columns, "dataset.value_columns", path)
    for column in columns:
        if column in reserved:
            raise AdxUserError(
                f"dataset.value_columns holds {column}, the label or time column; drop it"
            )
        values = frame[column]
        if not is_numeric_dtype(values) or is_bool_dtype(values):
            bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
            example = f" (e.g. {bad.iloc[0]!r} at row {bad.index[0]})" if len(bad) else ""
            raise AdxUserError(
                f"dataset.value_columns: column {column} in {path} is not numeric{example}; "
                "list numeric columns only"
            )
    return columns


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
                f"{int(np.flatnonzero(empty.to_numpy())[0])}); set dataset.missing=interpolate"
            )
        filled[column] = int(empty.sum())
    # Linear in point position; the edges repeat the nearest known value.
    values = frame[columns].astype(np.float64).interpolate(method="linear", limit_direction="both")
    return values.to_numpy(), filled


def cut_points(n: int, fractions: DictConfig, window: int) -> dict[str, tuple[int, int]]:
    """[begin, end) point ranges of the consecutive train, val and test parts."""
    shares = np.array([float(fractions[k]) for k in PARTS])
    if np.any(shares <= 0):
        raise AdxUserError(
            f"dataset.split={_plain(fractions)} must give train, val and test a positive fraction"
        )
    shares = shares / shares.sum()
    train_end = round(n * shares[0])
    val_end = train_end + round(n * shares[1])
    cuts = {"train": (0, train_end), "val": (train_end, val_end), "test": (val_end, n)}
    for name, (begin, end) in cuts.items():
        if end - begin < window:
            raise AdxUserError(
                f"the {name} part has {end - begin} points (dataset.split.{name}="
                f"{fractions[name]} of {n}), fewer than dataset.window={window}; "
                f"raise dataset.split.{name} or lower dataset.window"
            )
    return cuts


def part_windows(
    labels: np.ndarray, cuts: dict[str, tuple[int, int]], window: int, stride: int, protocol: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """Window starts and labels per part, and how many anomalous train windows the clean
    protocol dropped (it trains on normal windows only)."""
    starts = {name: window_starts(*cuts[name], window, stride) for name in PARTS}
    window_labels = {name: windows_anomalous(labels, starts[name], window) for name in PARTS}
    if protocol != CLEAN:
        return starts, window_labels, 0
    keep = window_labels["train"] == NORMAL
    starts["train"], window_labels["train"] = starts["train"][keep], window_labels["train"][keep]
    return starts, window_labels, int(np.sum(~keep))


def window_starts(begin: int, end: int, window: int, stride: int) -> np.ndarray:
    """First points of the windows that fit inside [begin, end)."""
    return np.arange(begin, end - window + 1, stride, dtype=np.int64)


def windows_anomalous(labels: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """1 for each window holding at least one anomalous point."""
    running = np.concatenate([[0], np.cumsum(labels, dtype=np.int64)])
    return (running[starts + window] - running[starts] > 0).astype(np.int8)


def check_parts(
    labels: dict[str, np.ndarray],
    cuts: dict[str, tuple[int, int]],
    dropped: int,
    window: int,
    protocol: str,
) -> None:
    """Clean train and val need a normal window (fit, threshold); test needs both kinds."""

    def where(name: str) -> str:
        begin, end = cuts[name]
        return f"the {name} part (points {begin}-{end - 1})"

    def count(name: str) -> str:
        return (
            f"{int(np.sum(labels[name] == NORMAL))} normal, {int(np.sum(labels[name]))} anomalous"
        )

    fix = "change dataset.split fractions or lower dataset.window"
    if protocol == CLEAN and not np.any(labels["train"] == NORMAL):
        raise AdxUserError(
            f"{where('train')} has no normal window of {window} points "
            f"({dropped} windows with anomalies dropped); {fix}"
        )
    if not np.any(labels["val"] == NORMAL):
        raise AdxUserError(
            f"{where('val')} has no normal window to fit the threshold on ({count('val')}); {fix}"
        )
    if not (np.any(labels["test"] == NORMAL) and np.any(labels["test"] == ANOMALY)):
        raise AdxUserError(
            f"{where('test')} needs normal and anomalous windows, it has {count('test')}; {fix}"
        )


def fit_zscore(values: np.ndarray, columns: list[str]) -> dict[str, Any]:
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant column stays finite (all zeros)
    return {
        "kind": "zscore",
        "columns": list(columns),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
    }


def apply_zscore(values: np.ndarray, transform: dict[str, Any]) -> np.ndarray:
    mean = np.asarray(transform["mean"], dtype=np.float64)
    std = np.asarray(transform["std"], dtype=np.float64)
    return ((values - mean) / std).astype(np.float32)


def point_score_report(
    starts: np.ndarray, window: int, labels: np.ndarray, times: np.ndarray | None
) -> Callable[[np.ndarray], dict[str, pd.DataFrame]]:
    """Splits.reports: point_scores.csv, each test point's mean and max window score."""

    def report(scores: np.ndarray) -> dict[str, pd.DataFrame]:
        scores = np.asarray(scores, dtype=np.float64)
        if len(scores) != len(starts):
            raise ValueError(f"{len(scores)} scores for {len(starts)} test windows")
        first, last = int(starts.min()), int(starts.max()) + window
        total = np.zeros(last - first)
        covering = np.zeros(last - first, dtype=np.int64)
        peak = np.full(last - first, -np.inf)
        for offset in range(window):
            points = starts - first + offset
            np.add.at(total, points, scores)
            np.add.at(covering, points, 1)
            np.maximum.at(peak, points, scores)
        covered = np.flatnonzero(covering > 0)
        index = covered + first
        table = {"index": index}
        if times is not None:
            table["time"] = times[index]
        table.update(
            label=labels[index],
            score=total[covered] / covering[covered],
            score_max=peak[covered],
            windows=covering[covered],
        )
        return {"point_scores.csv": pd.DataFrame(table)}

    return report


def _window_split(
    scaled: np.ndarray,
    starts: np.ndarray,
    labels: np.ndarray,
    window: int,
    times: np.ndarray | None,
) -> ArraySplit:
    offsets = starts[:, None] + np.arange(window)[None, :]
    ids = np.array([f"t={times[s] if times is not None else s}" for s in starts], dtype=str)
    return ArraySplit(
        ids=ids,
        labels=labels,
        classes=np.where(labels == ANOMALY, "anomaly", "normal"),
        x=scaled[offsets],
    )


def _checked_transform(transform: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    if transform.get("kind") != "zscore" or not {"columns", "mean", "std"} <= set(transform):
        raise AdxUserError(
            "the trained run's data_transform.json is not a time-series z-score; "
            "evaluate a run trained with dataset=timeseries"
        )
    if list(transform["columns"]) != columns:
        raise AdxUserError(
            f"the trained run z-scored columns {', '.join(transform['columns'])}, the data now "
            f"gives {', '.join(columns)}; set dataset.value_columns to the trained columns"
        )
    return transform


def _by_column(transform: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {
        stat: dict(zip(transform["columns"], transform[stat], strict=True))
        for stat in ("mean", "std")
    }


def _existing_file(value: Any, key: str) -> Path:
    if value is None:
        raise AdxUserError(f"{key} is not set; pass {key}=<file.csv>")
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise AdxUserError(f"{key}={value}: no such file; pass the path of a CSV file")
    return path


def _read_intervals(value: Any) -> list[list[Any]]:
    path = _existing_file(value, "dataset.intervals_path")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        frame = pd.DataFrame()
    if not {"start", "end"} <= set(frame.columns):
        raise AdxUserError(
            f"dataset.intervals_path={value} needs columns start,end "
            f"(found: {', '.join(map(str, frame.columns)) or 'none'})"
        )
    return frame[["start", "end"]].to_numpy().tolist()


def _require_columns(frame: pd.DataFrame, wanted: list[str], key: str, path: Path) -> None:
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        raise AdxUserError(
            f"{key}: no column {', '.join(absent)} in {path}; "
            f"its columns are {', '.join(map(str, frame.columns))}"
        )


def _label_source(cfg: DictConfig) -> str:
    if cfg.get("label_column") is not None:
        return f"label_column {cfg.label_column}"
    if cfg.get("intervals") is not None:
        return f"intervals {_plain(cfg.intervals)}"
    return f"intervals_path {Path(str(cfg.intervals_path)).resolve()}"


def _plain(value: Any) -> Any:
    """Config lists and dicts as plain Python, for messages."""
    from omegaconf import OmegaConf

    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and float(value).is_integer()
