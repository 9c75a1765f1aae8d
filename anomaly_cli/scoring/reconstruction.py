"""Reconstruction errors, per sample and per pixel (NumPy, float64).

Reductions of the element-wise error to one score per sample:
- mse, mae: mean squared / absolute error over all values;
- msle: mean squared error of log(1 + value), Keras' MSLE (values below 0 are
  clipped to a tiny epsilon, as Keras does, so standardised data stays finite);
- l2: Euclidean norm of the difference (seed 002's uncertainty error, Eq. 30);
- top_k_mean: mean of the largest `top_k` fraction of squared errors, so a small
  defect is not averaged away by a large clean image (alibi-detect's idea);
- ssim, ms_ssim: 1 - (multi-scale) SSIM, which compares local mean, contrast and
  structure rather than pixels (scoring/structure.py); images only;
- gradient: 1 - similarity of local gradient magnitudes, so texture missing in
  the input or in the reconstruction counts; images only;
- mse_ssim, mse_gradient: mse plus one of those, the combined training losses,
  also scores so that every loss has a score and a map of the same meaning.

Maps of the structural kinds are per-pixel: 1 - SSIM map, 1 - MS-SSIM map,
1 - gradient-magnitude similarity (and mse's map added for the combined kinds).
docs/scores.md says which to pick.
"""

from __future__ import annotations

import math

import numpy as np

from anomaly_cli.errors import AdxUserError
from anomaly_cli.scoring import structure
from anomaly_cli.scoring.kinds import STRUCTURAL_KINDS

# Losses Keras has built in; the structural ones are models/structural_losses.py.
KERAS_LOSSES = ("mse", "mae", "msle")
# Kinds that compare image neighbourhoods, so they need (N, H, W, C) samples.
LOSSES = (*KERAS_LOSSES, "ssim", "ms_ssim", "mse_ssim", "mse_gradient")
ERRORS = ("mse", "mae", "msle", "l2", "top_k_mean", *STRUCTURAL_KINDS)
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


def check_image_kind(setting: str, kind: str, sample_shape: tuple[int, ...], model: str) -> None:
    """A structural `kind` given as model.<setting> needs image samples: one line that
    names the setting and the fix, raised when the model is built."""
    if kind in STRUCTURAL_KINDS and len(sample_shape) != 3:
        plain = KERAS_LOSSES if setting == "loss" else ERRORS[: ERRORS.index("ssim")]
        raise AdxUserError(
            f"model.{setting}={kind} compares image neighbourhoods, but model={model} gets "
            f"samples of shape {tuple(sample_shape)}, not images (height, width, channels); "
            f"use model.{setting}={' | '.join(plain)}"
        )


def _structural_error(x: np.ndarray, reconstruction: np.ndarray, kind: str) -> np.ndarray:
    if kind == "ssim":
        return 1.0 - structure.ssim(x, reconstruction)
    if kind == "ms_ssim":
        return 1.0 - structure.ms_ssim(x, reconstruction)
    if kind == "gradient":
        return structure.gradient_difference(x, reconstruction)
    mse = np.square(np.asarray(x, np.float64) - np.asarray(reconstruction, np.float64))
    mse = mse.reshape(len(mse), -1).mean(axis=1)
    if kind == "mse_ssim":
        return mse + 1.0 - structure.ssim(x, reconstruction)
    return mse + structure.gradient_difference(x, reconstruction)  # mse_gradient


def _structural_map(x: np.ndarray, reconstruction: np.ndarray, kind: str) -> np.ndarray:
    if kind == "ssim":
        return 1.0 - structure.ssim_map(x, reconstruction)
    if kind == "ms_ssim":
        return 1.0 - structure.ms_ssim_map(x, reconstruction)
    if kind == "gradient":
        return structure.gradient_map(x, reconstruction)
    squared = _elementwise(x, reconstruction, "mse").mean(axis=-1)
    if kind == "mse_ssim":
        return squared + 1.0 - structure.ssim_map(x, reconstruction)
    return squared + structure.gradient_map(x, reconstruction)  # mse_gradient


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
    if kind in STRUCTURAL_KINDS:
        return _structural_error(x, reconstruction, kind)
    err = _elementwise(x, reconstruction, kind)
    flat = err.reshape(len(err), -1)
    if kind == "l2":
        return np.sqrt(flat.sum(axis=1))
    if kind == "top_k_mean":
        return top_fraction_mean(flat, check_top_k(top_k))
    return flat.mean(axis=1)


def top_fraction_mean(values: np.ndarray, fraction: float) -> np.ndarray:
    """Mean of the largest `fraction` of each sample's values (N, ...) -> (N,)."""
    flat = values.reshape(len(values), -1)
    count = max(1, math.ceil(fraction * flat.shape[1]))
    # partition puts the `count` largest values last, in no particular order.
    return np.partition(flat, flat.shape[1] - count, axis=1)[:, -count:].mean(axis=1)


def error_map(x: np.ndarray, reconstruction: np.ndarray, kind: str = "mse") -> np.ndarray:
    """Per-pixel error of images (N, H, W, C) reduced over channels: (N, H, W).

    l2 gives each pixel's norm over its channels; the other kinds the mean over
    channels (top_k_mean's map is the squared error it picks from); the
    structural kinds their per-pixel maps (module docstring).
    """
    if kind in STRUCTURAL_KINDS:
        return _structural_map(x, reconstruction, kind)
    err = _elementwise(x, reconstruction, kind)
    return np.sqrt(err.sum(axis=-1)) if kind == "l2" else err.mean(axis=-1)
