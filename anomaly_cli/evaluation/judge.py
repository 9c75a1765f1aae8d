"""The judging stage: scores against labels, with a threshold fitted on val and metrics on test.

Pure: arrays in, a `Judgement` out, no files. A verb without labels (predict)
never calls it; sweep and compare can call it on scores read back from disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from anomaly_cli.data.base import ANOMALY, NORMAL
from anomaly_cli.evaluation.metrics import compute_metrics
from anomaly_cli.evaluation.thresholds import Threshold, fit_threshold


@dataclass(frozen=True)
class Judgement:
    threshold: Threshold
    # Every metric of the test split at `threshold`, in metrics.LABELS' order.
    metrics: dict[str, Any]
    # How many normal and anomalous val samples the threshold was fitted on.
    val_counts: dict[str, int]

    def threshold_record(self) -> dict[str, Any]:
        """threshold.json: the threshold, how it was fitted, and on what."""
        return {**self.threshold.to_dict(), "fitted_on": "val", "val_counts": self.val_counts}


def judge(
    threshold_cfg: Any,
    val_scores: np.ndarray,
    val_labels: np.ndarray,
    test_scores: np.ndarray,
    test_labels: np.ndarray,
) -> Judgement:
    """Fit the threshold (config group `threshold`) on val, measure test at it.

    Labels are 0 (normal) and 1 (anomaly); scores are higher = more anomalous.
    """
    threshold = fit_threshold(threshold_cfg, val_scores, val_labels)
    return Judgement(
        threshold=threshold,
        metrics=compute_metrics(test_labels, test_scores, threshold.value),
        val_counts=_counts(val_labels),
    )


def _counts(labels: np.ndarray) -> dict[str, int]:
    # The same keys and order as Split.counts(), which threshold.json always held.
    return {"normal": int(np.sum(labels == NORMAL)), "anomaly": int(np.sum(labels == ANOMALY))}
