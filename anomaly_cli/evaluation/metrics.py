"""Detection metrics with anomaly = positive class, computed on raw scores.

Threshold-free metrics (AUROC, AUPR-in, AUPR-out) use the scores as they are:
no normalisation, which could only reorder ties and changes nothing else.
Undefined values (e.g. precision with no predicted anomaly) are reported as 0.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from anomaly_cli.evaluation.thresholds import predict

# Display names, in table order (seed 000's rows first, then the rest).
LABELS: dict[str, str] = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall (TPR)",
    "f1": "F1 Score",
    "tp": "True Positives",
    "fp": "False Positives",
    "tn": "True Negatives",
    "fn": "False Negatives",
    "tnr": "TNR (specificity)",
    "fpr": "FPR",
    "f2": "F2 Score",
    "g_mean": "G-mean",
    "mcc": "MCC",
    "cohen_kappa": "Cohen's kappa",
    "auroc": "AUROC",
    "aupr_in": "AUPR-in (normal +)",
    "aupr_out": "AUPR-out (anomaly +)",
}
# Rows only some tables have, shown after LABELS' (with MC dropout: calibration;
# compare: each run's training time).
EXTRA_LABELS: dict[str, str] = {"ece": "ECE (calibration)", "train_seconds": "Training time (s)"}
COUNTS = ("tp", "fp", "tn", "fn")
THRESHOLD_FREE = ("auroc", "aupr_in", "aupr_out")


def display_name(key: str) -> str:
    """A metric's name in tables: LABELS', EXTRA_LABELS', or the key itself."""
    return LABELS.get(key) or EXTRA_LABELS.get(key, key)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def threshold_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    """Metrics of hard predictions (1 = anomaly)."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix, matthews_corrcoef

    labels, predictions = np.asarray(labels).astype(int), np.asarray(predictions).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(labels, predictions, labels=[0, 1]).ravel())
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    tnr = _ratio(tn, tn + fp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcc = float(matthews_corrcoef(labels, predictions))
        kappa = float(cohen_kappa_score(labels, predictions))
    return {
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "precision": precision,
        "recall": recall,
        "f1": _fbeta(precision, recall, 1.0),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "tnr": tnr,
        "fpr": _ratio(fp, fp + tn),
        "f2": _fbeta(precision, recall, 2.0),
        "g_mean": math.sqrt(recall * tnr),
        "mcc": 0.0 if math.isnan(mcc) else mcc,
        "cohen_kappa": 0.0 if math.isnan(kappa) else kappa,
    }


def _fbeta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    return _ratio((1 + b2) * precision * recall, b2 * precision + recall)


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC and average precision with either class as positive; 0 if one class is missing."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels, scores = np.asarray(labels).astype(int), np.asarray(scores, dtype=np.float64)
    if len(np.unique(labels)) < 2:
        return dict.fromkeys(THRESHOLD_FREE, 0.0)
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "aupr_in": float(average_precision_score(1 - labels, -scores)),
        "aupr_out": float(average_precision_score(labels, scores)),
    }


def compute_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Every metric in LABELS' order for scores thresholded at `threshold`."""
    found = {
        **threshold_metrics(labels, predict(scores, threshold)),
        **ranking_metrics(labels, scores),
    }
    return {key: found[key] for key in LABELS}


def roc_points(labels: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    from sklearn.metrics import roc_curve

    fpr, tpr, cuts = roc_curve(labels, scores)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": cuts})


def pr_points(labels: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """Precision-recall points with anomaly = positive; the last point has no threshold."""
    from sklearn.metrics import precision_recall_curve

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision, recall, cuts = precision_recall_curve(labels, scores)
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "threshold": np.append(cuts, np.nan)}
    )
