"""A time series from a CSV file, cut into sliding windows (`dataset=timeseries`).

Each row is one time point; `value_columns` form the series and the labels
come per point (`anomaly_column`) or as anomaly intervals. The series is cut
in time order into train, val and test parts, and each part into windows of
`window` points every `stride` points, so no window crosses a cut. A window
is one sample of shape (window, columns), anomalous when any of its points is.

Empty cells are interpolated; every column is z-scored with statistics of the
training part only, saved as the run's transform so `adx evaluate` reuses
them. `point_scores.csv` spreads the test windows' scores back onto points.
The steps live in `anomaly_cli.data.series`; this module puts them in order.
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from anomaly_cli.data.base import ANOMALY, CLEAN, ArraySplit, LoadContext, Splits
from anomaly_cli.data.series.columns import value_columns
from anomaly_cli.data.series.gaps import fill_missing
from anomaly_cli.data.series.labels import label_source, point_labels
from anomaly_cli.data.series.parts import (
    PARTS,
    check_parts,
    check_protocol,
    cut_points,
    fit_rows,
    part_windows,
)
from anomaly_cli.data.series.reading import csv_path, read_series
from anomaly_cli.data.series.report import point_score_report
from anomaly_cli.data.series.windows import Windows
from anomaly_cli.data.transforms import SavedTransformError, ZScore
from anomaly_cli.errors import AdxUserError


def load(cfg: DictConfig, ctx: LoadContext) -> Splits:
    check_protocol(ctx.protocol)
    window, stride = int(cfg.window), int(cfg.stride)
    if window < 1:
        raise AdxUserError(f"dataset.window={window} must be at least 1 point")
    if stride < 1:
        raise AdxUserError(f"dataset.stride={stride} must be at least 1 point")
    path = csv_path(cfg.path, "dataset.path")
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
    windows, dropped = part_windows(values, labels, cuts, window, stride, ctx.protocol)
    check_parts({k: w.labels for k, w in windows.items()}, cuts, dropped, window, ctx.protocol)

    if ctx.transform is not None:
        zscore = saved_zscore(ctx.transform, columns)
        fitted_on = "data_transform.json of the trained run"
    else:
        zscore = ZScore.fit(values[fit_rows(labels, cuts, ctx.protocol)], columns)
        fitted_on = "normal points of the train part" if ctx.protocol == CLEAN else "train part"

    times = None if cfg.get("time_column") is None else frame[cfg.time_column].to_numpy()
    info = {
        "source": "csv time series",
        "path": str(path.resolve()),
        "columns": columns,
        "time_column": cfg.get("time_column"),
        "labels_from": label_source(cfg),
        "window": window,
        "stride": stride,
        "points": {name: end - begin for name, (begin, end) in cuts.items()},
        "point_ranges": {name: [begin, end - 1] for name, (begin, end) in cuts.items()},
        "anomalous_points": {
            name: int(labels[begin:end].sum()) for name, (begin, end) in cuts.items()
        },
        "dropped_train_windows": dropped,
        "missing_values_filled": filled,
        "zscore": {"fitted_on": fitted_on, **zscore.by_column()},
    }
    return Splits(
        **{name: window_split(windows[name], zscore, times) for name in PARTS},
        input_shape=(window, len(columns)),
        info=info,
        protocol=ctx.protocol,
        transform=zscore.to_dict(),
        reports=point_score_report(windows["test"].starts, window, labels, times),
    )


def window_split(windows: Windows, zscore: ZScore, times: np.ndarray | None) -> ArraySplit:
    """One part's windows, z-scored, named by their first point's time (or index)."""
    starts = windows.starts
    ids = np.array([f"t={times[s] if times is not None else s}" for s in starts], dtype=str)
    return ArraySplit(
        ids=ids,
        labels=windows.labels,
        classes=np.where(windows.labels == ANOMALY, "anomaly", "normal"),
        x=zscore.apply(windows.x),
    )


def saved_zscore(state: dict, columns: list[str]) -> ZScore:
    """The trained run's z-score, checked to cover the same columns."""
    try:
        zscore = ZScore.from_dict(state)
    except SavedTransformError:
        raise AdxUserError(
            "the trained run's data_transform.json is not a time-series z-score; "
            "evaluate a run trained with dataset=timeseries"
        ) from None
    if zscore.columns != columns:
        raise AdxUserError(
            f"the trained run z-scored columns {', '.join(zscore.columns)}, the data now "
            f"gives {', '.join(columns)}; set dataset.value_columns to the trained columns"
        )
    return zscore
