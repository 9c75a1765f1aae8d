"""Decision thresholds, always fitted on the validation split (never on test).

A sample is an anomaly when its score is strictly above the threshold, as in
seed 000. Label-based strategies pick an operating point among the
validation scores and place the threshold halfway between that score and the
next lower one, so `score > threshold` reproduces the chosen point on
validation without sitting exactly on a validation sample.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig

from anomaly_cli.checks import is_number
from anomaly_cli.errors import AdxUserError

log = logging.getLogger(__name__)

STRATEGIES = ("fixed", "percentile", "roc_optimal", "youden", "best_f1")


@dataclass(frozen=True)
class Threshold:
    value: float
    strategy: str  # the strategy that produced `value`
    requested: str  # the strategy asked for
    fallback_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predict(scores: np.ndarray, threshold: float) -> np.ndarray:
    """1 = anomaly where the score is strictly above the threshold."""
    return (np.asarray(scores) > threshold).astype(np.int8)


def _finite_number(value: object) -> bool:
    """A number a float can hold: YAML ints may exceed 64 bits (NumPy cannot test
    those) or even a float (1e400 written out as an integer)."""
    try:
        return is_number(value) and math.isfinite(float(value))  # type: ignore[arg-type]
    except OverflowError:
        return False


def check_threshold(cfg: DictConfig) -> None:
    """Every setting of the threshold group, before any score exists."""
    strategy = cfg.get("strategy")
    if strategy not in STRATEGIES:
        raise AdxUserError(
            f"threshold.strategy={strategy} is unknown; choose one of: {', '.join(STRATEGIES)}"
        )
    if strategy == "fixed":
        value = cfg.get("value")
        if not _finite_number(value):
            raise AdxUserError(
                f"threshold=fixed needs a number in threshold.value, got "
                f"{'null' if value is None else value}; "
                "e.g. threshold.value=0.03"
            )
    elif strategy == "percentile":
        _check_percent("threshold.q", cfg.get("q"))
    else:
        _check_percent("threshold.fallback_q", cfg.get("fallback_q"))


def _check_percent(key: str, value: Any) -> None:
    if not is_number(value) or not 0.0 <= value <= 100.0:
        raise AdxUserError(f"{key}={value} must be a percentile between 0 and 100, e.g. 95")


def fit_threshold(cfg: DictConfig, scores: np.ndarray, labels: np.ndarray) -> Threshold:
    check_threshold(cfg)
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    strategy = str(cfg.strategy)
    if strategy == "fixed":
        return Threshold(float(cfg.value), "fixed", "fixed")
    normal = scores[labels == 0]
    if len(normal) == 0:
        raise AdxUserError(
            "the validation split has no normal sample to fit a threshold on; "
            "raise dataset.split.val or use threshold=fixed"
        )
    if strategy == "percentile":
        return Threshold(percentile_threshold(normal, float(cfg.q)), "percentile", "percentile")
    if not np.any(labels == 1):
        q = float(cfg.fallback_q)
        reason = (
            f"validation has no anomalies, so {strategy} cannot be fitted; "
            f"used the {q:g}th percentile of normal scores"
        )
        log.warning("threshold: %s", reason)
        return Threshold(percentile_threshold(normal, q), "percentile", strategy, reason)
    return Threshold(label_threshold(strategy, scores, labels), strategy, strategy)


def percentile_threshold(normal_scores: np.ndarray, q: float) -> float:
    _check_percent("threshold.q", q)
    return float(np.percentile(normal_scores, q))


def label_threshold(strategy: str, scores: np.ndarray, labels: np.ndarray) -> float:
    """Threshold of the best operating point on (scores, labels), anomaly = positive."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    if strategy == "best_f1":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            precision, recall, cuts = precision_recall_curve(labels, scores)
        # The last point (precision 1, recall 0) has no threshold.
        p, r = precision[:-1], recall[:-1]
        f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
        cut = cuts[int(np.argmax(f1))]
    else:
        fpr, tpr, cuts = roc_curve(labels, scores, drop_intermediate=False)
        if strategy == "roc_optimal":  # seed 002, Eq. 36: closest to (FPR 0, TPR 1)
            best = int(np.argmin(np.hypot(fpr, 1.0 - tpr)))
        else:  # youden: maximum TPR - FPR
            best = int(np.argmax(tpr - fpr))
        cut = cuts[best]
    return _strictly_below(float(cut), scores)


def _strictly_below(cut: float, scores: np.ndarray) -> float:
    """A threshold t with (scores > t) == (scores >= cut) on these scores."""
    if not np.isfinite(cut):  # scikit-learn's "flag nothing" point
        return float(np.max(scores))
    lower = scores[scores < cut]
    if len(lower) == 0:
        return float(np.nextafter(cut, -np.inf))
    return float((cut + np.max(lower)) / 2.0)
