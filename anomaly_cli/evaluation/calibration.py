"""How well scores read as probabilities: a score -> P(anomaly) map, reliability bins, ECE.

Scores stay in their own units everywhere else (the threshold, scores.csv,
every other metric): a probability exists only here, to measure calibration
(seed 002, Table 10). The map is Platt scaling fitted on the val split:

    P(anomaly | s) = sigmoid(a * z + b),  z = (s - mean_val) / std_val,

with a and b from scikit-learn's logistic regression (its default L2
penalty, C = 1, which keeps a and b finite when val separates perfectly) on
the val scores and labels. Standardising first makes that penalty mean the
same for an mse of 0.01 and a latent distance of 40. The test split is then
binned by P (equal-width bins on [0, 1]) and the expected calibration error
is the count-weighted gap between each bin's mean P and its share of anomalies:

    ECE = sum_b (n_b / N) * |fraction_anomalous_b - mean_probability_b|.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Equal-width probability bins of the reliability diagram and of ECE (a usual choice).
DEFAULT_BINS = 10
METHOD = "Platt scaling fitted on val"


@dataclass(frozen=True)
class ProbabilityMap:
    """P(anomaly | score) = sigmoid(slope * (score - centre) / scale + intercept)."""

    centre: float
    scale: float
    slope: float
    intercept: float

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        z = (np.asarray(scores, dtype=np.float64) - self.centre) / self.scale
        logits = np.clip(self.slope * z + self.intercept, -500.0, 500.0)  # exp() stays finite
        return 1.0 / (1.0 + np.exp(-logits))


@dataclass(frozen=True)
class Calibration:
    """The test split's calibration under the map fitted on val."""

    method: str
    probability_map: ProbabilityMap
    # P(anomaly) of every test sample, in score order.
    probabilities: np.ndarray
    bins: pd.DataFrame
    ece: float


def fit_probability_map(scores: np.ndarray, labels: np.ndarray) -> ProbabilityMap | None:
    """Platt scaling on (scores, labels); None when they hold only one class."""
    from sklearn.linear_model import LogisticRegression

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    if len(np.unique(labels)) < 2:
        return None
    centre = float(scores.mean())
    spread = float(scores.std())
    scale = spread if spread > 0 else 1.0
    z = ((scores - centre) / scale).reshape(-1, 1)
    fitted = LogisticRegression().fit(z, labels)
    return ProbabilityMap(centre, scale, float(fitted.coef_[0, 0]), float(fitted.intercept_[0]))


def reliability_bins(
    probabilities: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS
) -> pd.DataFrame:
    """One row per equal-width bin of P: its edges, count, mean P and share of anomalies.

    A P on an inner edge belongs to the bin above it, and P = 1 to the last bin.
    Empty bins have count 0 and NaN means.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.floor(probabilities * n_bins).astype(int), 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_probability = np.bincount(which, probabilities, n_bins) / counts
        fraction = np.bincount(which, labels, n_bins) / counts
    return pd.DataFrame(
        {
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": counts,
            "mean_probability": mean_probability,
            "fraction_anomalous": fraction,
        }
    )


def expected_calibration_error(bins: pd.DataFrame) -> float:
    """ECE of reliability bins: sum over non-empty bins of n_b / N * |fraction - mean P|."""
    filled = bins[bins["count"] > 0]
    total = int(filled["count"].sum())
    if total == 0:
        return 0.0
    gaps = (filled["fraction_anomalous"] - filled["mean_probability"]).abs()
    return float((filled["count"] * gaps).sum() / total)


def calibrate(
    val_scores: np.ndarray,
    val_labels: np.ndarray,
    test_scores: np.ndarray,
    test_labels: np.ndarray,
    n_bins: int = DEFAULT_BINS,
) -> Calibration | None:
    """The map fitted on val, applied to test; None when val holds one class only."""
    probability_map = fit_probability_map(val_scores, val_labels)
    if probability_map is None:
        return None
    probabilities = probability_map(test_scores)
    bins = reliability_bins(probabilities, test_labels, n_bins)
    return Calibration(
        method=METHOD,
        probability_map=probability_map,
        probabilities=probabilities,
        bins=bins,
        ece=expected_calibration_error(bins),
    )
