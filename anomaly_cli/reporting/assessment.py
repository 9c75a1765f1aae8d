"""What one assessment of a test split produced: the input of the writer and of every plot.

A plot receives this object whole, so a new plot can draw whatever an
assessment knows (scores, labels, threshold, metrics, anomaly maps) without
scoring anything again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly_cli.evaluation.judge import Judgement
from anomaly_cli.evaluation.thresholds import Threshold

if TYPE_CHECKING:
    import pandas as pd

    from anomaly_cli.scoring.scorer import Scores


@dataclass(frozen=True)
class Assessment:
    # "<model> on <dataset>", the title of every plot.
    title: str
    # The test split's sample ids and labels (0 normal, 1 anomaly), in score order.
    ids: np.ndarray
    labels: np.ndarray
    scores: Scores
    judgement: Judgement
    # Per-pixel test anomaly maps (N, H, W) and their ground-truth masks, kept from
    # the pixel metrics (sources with masks, models that give maps); else None.
    maps: np.ndarray | None = None
    masks: np.ndarray | None = None
    pixel_metrics: dict[str, Any] | None = None
    # Extra tables the data source derives from test scores: file name -> table.
    source_reports: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def threshold(self) -> Threshold:
        return self.judgement.threshold

    @property
    def metrics(self) -> dict[str, Any]:
        return self.judgement.metrics

    @cached_property
    def table(self) -> str:
        """The metrics in seed 000's table, as printed and written to metrics.txt."""
        from anomaly_cli.reporting.tables import metrics_table

        return metrics_table(self.metrics)

    @cached_property
    def roc(self) -> pd.DataFrame:
        """ROC points of the test scores (roc.csv), computed once for the file and the plots."""
        from anomaly_cli.evaluation.metrics import roc_points

        return roc_points(self.labels, self.scores.score)

    @cached_property
    def pr(self) -> pd.DataFrame:
        """Precision-recall points, anomaly = positive (pr.csv)."""
        from anomaly_cli.evaluation.metrics import pr_points

        return pr_points(self.labels, self.scores.score)
