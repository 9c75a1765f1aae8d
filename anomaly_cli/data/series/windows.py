"""Sliding windows over a series: arrays in, windows and their labels out.

Nothing here reads files or configs, so the windowing can be tested (and
reused) on plain arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Windows(NamedTuple):
    # First point of each window.
    starts: np.ndarray
    # (windows, window, columns): the points of each window.
    x: np.ndarray
    # 1 for a window holding at least one anomalous point, else 0.
    labels: np.ndarray

    def select(self, keep: np.ndarray) -> Windows:
        return Windows(self.starts[keep], self.x[keep], self.labels[keep])


def sliding_windows(
    values: np.ndarray,
    labels: np.ndarray,
    window: int,
    stride: int,
    begin: int = 0,
    end: int | None = None,
) -> Windows:
    """Windows of `window` points every `stride` points that fit inside points [begin, end).

    `values` is (points, columns), `labels` holds 0/1 per point; a window is
    anomalous when any of its points is.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window={window} and stride={stride} must be at least 1")
    end = len(values) if end is None else end
    starts = window_starts(begin, end, window, stride)
    offsets = starts[:, None] + np.arange(window)[None, :]
    return Windows(starts, values[offsets], windows_anomalous(labels, starts, window))


def window_starts(begin: int, end: int, window: int, stride: int) -> np.ndarray:
    """First points of the windows that fit inside [begin, end)."""
    return np.arange(begin, end - window + 1, stride, dtype=np.int64)


def windows_anomalous(labels: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """1 for each window holding at least one anomalous point."""
    running = np.concatenate([[0], np.cumsum(labels, dtype=np.int64)])
    return (running[starts + window] - running[starts] > 0).astype(np.int8)
