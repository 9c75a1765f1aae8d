"""Each threshold strategy on hand-made scores with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.evaluation.thresholds import fit_threshold, predict


def cfg(strategy: str, **extra: float):
    return OmegaConf.create({"strategy": strategy, **extra})


SEPARABLE_SCORES = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
SEPARABLE_LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])


def test_fixed_uses_the_given_value():
    found = fit_threshold(cfg("fixed", value=0.03), SEPARABLE_SCORES, SEPARABLE_LABELS)
    assert (found.value, found.strategy) == (0.03, "fixed")


def test_percentile_of_normal_scores_only():
    normal = np.arange(1.0, 101.0)  # 1..100
    scores = np.concatenate([normal, [1000.0, 2000.0]])
    labels = np.concatenate([np.zeros(100), [1, 1]])
    found = fit_threshold(cfg("percentile", q=95.0), scores, labels)
    # Linear interpolation between the 95th and 96th value: 95 + 0.05 * 1.
    assert found.value == pytest.approx(95.05)
    assert int(predict(normal, found.value).sum()) == 5


@pytest.mark.parametrize("strategy", ["roc_optimal", "youden", "best_f1"])
def test_label_strategies_split_separable_scores_in_the_gap(strategy: str):
    found = fit_threshold(cfg(strategy, fallback_q=95.0), SEPARABLE_SCORES, SEPARABLE_LABELS)
    assert found.value == pytest.approx(4.5)  # midway between the last normal and first anomaly
    assert np.array_equal(predict(SEPARABLE_SCORES, found.value), SEPARABLE_LABELS)


# Overlapping scores where the three criteria disagree, worked out by hand:
# normal 1 2 3 4 5 6, anomaly 3.5 7 8.  Cutting above 3 (flag 3.5 and up)
# gives TPR 1, FPR 3/6; above 6 gives TPR 2/3, FPR 0.
#   distance to (0,1): above 3 -> 0.5, above 6 -> 0.333  => roc_optimal cuts at 6.5
#   Youden J:          above 3 -> 0.5, above 6 -> 0.667  => youden cuts at 6.5
#   F1:                above 3 -> 6/(6+3) = 0.667, above 6 -> 0.8 => best_f1 cuts at 6.5
# and with anomalies 3.5 3.6 7: above 3 -> TPR 1, FPR .5 (d .5, J .5, F1 .6);
# above 6 -> TPR 1/3, FPR 0 (d .667, J .333, F1 .5) => all three cut at 3.25.
@pytest.mark.parametrize(
    ("anomalies", "expected"), [([3.5, 7.0, 8.0], 6.5), ([3.5, 3.6, 7.0], 3.25)]
)
@pytest.mark.parametrize("strategy", ["roc_optimal", "youden", "best_f1"])
def test_label_strategies_on_overlapping_scores(
    strategy: str, anomalies: list[float], expected: float
):
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, *anomalies])
    labels = np.array([0] * 6 + [1] * 3)
    found = fit_threshold(cfg(strategy, fallback_q=95.0), scores, labels)
    assert found.value == pytest.approx(expected)


def test_roc_optimal_and_youden_can_disagree():
    # normal 0..9, anomalies 8.5 9.5 10.5 ... : hand check by brute force over all cuts.
    scores = np.array([*range(10), 2.5, 8.5, 9.5, 10.5], dtype=float)
    labels = np.array([0] * 10 + [1] * 4)
    cuts = np.unique(scores)
    best_distance = min(cuts, key=lambda c: _distance(scores, labels, c))
    best_j = max(cuts, key=lambda c: _youden(scores, labels, c))
    roc = fit_threshold(cfg("roc_optimal", fallback_q=95.0), scores, labels).value
    you = fit_threshold(cfg("youden", fallback_q=95.0), scores, labels).value
    assert np.array_equal(predict(scores, roc), (scores >= best_distance).astype(int))
    assert np.array_equal(predict(scores, you), (scores >= best_j).astype(int))


def _rates(scores, labels, cut):
    flagged = scores >= cut
    return flagged[labels == 1].mean(), flagged[labels == 0].mean()


def _distance(scores, labels, cut):
    tpr, fpr = _rates(scores, labels, cut)
    return np.hypot(fpr, 1 - tpr)


def _youden(scores, labels, cut):
    tpr, fpr = _rates(scores, labels, cut)
    return tpr - fpr


@pytest.mark.parametrize("strategy", ["roc_optimal", "youden", "best_f1"])
def test_without_validation_anomalies_label_strategies_fall_back(strategy: str):
    normal = np.arange(1.0, 101.0)
    found = fit_threshold(cfg(strategy, fallback_q=90.0), normal, np.zeros(100))
    assert found.strategy == "percentile" and found.requested == strategy
    assert found.value == pytest.approx(np.percentile(normal, 90))
    assert "no anomalies" in found.fallback_reason


def test_unknown_strategy_and_bad_percentile_are_user_errors():
    with pytest.raises(AdxUserError, match="choose one of: fixed, percentile"):
        fit_threshold(cfg("median"), SEPARABLE_SCORES, SEPARABLE_LABELS)
    with pytest.raises(AdxUserError, match="between 0 and 100"):
        fit_threshold(cfg("percentile", q=150.0), SEPARABLE_SCORES, SEPARABLE_LABELS)
