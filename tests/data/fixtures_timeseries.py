"""Generated time-series CSVs with planted anomalies, for tests and the README."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# Inclusive point intervals of the planted anomalies: with the default
# 0.6/0.2/0.2 split of 3000 points, two fall in val (1800-2399) and three in
# test (2400-2999); train stays clean.
ANOMALY_INTERVALS = ((1950, 1957), (2200, 2239), (2500, 2507), (2700, 2749), (2900, 2911))


def make_series(
    n: int = 3000,
    intervals: tuple[tuple[int, int], ...] = ANOMALY_INTERVALS,
    seed: int = 0,
) -> pd.DataFrame:
    """Two noisy sine channels with spikes (short intervals) and level shifts (long ones).

    Columns: time (seconds, 0.5 s apart), sensor_a, sensor_b, label (0/1).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    a = np.sin(2 * np.pi * t / 50) + 0.05 * rng.standard_normal(n)
    b = 0.5 * np.cos(2 * np.pi * t / 80) + 3.0 + 0.05 * rng.standard_normal(n)
    label = np.zeros(n, dtype=np.int64)
    for start, end in intervals:
        span = slice(start, end + 1)
        label[span] = 1
        if end - start < 20:  # a spike: both channels jump far out of range
            a[span] += 4.0
            b[span] -= 2.5
        else:  # a level shift of one channel
            a[span] += 2.0
    return pd.DataFrame({"time": t * 0.5, "sensor_a": a, "sensor_b": b, "label": label})


def make_timeseries_csv(root: Path, name: str = "series.csv", **kwargs) -> Path:
    """Write make_series(**kwargs) to root/name and return the path."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    make_series(**kwargs).to_csv(path, index=False)
    return path


def make_timeseries_fixture(root: Path) -> Path:
    """The README's files: timeseries/series.csv (time, sensor_a, sensor_b; a few empty
    cells, rows shuffled so time_column matters) and timeseries/anomalies.csv (the
    anomaly intervals as start,end)."""
    folder = root / "timeseries"
    folder.mkdir(parents=True, exist_ok=True)
    frame = make_series().drop(columns="label")
    frame.loc[[10, 11, 500], "sensor_a"] = np.nan
    frame.sample(frac=1.0, random_state=0).to_csv(folder / "series.csv", index=False)
    pd.DataFrame(ANOMALY_INTERVALS, columns=["start", "end"]).to_csv(
        folder / "anomalies.csv", index=False
    )
    return folder
