"""Early stopping on seed 002's detection metric: M = TPR + TNR on validation, smoothed.

Each epoch the model scores the validation split with its own scoring
(`AnomalyModel.score`), thresholds it at the ROC point closest to (0, 1)
(Eq. 36, the threshold trainer=stable reports with), and records M (Eq. 26)
and its exponential moving average S (Eq. 27). Training stops once S has not
risen for `patience` epochs. Only stopping is decided here: which epoch is
kept is the validation loss's business (Eq. 28, the run's checkpointer).

The record (detection.csv) is the callback's whole state, so a resumed
attempt smooths on from exactly where it stopped; marking the attempt's
state.json as stopped is the attempt runner's (training/attempts.py).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from anomaly_cli import interrupts, runs
from anomaly_cli.data.base import Split

log = logging.getLogger("adx")

DETECTION_RECORD = "detection.csv"
# Eq. 27's alpha; the paper gives none. 0.5 halves the weight of an epoch per
# epoch, so two epochs of patience still see a real trend, not one noisy epoch.
SMOOTHING = 0.5
# AnomalyModel.score's own default batch.
SCORING_BATCH_SIZE = 256


@dataclass(frozen=True)
class Detection:
    tpr: float
    tnr: float
    threshold: float

    @property
    def metric(self) -> float:
        return self.tpr + self.tnr


def detection_at_roc_optimum(scores: np.ndarray, labels: np.ndarray) -> Detection:
    """TPR and TNR on (scores, labels) at the ROC-optimal threshold (Eq. 36)."""
    from anomaly_cli.evaluation.thresholds import label_threshold, predict

    threshold = label_threshold("roc_optimal", scores, labels)
    flagged = predict(scores, threshold).astype(bool)
    anomalous = np.asarray(labels) == 1
    return Detection(
        tpr=float(np.mean(flagged[anomalous])),
        tnr=float(np.mean(~flagged[~anomalous])),
        threshold=threshold,
    )


def smoothed(previous: float | None, metric: float, alpha: float = SMOOTHING) -> float:
    """Eq. 27, started at the first value."""
    return metric if previous is None else alpha * metric + (1.0 - alpha) * previous


class _RetracingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def _quiet_retracing() -> Iterator[None]:
    """Scoring between training epochs retraces the predict step (the model's
    weights and shapes are as TensorFlow expects; only its cache is cold), and
    TensorFlow's warning about it would be repeated at the end of every run."""
    quiet = _RetracingFilter()
    logger = logging.getLogger("tensorflow")
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


class DetectionStopping(keras.callbacks.Callback):
    """Stops an attempt when the smoothed M stops rising; goes after the run's checkpointer."""

    def __init__(
        self,
        folder: Path,
        val: Split,
        batch_size: int,
        patience: int,
        min_delta: float = 0.0,
        first_epoch: int = 1,
    ):
        super().__init__()
        self.folder = Path(folder)
        self.val = val
        self.batch_size = batch_size
        self.patience = patience
        self.min_delta = min_delta
        self.first_epoch = first_epoch
        path = self.folder / DETECTION_RECORD
        self.rows: list[dict[str, Any]] = (
            pd.read_csv(path).to_dict("records") if path.is_file() else []
        )

    def keep_epochs(self, epochs_done: int) -> None:
        """Forget rows past the attempt's saved state (their checkpoint was lost)."""
        self.rows = [r for r in self.rows if int(r["epoch"]) <= epochs_done]

    @property
    def best(self) -> float:
        counted = [float(r["smoothed"]) for r in self.rows if r["epoch"] >= self.first_epoch]
        return max(counted, default=-math.inf)

    @property
    def best_metric(self) -> float:
        counted = [float(r["m"]) for r in self.rows if r["epoch"] >= self.first_epoch]
        return max(counted, default=math.nan)

    def should_stop(self) -> bool:
        """`patience` counted epochs in a row without S rising above its best before them."""
        best, wait = -math.inf, 0
        for row in self.rows:
            if row["epoch"] < self.first_epoch:
                continue
            if float(row["smoothed"]) > best + self.min_delta:
                best, wait = float(row["smoothed"]), 0
            else:
                wait += 1
        return wait >= self.patience

    def observe(self, model: Any, epoch: int) -> bool:
        """Score `model` as of `epoch` (1-based), record it; whether to stop now."""
        from anomaly_cli.data.pipeline import scoring_batches

        # Scores do not depend on the batch; larger batches make the per-epoch pass cheaper.
        batch_size = max(self.batch_size, SCORING_BATCH_SIZE)
        with _quiet_retracing():
            scores = np.asarray(model.score(scoring_batches(self.val, batch_size), batch_size))
        if not np.all(np.isfinite(scores)):
            return False  # the loss shows it too: divergence is the checkpointer's call
        found = detection_at_roc_optimum(scores, self.val.labels)
        previous = float(self.rows[-1]["smoothed"]) if self.rows else None
        self.rows.append(
            {
                "epoch": epoch,
                "tpr": found.tpr,
                "tnr": found.tnr,
                "m": found.metric,
                "smoothed": smoothed(previous, found.metric),
                "threshold": found.threshold,
            }
        )
        runs.write_csv(self.folder / DETECTION_RECORD, pd.DataFrame(self.rows))
        return self.should_stop()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not all(math.isfinite(float(v)) for v in (logs or {}).values()):
            return  # diverged: nothing to score, and the checkpointer stops the attempt
        with interrupts.held():
            if self.observe(self.model, epoch + 1):
                log.info(
                    "early stop after epoch %d: smoothed TPR + TNR on validation has not "
                    "risen for %d epochs (best %.4f)",
                    epoch + 1,
                    self.patience,
                    self.best,
                )
                self.model.stop_training = True
