"""Structure-aware comparisons of an image with its reconstruction (NumPy/SciPy, float64).

Squared or absolute errors compare pixel by pixel, so a blurry reconstruction of
a texture is "wrong" everywhere by about as much as it is wrong over a foreign
patch, and the patch drowns in the texture's error. These comparisons look at
local statistics instead:

- SSIM (Wang et al. 2004), exactly as `tf.image.ssim` computes it: an 11 x 11
  Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, 'VALID' filtering for the
  per-image value, the mean over channels. It compares each window's mean
  (luminance), standard deviation (contrast) and correlation (structure).
- Multi-scale SSIM (Wang et al. 2003) as `tf.image.ssim_multiscale`: contrast-
  structure at each of up to 5 scales (2 x 2 average pooling between them) and
  SSIM at the coarsest, weighted by (0.0448, 0.2856, 0.3001, 0.2363, 0.1333).
  The coarsest scale must still hold a whole window, which takes 161 px for 5
  scales, so smaller images use only the scales their size allows (32 px: 2,
  64 px: 3, 128 px: 4) with the first weights renormalised to sum to 1; with all
  5 scales the result is TensorFlow's.
- A gradient term: the local gradient magnitude (Sobel derivatives, divided by 8
  so they are per-pixel slopes, averaged over the SSIM window) of the image, g,
  and of the reconstruction, h, compared as a ratio the way SSIM compares
  contrast, 1 - (2 g h + C) / (g^2 + h^2 + C) with C = (K2 max_val)^2 (the
  gradient-magnitude similarity of GMSD, Xue et al. 2014, on windowed
  magnitudes). Texture present in one and missing in the other (a smooth patch
  on grass, or grass hallucinated on a smooth part) scores near 1 even where the
  mean brightness agrees, while a reconstruction that is uniformly a bit blurry
  costs the same small amount everywhere. A plain difference |g - h| was tried
  first and dropped: blur lowers h most where the texture is richest, so it
  ranked smooth patches as the most normal regions.

Per-pixel maps (N, H, W) use the same window with same-size filtering (mirror
padding, 'reflect' in SciPy = 'SYMMETRIC' in TensorFlow), so they line up with
the image; their mean is close to, but not exactly, the 'VALID' scalar, which
leaves out a 5 px border (a defect there shows in the map, and only partly in
the score). Images smaller than the window use a window as large as their
smaller side allows (odd, so it has a centre).

Dynamic range (`max_val`): DYNAMIC_RANGE = 1.0. Images are scaled to [0, 1] by
default (dataset.preprocess.value_range) and the image decoders (conv_ae, unet,
vae, iaead, dual_ae, ganomaly) end in a sigmoid, so their reconstructions lie
in [0, 1] whatever the inputs' range; 1 is the range they can reproduce. With
value_range=[-1, 1] the constants are 4x smaller than that range would give,
which makes SSIM more sensitive to noise in flat regions.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from scipy import ndimage

FILTER_SIZE = 11
FILTER_SIGMA = 1.5
K1 = 0.01
K2 = 0.03
DYNAMIC_RANGE = 1.0
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
# Sobel derivative and smoothing taps; /8 makes a unit ramp's slope 1 per pixel.
SOBEL_DERIVATIVE = (-1.0, 0.0, 1.0)
SOBEL_SMOOTHING = (1.0, 2.0, 1.0)
SOBEL_SCALE = 8.0
# Images per chunk are chosen so one float64 intermediate stays near 64 MB: a
# batch of 256 full-size (512 px) images would otherwise need several GB.
_CHUNK_VALUES = 8_000_000


def window_size(height: int, width: int) -> int:
    """The SSIM window for an image: FILTER_SIZE, or the largest odd size that fits."""
    size = min(FILTER_SIZE, int(height), int(width))
    return max(1, size if size % 2 else size - 1)


def gaussian_window(size: int, sigma: float = FILTER_SIGMA) -> np.ndarray:
    """1-D Gaussian taps summing to 1; their outer product is tf.image.ssim's kernel
    (a softmax of -(i^2 + j^2) / 2 sigma^2, which separates)."""
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    taps = np.exp(-0.5 * np.square(coords) / sigma**2)
    return taps / taps.sum()


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales (1-5) keep a full FILTER_SIZE window at the coarsest."""
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS):
        height, width = -(-height // 2), -(-width // 2)  # odd sides are padded, then halved
        if min(height, width) < FILTER_SIZE:
            break
        scales += 1
    return scales


def ms_ssim_weights(scales: int) -> np.ndarray:
    """Wang et al.'s weights for `scales` scales: all five as published, fewer
    renormalised to sum to 1."""
    weights = np.asarray(MS_SSIM_WEIGHTS, dtype=np.float64)
    if scales == len(weights):
        return weights
    return weights[:scales] / weights[:scales].sum()


def _as_images(x: np.ndarray) -> np.ndarray:
    images = np.asarray(x, dtype=np.float64)
    if images.ndim != 4:
        raise ValueError(f"structural comparisons need images (N, H, W, C), got {images.shape}")
    return images


def _chunked(compare: Any) -> Any:
    """Run `compare(x, y, ...)` on slices of the batch and join the results."""

    @functools.wraps(compare)
    def run(x: np.ndarray, y: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        x, y = _as_images(x), _as_images(y)
        if x.shape != y.shape:
            raise ValueError(f"images {x.shape} and reconstructions {y.shape} differ in shape")
        step = max(1, _CHUNK_VALUES // max(1, int(np.prod(x.shape[1:]))))
        if len(x) <= step:
            return compare(x, y, *args, **kwargs)
        parts = [
            compare(x[i : i + step], y[i : i + step], *args, **kwargs)
            for i in range(0, len(x), step)
        ]
        return np.concatenate(parts)

    return run


def _smooth(images: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable same-size filtering over height and width, mirror-padded."""
    out = ndimage.correlate1d(images, taps, axis=1, mode="reflect")
    return ndimage.correlate1d(out, taps, axis=2, mode="reflect")


def _luminance_and_contrast_structure(
    x: np.ndarray, y: np.ndarray, max_val: float, valid: bool
) -> tuple[np.ndarray, np.ndarray]:
    """SSIM's luminance and contrast-structure terms per position and channel; with
    `valid`, only where the whole window lies inside the image (TensorFlow's)."""
    size = window_size(x.shape[1], x.shape[2])
    taps = gaussian_window(size)

    def local_mean(values: np.ndarray) -> np.ndarray:
        out = _smooth(values, taps)
        if valid:
            radius = size // 2
            out = out[:, radius : out.shape[1] - radius, radius : out.shape[2] - radius]
        return out

    c1, c2 = (K1 * max_val) ** 2, (K2 * max_val) ** 2
    mean_x, mean_y = local_mean(x), local_mean(y)
    # The same algebra as TensorFlow's _ssim_helper (compensation 1.0, as MATLAB).
    num0 = 2.0 * mean_x * mean_y
    den0 = np.square(mean_x) + np.square(mean_y)
    luminance = (num0 + c1) / (den0 + c1)
    num1 = 2.0 * local_mean(x * y)
    den1 = local_mean(np.square(x) + np.square(y))
    contrast_structure = (num1 - num0 + c2) / (den1 - den0 + c2)
    return luminance, contrast_structure


@_chunked
def ssim(x: np.ndarray, y: np.ndarray, max_val: float = DYNAMIC_RANGE) -> np.ndarray:
    """Mean SSIM of each image pair (N,), channels averaged: tf.image.ssim."""
    luminance, cs = _luminance_and_contrast_structure(_as_images(x), _as_images(y), max_val, True)
    return (luminance * cs).mean(axis=(1, 2)).mean(axis=-1)


@_chunked
def ssim_map(x: np.ndarray, y: np.ndarray, max_val: float = DYNAMIC_RANGE) -> np.ndarray:
    """SSIM at every pixel (N, H, W), channels averaged; 1 where the two agree."""
    luminance, cs = _luminance_and_contrast_structure(_as_images(x), _as_images(y), max_val, False)
    return (luminance * cs).mean(axis=-1)


def _halve(images: np.ndarray) -> np.ndarray:
    """2 x 2 average pooling; an odd side first repeats its last row/column, as
    tf.image.ssim_multiscale pads ('SYMMETRIC' by 1)."""
    pad = [(0, 0), (0, images.shape[1] % 2), (0, images.shape[2] % 2), (0, 0)]
    if any(after for _, after in pad):
        images = np.pad(images, pad, mode="symmetric")
    n, h, w, c = images.shape
    return images.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _scale_factors(x: np.ndarray, y: np.ndarray, max_val: float, valid: bool) -> list[np.ndarray]:
    """Per scale: the contrast-structure map, and the SSIM map at the coarsest."""
    scales = ms_ssim_scales(x.shape[1], x.shape[2])
    factors = []
    for scale in range(scales):
        if scale:
            x, y = _halve(x), _halve(y)
        luminance, cs = _luminance_and_contrast_structure(x, y, max_val, valid)
        last = scale == scales - 1
        factors.append(luminance * cs if last else cs)
    return factors


@_chunked
def ms_ssim(x: np.ndarray, y: np.ndarray, max_val: float = DYNAMIC_RANGE) -> np.ndarray:
    """Multi-scale SSIM of each image pair (N,): tf.image.ssim_multiscale on images of
    161 px or more, fewer scales (renormalised weights) below that."""
    factors = _scale_factors(_as_images(x), _as_images(y), max_val, valid=True)
    weights = ms_ssim_weights(len(factors))
    per_channel = np.ones((len(factors[0]), factors[0].shape[-1]))
    for factor, weight in zip(factors, weights, strict=True):
        # relu of each scale's mean, as TensorFlow: a negative one zeroes MS-SSIM.
        per_channel *= np.maximum(factor.mean(axis=(1, 2)), 0.0) ** weight
    return per_channel.mean(axis=-1)


@_chunked
def ms_ssim_map(x: np.ndarray, y: np.ndarray, max_val: float = DYNAMIC_RANGE) -> np.ndarray:
    """Multi-scale SSIM per pixel (N, H, W): each scale's map repeated back to full
    size (each coarse pixel covers the block it pooled) and combined with the
    weights pixel by pixel, channels averaged. Its mean is not the scalar ms_ssim,
    which weights the per-scale means."""
    x, y = _as_images(x), _as_images(y)
    height, width = x.shape[1:3]
    combined = np.ones(x.shape)
    factors = _scale_factors(x, y, max_val, valid=False)
    for scale, (factor, weight) in enumerate(
        zip(factors, ms_ssim_weights(len(factors)), strict=True)
    ):
        block = 2**scale
        full = np.repeat(np.repeat(factor, block, axis=1), block, axis=2)[:, :height, :width]
        combined *= np.maximum(full, 0.0) ** weight
    return combined.mean(axis=-1)


def gradient_magnitude(images: np.ndarray) -> np.ndarray:
    """Local gradient magnitude per pixel and channel: the Sobel slope's norm,
    averaged over the SSIM window, so it measures how much texture a
    neighbourhood holds rather than where exactly each edge lies."""
    images = _as_images(images)
    derivative = np.asarray(SOBEL_DERIVATIVE) / SOBEL_SCALE
    smoothing = np.asarray(SOBEL_SMOOTHING)
    along_height = ndimage.correlate1d(images, derivative, axis=1, mode="reflect")
    along_height = ndimage.correlate1d(along_height, smoothing, axis=2, mode="reflect")
    along_width = ndimage.correlate1d(images, derivative, axis=2, mode="reflect")
    along_width = ndimage.correlate1d(along_width, smoothing, axis=1, mode="reflect")
    magnitude = np.sqrt(np.square(along_height) + np.square(along_width))
    taps = gaussian_window(window_size(images.shape[1], images.shape[2]))
    return _smooth(magnitude, taps)


@_chunked
def gradient_map(x: np.ndarray, y: np.ndarray, max_val: float = DYNAMIC_RANGE) -> np.ndarray:
    """1 - gradient-magnitude similarity per pixel (N, H, W), channels averaged: 0
    where x and y hold as much texture, towards 1 where one of them has none."""
    g, h = gradient_magnitude(x), gradient_magnitude(y)
    c = (K2 * max_val) ** 2
    return (1.0 - (2.0 * g * h + c) / (np.square(g) + np.square(h) + c)).mean(axis=-1)


def gradient_difference(x: np.ndarray, y: np.ndarray, max_val: float = DYNAMIC_RANGE) -> np.ndarray:
    """Mean of gradient_map for each image pair (N,)."""
    return gradient_map(x, y, max_val).mean(axis=(1, 2))
