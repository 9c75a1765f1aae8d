"""Reconstruction errors, per sample and per pixel (NumPy, float64).

Reductions of the element-wise error to one score per sample:
- mse, mae: mean squared / absolute error over all values;
- msle: mean squared error of log(1 + value), Keras' MSLE (values below 0 are
  clipped to a tiny epsilon, as Keras does, so standardised data stays finite);
- l2: Euclidean norm of the difference (seed 002's uncertainty error, Eq. 30);
- top_k_mean: mean of the largest `top_k` fraction of squared errors, so a small
  defect is not averaged away by a large clean image (alibi-detect's idea).
"""

from __future__ import annotations

import math

import numpy as np

from anomaly_cli.errors import AdxUserError

LOSSES = ("mse", "mae", "msle")
ERRORS = ("mse", "mae", "msle", "l2", "top_k_mean")
DEFAULT_TOP_K = 0.1
_KERAS_EPSILON = 1e-7


def _elementwise(x: np.ndarray, reconstruction: np.ndarray, kind: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    reconstruction = np.asarray(reconstruction, dtype=np.float64)
    if kind == "mae":
        return np.abs(x - reconstruction)
    if kind == "msle":
        return np.square(
            np.log1p(np.maximum(x, _KERAS_EPSILON))
            - np.log1p(np.maximum(reconstruction, _KERAS_EPSILON))
        )
    if kind in ("mse", "l2", "top_k_mean"):
        return np.square(x - reconstruction)
    raise AdxUserError(
        f"model.score={kind} is not a known error; choose one of: {', '.join(ERRORS)}"
    )


def check_top_k(top_k: float) -> float:
    if not 0 < top_k <= 1:
        raise AdxUserError(
            f"scoring.top_k={top_k} must be a fraction in (0, 1], e.g. 0.1 for the top 10 %"
        )
    return float(top_k)


def reconstruction_error(
    x: np.ndarray, reconstruction: np.ndarray, kind: str = "mse", top_k: float = DEFAULT_TOP_K
) -> np.ndarray:
    """One score per sample, reduced over all its values as `kind` says."""
    err = _elementwise(x, reconstruction, kind)
    flat = err.reshape(len(err), -1)
    if kind == "l2":
        return np.sqrt(flat.sum(axis=1))
    if kind == "top_k_mean":
        count = max(1, math.ceil(check_top_k(top_k) * flat.shape[1]))
        # partition puts the `count` largest values last, in no particular order.
        return np.partition(flat, flat.shape[1] - count, axis=1)[:, -count:].mean(axis=1)
    return flat.mean(axis=1)


def error_map(x: np.ndarray, reconstruction: np.ndarray, kind: str = "mse") -> np.ndarray:
    """Per-pixel error of images (N, H, W, C) reduced over channels: (N, H, W).

    l2 gives each pixel's norm over its channels; the other kinds the mean over
    channels (top_k_mean's map is the squared error it picks from).
    """
    err = _elementwise(x, reconstruction, kind)
    return np.sqrt(err.sum(axis=-1)) if kind == "l2" else err.mean(axis=-1)
