"""Scores as probabilities for calibration only: the Platt map, reliability bins and ECE."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_cli.evaluation.calibration import (
    calibrate,
    expected_calibration_error,
    fit_probability_map,
    reliability_bins,
)

PROBABILITIES = np.array([0.05, 0.15, 0.15, 0.85, 0.95])
LABELS = np.array([0, 0, 1, 1, 1])


def test_reliability_bins_count_average_and_share_per_bin():
    bins = reliability_bins(PROBABILITIES, LABELS, n_bins=10)
    assert list(bins["count"]) == [1, 2, 0, 0, 0, 0, 0, 0, 1, 1]
    np.testing.assert_allclose(bins["lower"], np.arange(10) / 10)
    filled = bins[bins["count"] > 0]
    np.testing.assert_allclose(filled["mean_probability"], [0.05, 0.15, 0.85, 0.95])
    np.testing.assert_allclose(filled["fraction_anomalous"], [0.0, 0.5, 1.0, 1.0])
    assert bins.loc[2, ["mean_probability", "fraction_anomalous"]].isna().all()
    # An inner edge belongs to the bin above it, and 1.0 to the last bin.
    edges = reliability_bins(np.array([0.0, 0.1, 0.5, 1.0]), np.array([0, 0, 1, 1]), n_bins=10)
    assert list(np.flatnonzero(edges["count"])) == [0, 1, 5, 9]


def test_ece_is_the_count_weighted_gap_of_the_bins():
    # Bins (n, mean P, share): (1, .05, 0), (2, .15, .5), (1, .85, 1), (1, .95, 1):
    # (1 * .05 + 2 * .35 + 1 * .15 + 1 * .05) / 5 = 0.19.
    bins = reliability_bins(PROBABILITIES, LABELS, n_bins=10)
    assert expected_calibration_error(bins) == pytest.approx(0.19)
    perfect = reliability_bins(np.array([0.05, 0.05, 0.95, 0.95]), np.array([0, 0, 1, 1]), 1)
    # One bin of mean P 0.5 holding half anomalies: calibrated on average.
    assert expected_calibration_error(perfect) == pytest.approx(0.0)


def test_the_probability_map_is_fitted_on_val_and_leaves_scores_alone():
    val_scores = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.20, 0.25])
    val_labels = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    test_scores = np.array([0.0, 0.03, 0.1, 0.3])
    kept = test_scores.copy()
    calibration = calibrate(val_scores, val_labels, test_scores, np.array([0, 0, 1, 1]))
    assert calibration is not None
    np.testing.assert_array_equal(test_scores, kept)  # the scores are never renormalised
    p = calibration.probabilities
    assert np.all((p > 0) & (p < 1)) and np.all(np.diff(p) > 0)  # monotone in the score
    np.testing.assert_allclose(p, calibration.probability_map(test_scores))
    assert 0.0 <= calibration.ece <= 1.0
    assert calibration.ece == expected_calibration_error(calibration.bins)


def test_val_with_one_class_cannot_fit_a_map():
    assert fit_probability_map(np.array([0.1, 0.2, 0.3]), np.array([0, 0, 0])) is None
    assert calibrate(np.array([0.1, 0.2]), np.array([0, 0]), np.array([0.5]), np.array([1])) is None
