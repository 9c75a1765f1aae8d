"""What a time-series run reports besides scores.csv: per-point scores."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd


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
