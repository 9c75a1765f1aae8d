"""Metrics against confusion matrices worked out by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from anomaly_cli.evaluation.metrics import LABELS, compute_metrics, pr_points, roc_points

LABELS_5 = np.array([0, 0, 0, 1, 1])
SCORES_5 = np.array([0.1, 0.4, 0.6, 0.7, 0.2])


def test_metrics_match_a_hand_computed_confusion_matrix():
    # threshold 0.5 flags samples 2 and 3: TP = 1 (3), FP = 1 (2), TN = 2, FN = 1 (4).
    m = compute_metrics(LABELS_5, SCORES_5, 0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 1, 2, 1)
    expected = {
        "accuracy": 3 / 5,
        "precision": 1 / 2,
        "recall": 1 / 2,
        "f1": 1 / 2,
        "tnr": 2 / 3,
        "fpr": 1 / 3,
        "f2": 0.5,  # 5 * .5 * .5 / (4 * .5 + .5)
        "g_mean": math.sqrt(1 / 2 * 2 / 3),
        "mcc": 1 / 6,  # (1*2 - 1*1) / sqrt(2 * 2 * 3 * 3)
        "cohen_kappa": (0.6 - 0.52) / (1 - 0.52),  # chance agreement .4*.4 + .6*.6
        "auroc": 4 / 6,  # 0.7 beats all 3 normals, 0.2 beats 1
    }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value), key
    assert list(m) == list(LABELS)


def test_aupr_in_treats_normal_as_positive():
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.3, 0.2, 0.9])
    m = compute_metrics(labels, scores, 0.5)
    # anomaly ranking 0.9, 0.3, 0.2, 0.1: AP = (1/1 + 2/3) / 2
    assert m["aupr_out"] == pytest.approx((1 + 2 / 3) / 2)
    # normal ranking (lowest score first) 0.1, 0.2, 0.3, 0.9: AP = (1/1 + 2/3) / 2
    assert m["aupr_in"] == pytest.approx((1 + 2 / 3) / 2)


def test_no_predicted_anomaly_gives_zeros_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = compute_metrics(LABELS_5, SCORES_5, 10.0)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (0, 0, 3, 2)
    assert m["precision"] == m["recall"] == m["f1"] == m["f2"] == m["mcc"] == 0.0
    assert m["cohen_kappa"] == 0.0 and m["g_mean"] == 0.0
    assert m["accuracy"] == pytest.approx(0.6)


def test_single_class_labels_give_zero_ranking_metrics_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = compute_metrics(np.zeros(4, dtype=int), np.array([0.1, 0.2, 0.3, 0.4]), 0.25)
    assert (m["tn"], m["fp"]) == (2, 2)
    assert m["auroc"] == m["aupr_in"] == m["aupr_out"] == 0.0
    assert m["fpr"] == 0.5 and m["recall"] == 0.0


def test_perfect_detector():
    m = compute_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]), 0.5)
    assert m["accuracy"] == m["f1"] == m["mcc"] == m["cohen_kappa"] == m["auroc"] == 1.0


def test_curves_cover_the_unit_square():
    roc = roc_points(LABELS_5, SCORES_5)
    assert (roc["fpr"].iloc[0], roc["tpr"].iloc[0]) == (0.0, 0.0)
    assert (roc["fpr"].iloc[-1], roc["tpr"].iloc[-1]) == (1.0, 1.0)
    pr = pr_points(LABELS_5, SCORES_5)
    assert list(pr.columns) == ["precision", "recall", "threshold"]
    assert np.isnan(pr["threshold"].iloc[-1]) and pr["recall"].iloc[-1] == 0.0
