"""Reconstruction-error reductions against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_cli.errors import AdxUserError
from anomaly_cli.scoring.reconstruction import error_map, reconstruction_error

# Two 2x2 one-channel "images" and their reconstructions.
X = np.array([[[[1.0], [0.0]], [[0.5], [0.5]]], [[[0.0], [0.0]], [[0.0], [1.0]]]])
R = np.array([[[[0.0], [0.0]], [[0.5], [0.5]]], [[[0.0], [0.5]], [[0.0], [0.0]]]])
# Element-wise differences: sample 0 -> [1, 0, 0, 0]; sample 1 -> [0, -0.5, 0, 1].


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("mse", [1 / 4, (0.25 + 1) / 4]),
        ("mae", [1 / 4, (0.5 + 1) / 4]),
        ("l2", [1.0, np.sqrt(1.25)]),
        (
            "msle",
            [np.log(2) ** 2 / 4, ((np.log(1.5)) ** 2 + np.log(2) ** 2) / 4],
        ),
    ],
)
def test_reductions_match_hand_computation(kind: str, expected: list[float]):
    assert np.allclose(reconstruction_error(X, R, kind), expected)


def test_top_k_mean_averages_the_largest_squared_errors():
    # top 50 % of 4 values = the 2 largest squared errors.
    assert np.allclose(reconstruction_error(X, R, "top_k_mean", top_k=0.5), [0.5, 1.25 / 2])
    # Any fraction keeps at least one value: the maximum.
    assert np.allclose(reconstruction_error(X, R, "top_k_mean", top_k=0.01), [1.0, 1.0])


def test_top_k_mean_finds_a_small_defect_that_the_mean_dilutes():
    clean = np.zeros((1, 32, 32, 1))
    noisy = clean + 0.1  # small error everywhere
    defect = clean.copy()
    defect[0, :2, :2] = 1.0  # large error on 4 pixels
    assert reconstruction_error(noisy, clean)[0] > reconstruction_error(defect, clean)[0]
    assert (
        reconstruction_error(defect, clean, "top_k_mean", 0.01)[0]
        > reconstruction_error(noisy, clean, "top_k_mean", 0.01)[0]
    )


def test_msle_clips_negative_values_like_keras():
    import keras

    x = np.array([[-2.0, 0.3, 1.5]])
    r = np.array([[0.1, -0.4, 2.0]])
    keras_msle = float(keras.losses.MeanSquaredLogarithmicError()(x, r))
    assert np.isclose(reconstruction_error(x, r, "msle")[0], keras_msle, rtol=1e-5)


def test_maps_reduce_over_channels():
    x = np.zeros((1, 1, 2, 2))
    r = np.array([[[[3.0, 4.0], [1.0, 1.0]]]])
    assert np.allclose(error_map(x, r, "l2"), [[[5.0, np.sqrt(2)]]])
    assert np.allclose(error_map(x, r, "mse"), [[[12.5, 1.0]]])
    assert np.allclose(error_map(x, r, "mae"), [[[3.5, 1.0]]])


def test_bad_kind_and_fraction_are_user_errors():
    with pytest.raises(AdxUserError, match=r"model\.score=l3 is not a known error"):
        reconstruction_error(X, R, "l3")
    with pytest.raises(AdxUserError, match=r"scoring.top_k=1.5 must be a fraction"):
        reconstruction_error(X, R, "top_k_mean", top_k=1.5)
