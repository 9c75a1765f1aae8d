"""Sliding windows over a series, on plain arrays (no file, no config)."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_cli.data.series.windows import Windows, sliding_windows, window_starts


def series(points: int, columns: int = 2) -> np.ndarray:
    """Point i of column c holds 10 * i + c, so a window shows where it came from."""
    return 10.0 * np.arange(points)[:, None] + np.arange(columns)[None, :]


def test_windows_hold_consecutive_points_every_stride():
    labels = np.zeros(10, dtype=np.int8)
    windows = sliding_windows(series(10), labels, window=4, stride=3)
    assert windows.starts.tolist() == [0, 3, 6]  # a window at 9 would run past the end
    assert windows.x.shape == (3, 4, 2)
    np.testing.assert_array_equal(windows.x[1, :, 0], [30.0, 40.0, 50.0, 60.0])
    np.testing.assert_array_equal(windows.x[2, :, 1], [61.0, 71.0, 81.0, 91.0])
    assert windows.labels.tolist() == [0, 0, 0]


def test_a_window_is_anomalous_when_any_of_its_points_is():
    labels = np.zeros(12, dtype=np.int8)
    labels[5] = 1
    windows = sliding_windows(series(12), labels, window=3, stride=1)
    # Windows starting at 3, 4 and 5 cover point 5.
    assert windows.labels.tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    assert windows.labels.dtype == np.int8


def test_windows_stay_inside_the_given_range():
    labels = np.zeros(20, dtype=np.int8)
    labels[15] = 1  # outside [4, 12): no window may see it
    windows = sliding_windows(series(20), labels, window=4, stride=2, begin=4, end=12)
    assert windows.starts.tolist() == [4, 6, 8]
    assert windows.x.max() < 10 * 12  # no point at or past the end
    assert not windows.labels.any()


def test_a_range_shorter_than_a_window_gives_no_windows():
    windows = sliding_windows(series(3), np.zeros(3, np.int8), window=4, stride=1)
    assert len(windows.starts) == 0 and windows.x.shape == (0, 4, 2)
    assert window_starts(0, 3, 4, 1).tolist() == []


def test_select_keeps_starts_windows_and_labels_together():
    labels = np.array([0, 0, 1, 0, 0, 0], dtype=np.int8)
    windows = sliding_windows(series(6), labels, window=2, stride=1)
    normal = windows.select(windows.labels == 0)
    assert isinstance(normal, Windows)
    assert normal.starts.tolist() == [0, 3, 4]
    np.testing.assert_array_equal(normal.x[:, 0, 0], [0.0, 30.0, 40.0])


@pytest.mark.parametrize(("window", "stride"), [(0, 1), (2, 0)])
def test_a_window_or_stride_below_one_point_is_refused(window: int, stride: int):
    with pytest.raises(ValueError, match="must be at least 1"):
        sliding_windows(series(5), np.zeros(5, np.int8), window, stride)
