"""Reconstruction errors, per sample and per pixel (NumPy, float64)."""

from __future__ import annotations

import numpy as np

from anomaly_cli.errors import AdxUserError

ERRORS = ("mse", "mae")


def _elementwise(x: np.ndarray, reconstruction: np.ndarray, kind: str) -> np.ndarray:
    diff = np.asarray(x, dtype=np.float64) - np.asarray(reconstruction, dtype=np.float64)
    if kind == "mse":
        return np.square(diff)
    if kind == "mae":
        return np.abs(diff)
    raise AdxUserError(
        f"model.score={kind} is not a known error; choose one of: {', '.join(ERRORS)}"
    )


def reconstruction_error(
    x: np.ndarray, reconstruction: np.ndarray, kind: str = "mse"
) -> np.ndarray:
    """One score per sample: the mean error over all its values."""
    err = _elementwise(x, reconstruction, kind)
    return err.reshape(len(err), -1).mean(axis=1)


def error_map(x: np.ndarray, reconstruction: np.ndarray, kind: str = "mse") -> np.ndarray:
    """Per-pixel error of images (N, H, W, C), averaged over channels: (N, H, W)."""
    return _elementwise(x, reconstruction, kind).mean(axis=-1)
