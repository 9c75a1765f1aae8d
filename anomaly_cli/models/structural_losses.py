"""Structure-aware training losses, and the TensorFlow twins of the structural scores.

The NumPy module scoring/structure.py defines SSIM, multi-scale SSIM and the
gradient term (and why they help on textures); this module computes the same
quantities in TensorFlow so that a model can train on them (`model.loss`) and
so that input gradients (saliency) exist for the scores. Both follow the same
rules: tf.image.ssim's window and constants, 'VALID' filtering for per-image
values, mirror padding for the gradient maps, the scales an image's size allows
for MS-SSIM, and DYNAMIC_RANGE = 1 (structure.py says why).

Losses by name (`training_loss`), each one value per sample:
- mse, mae, msle: Keras' own;
- ssim: 1 - SSIM; ms_ssim: 1 - MS-SSIM;
- mse_ssim: mse + (1 - SSIM), DRAEM's reconstruction loss (L2 + SSIM, equal weights);
- mse_gradient: mse + the gradient term (1 - gradient-magnitude similarity), so a
  reconstruction that smooths a texture away is penalised where pixel errors
  would average out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from anomaly_cli.scoring import structure
from anomaly_cli.scoring.reconstruction import KERAS_LOSSES, STRUCTURAL_KINDS

# Below this a factor of MS-SSIM is 0 (TensorFlow's relu); the floor only keeps
# x ** w differentiable there, the value is TensorFlow's.
_POSITIVE_FLOOR = 1e-12


def _taps(size: int) -> tf.Tensor:
    return tf.constant(structure.gaussian_window(size), dtype=tf.float32)


def _correlate(images: Any, kernel: Any) -> Any:
    """Depthwise 2-D correlation, 'VALID', of every channel with one (h, w) kernel."""
    channels = images.shape[-1]
    kernel = tf.tile(tf.reshape(kernel, (*kernel.shape, 1, 1)), (1, 1, channels, 1))
    return tf.nn.depthwise_conv2d(images, kernel, strides=[1, 1, 1, 1], padding="VALID")


def _mirror(images: Any, radius: int) -> Any:
    """Pad height and width by `radius`, mirrored with the edge repeated (SciPy's 'reflect')."""
    if not radius:
        return images
    return tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")


def _local_mean(images: Any, size: int, valid: bool) -> Any:
    taps = _taps(size)
    if not valid:
        images = _mirror(images, size // 2)
    images = _correlate(images, tf.reshape(taps, (size, 1)))
    return _correlate(images, tf.reshape(taps, (1, size)))


def _luminance_and_contrast_structure(
    x: Any, y: Any, max_val: float, valid: bool = True
) -> tuple[Any, Any]:
    size = structure.window_size(x.shape[1], x.shape[2])
    c1, c2 = (structure.K1 * max_val) ** 2, (structure.K2 * max_val) ** 2
    mean_x, mean_y = _local_mean(x, size, valid), _local_mean(y, size, valid)
    num0 = 2.0 * mean_x * mean_y
    den0 = tf.square(mean_x) + tf.square(mean_y)
    luminance = (num0 + c1) / (den0 + c1)
    num1 = 2.0 * _local_mean(x * y, size, valid)
    den1 = _local_mean(tf.square(x) + tf.square(y), size, valid)
    return luminance, (num1 - num0 + c2) / (den1 - den0 + c2)


def ssim(x: Any, y: Any, max_val: float = structure.DYNAMIC_RANGE) -> Any:
    """Mean SSIM per image pair (N,), channels averaged: tf.image.ssim."""
    luminance, cs = _luminance_and_contrast_structure(x, y, max_val)
    return tf.reduce_mean(luminance * cs, axis=[1, 2, 3])


def _halve(images: Any) -> Any:
    height, width = images.shape[1], images.shape[2]
    if height % 2 or width % 2:
        images = tf.pad(images, [[0, 0], [0, height % 2], [0, width % 2], [0, 0]], mode="SYMMETRIC")
    return tf.nn.avg_pool2d(images, ksize=2, strides=2, padding="VALID")


def _safe_power(factor: Any, weight: float) -> Any:
    """relu(factor) ** weight with a finite gradient where factor <= 0."""
    floored = tf.maximum(factor, _POSITIVE_FLOOR)
    return tf.where(factor > 0, floored**weight, tf.zeros_like(factor))


def ms_ssim(x: Any, y: Any, max_val: float = structure.DYNAMIC_RANGE) -> Any:
    """Multi-scale SSIM per image pair (N,): tf.image.ssim_multiscale from 161 px,
    fewer scales with renormalised weights below (structure.ms_ssim)."""
    scales = structure.ms_ssim_scales(x.shape[1], x.shape[2])
    weights = structure.ms_ssim_weights(scales)
    product = None
    for scale in range(scales):
        if scale:
            x, y = _halve(x), _halve(y)
        luminance, cs = _luminance_and_contrast_structure(x, y, max_val)
        factor = luminance * cs if scale == scales - 1 else cs
        term = _safe_power(tf.reduce_mean(factor, axis=[1, 2]), float(weights[scale]))
        product = term if product is None else product * term
    return tf.reduce_mean(product, axis=-1)


def gradient_magnitude(images: Any) -> Any:
    """structure.gradient_magnitude: the windowed norm of the Sobel slope."""
    derivative = np.asarray(structure.SOBEL_DERIVATIVE) / structure.SOBEL_SCALE
    sobel_height = np.outer(derivative, structure.SOBEL_SMOOTHING)
    padded = _mirror(images, 1)
    along_height = _correlate(padded, tf.constant(sobel_height, tf.float32))
    along_width = _correlate(padded, tf.constant(sobel_height.T, tf.float32))
    # The tiny offset keeps sqrt's gradient finite on flat regions (value off by 1e-6).
    magnitude = tf.sqrt(tf.square(along_height) + tf.square(along_width) + 1e-12)
    size = structure.window_size(images.shape[1], images.shape[2])
    return _local_mean(magnitude, size, valid=False)


def gradient_difference(x: Any, y: Any, max_val: float = structure.DYNAMIC_RANGE) -> Any:
    """structure.gradient_difference: mean 1 - gradient-magnitude similarity (N,)."""
    g, h = gradient_magnitude(x), gradient_magnitude(y)
    c = (structure.K2 * max_val) ** 2
    dissimilarity = 1.0 - (2.0 * g * h + c) / (tf.square(g) + tf.square(h) + c)
    return tf.reduce_mean(dissimilarity, axis=[1, 2, 3])


def _mse(x: Any, y: Any) -> Any:
    return tf.reduce_mean(tf.square(x - y), axis=[1, 2, 3])


def structural_error(x: Any, reconstruction: Any, kind: str) -> Any:
    """The structural score `kind` (scoring.reconstruction.STRUCTURAL_KINDS) per
    sample (N,) in TensorFlow: the twin of reconstruction_error, with gradients."""
    x = tf.cast(x, tf.float32)
    reconstruction = tf.cast(reconstruction, tf.float32)  # mixed precision outputs 16 bits
    if kind == "ssim":
        return 1.0 - ssim(x, reconstruction)
    if kind == "ms_ssim":
        return 1.0 - ms_ssim(x, reconstruction)
    if kind == "gradient":
        return gradient_difference(x, reconstruction)
    if kind == "mse_ssim":
        return _mse(x, reconstruction) + 1.0 - ssim(x, reconstruction)
    if kind == "mse_gradient":
        return _mse(x, reconstruction) + gradient_difference(x, reconstruction)
    raise ValueError(f"{kind!r} is not one of {STRUCTURAL_KINDS}")


# Registered functions (not lambdas), so a checkpoint compiled with one loads
# again with compile=True when a run resumes.
@keras.saving.register_keras_serializable(package="adx")
def ssim_loss(y_true: Any, y_pred: Any) -> Any:
    return structural_error(y_true, y_pred, "ssim")


@keras.saving.register_keras_serializable(package="adx")
def ms_ssim_loss(y_true: Any, y_pred: Any) -> Any:
    return structural_error(y_true, y_pred, "ms_ssim")


@keras.saving.register_keras_serializable(package="adx")
def mse_ssim_loss(y_true: Any, y_pred: Any) -> Any:
    return structural_error(y_true, y_pred, "mse_ssim")


@keras.saving.register_keras_serializable(package="adx")
def mse_gradient_loss(y_true: Any, y_pred: Any) -> Any:
    return structural_error(y_true, y_pred, "mse_gradient")


_STRUCTURAL_LOSSES: dict[str, Callable[[Any, Any], Any]] = {
    "ssim": ssim_loss,
    "ms_ssim": ms_ssim_loss,
    "mse_ssim": mse_ssim_loss,
    "mse_gradient": mse_gradient_loss,
}


def training_loss(name: str) -> Callable[[Any, Any], Any]:
    """The Keras-compatible loss `model.loss=name` trains with: Keras' own for
    mse/mae/msle (reduced over the last axis), otherwise one value per sample.
    Callers average what it returns, so both kinds work in a custom train_step."""
    if name in KERAS_LOSSES:
        return keras.losses.get(name)
    if name in _STRUCTURAL_LOSSES:
        return _STRUCTURAL_LOSSES[name]
    raise ValueError(f"no training loss is named {name!r}")
