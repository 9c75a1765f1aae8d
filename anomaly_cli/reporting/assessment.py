"""What one assessment of a test split produced: the input of the writer and of every plot.

A plot receives this object whole, so a new plot can draw whatever an
assessment knows (scores, labels, threshold, metrics, anomaly maps, the
training history, a few test images with what the model makes of them, the
calibration) without scoring anything again. The parts beyond scores and
labels are computed only when a listed plot needs them; `lacks` says why a
part is absent, which is what a skipped plot logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly_cli.evaluation.judge import Judgement
from anomaly_cli.evaluation.thresholds import Threshold
from anomaly_cli.reporting.plots.registry import NEEDS

if TYPE_CHECKING:
    import pandas as pd

    from anomaly_cli.evaluation.calibration import Calibration
    from anomaly_cli.reporting.sample_view import SampleView
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
    # The training history (history.csv: epoch, loss, val_loss, ...), for the loss plot.
    history: pd.DataFrame | None = None
    # A few test images with their reconstructions, maps and saliency.
    samples: SampleView | None = None
    # With MC dropout: scores as probabilities on test (ECE, reliability diagram).
    calibration: Calibration | None = None
    # Why a part of NEEDS is absent, in words a skipped plot logs: need -> reason.
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def threshold(self) -> Threshold:
        return self.judgement.threshold

    @property
    def metrics(self) -> dict[str, Any]:
        """The test metrics at the threshold; with a calibration, its ECE last."""
        if self.calibration is None:
            return self.judgement.metrics
        return {**self.judgement.metrics, "ece": self.calibration.ece}

    def lacks(self, needs: tuple[str, ...] | list[str]) -> str | None:
        """Why this assessment cannot feed a plot that needs `needs`; None when it can."""
        for need in needs:
            if not self._has(need):
                return self.missing.get(need, f"this assessment holds no {need}")
        return None

    def _has(self, need: str) -> bool:
        view = self.samples
        present = {
            "history": self.history is not None and len(self.history) > 0,
            "images": view is not None,
            "reconstructions": view is not None and view.reconstructions is not None,
            "maps": view is not None and view.maps is not None,
            "saliency": view is not None and view.saliency is not None,
            "mc_dropout": self.scores.std is not None,
            "calibration": self.calibration is not None,
        }
        if need not in present:
            raise ValueError(f"unknown plot need {need!r}; the needs are {NEEDS}")
        return present[need]

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
