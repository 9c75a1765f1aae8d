"""Synthetic anomalies for self-supervised training (DRAEM, Zavrtanik et al. 2021).

A normal image becomes a training anomaly by pasting foreign texture into a
region shaped by Perlin noise: gradient noise on a coarse grid, smoothed by
the fade curve 6t^5 - 15t^4 + 10t^3 and thresholded at 0.5, as in the paper.
The texture comes from an anomaly-source bank (images of a folder,
`model.anomaly_source`) or, without one, from other images of the same batch,
shifted, flipped and colour-jittered so that they are not aligned with the
image they are pasted into; without a bank, a third of the samples get that
texture blurred away (a missing-texture defect) and a third a procedural
Perlin texture instead, since a shifted copy of a natural texture is still
the same texture. It is blended in with an opacity drawn from
[0.1, 1); about half the samples (`anomaly_fraction`) get no anomaly at all,
so the discriminator also learns what a clean image looks like.

Everything here is TensorFlow with stateless random ops: one seed (a shape-[2]
int tensor) fixes every draw, so a run is reproducible and a resumed run
continues the same stream when its seeds come from saved model state.
The paper also rotates the noise and picks three of nine image augmenters for
the texture; the jitter here is a smaller set (see docs/models/draem.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

# Perlin grid resolutions are the paper's 2^0..2^5 cells per side (its smallest
# cell: 8 px of 256), and cells no smaller than MIN_CELL_PIXELS: at 16-64 px
# images, 4 px keeps masks that are blobs, not salt and pepper.
MAX_RESOLUTION = 32
MIN_CELL_PIXELS = 4
# The paper's threshold on Perlin noise scaled to about [-1, 1].
MASK_THRESHOLD = 0.5
# Opacity of the pasted texture, drawn uniformly from [low, high).
OPACITY_RANGE = (0.1, 1.0)


def perlin_resolutions(side: int) -> list[int]:
    """Grid resolutions (cells per side) 1, 2, 4, ... up to MAX_RESOLUTION, whose
    cells keep >= MIN_CELL_PIXELS."""
    resolutions = [1]
    while resolutions[-1] < MAX_RESOLUTION and side / (resolutions[-1] * 2) >= MIN_CELL_PIXELS:
        resolutions.append(resolutions[-1] * 2)
    return resolutions


def _fade(t: Any) -> Any:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def perlin_noise(
    batch: Any, height: int, width: int, res_y: int, res_x: int, seed: Any
) -> tf.Tensor:
    """(batch, height, width) Perlin noise on a res_y x res_x grid, about [-1, 1].

    Each sample gets its own random unit gradients at the (res_y+1) x (res_x+1)
    grid corners; a pixel's value blends the dot products of the four corners'
    gradients with its offsets from them, weighted by the fade curve.
    """
    ys = np.arange(height, dtype=np.float64) * res_y / height
    xs = np.arange(width, dtype=np.float64) * res_x / width
    cell_y, cell_x = np.floor(ys).astype(np.int32), np.floor(xs).astype(np.int32)
    fy = tf.constant((ys - cell_y)[:, None], tf.float32)  # (H, 1)
    fx = tf.constant((xs - cell_x)[None, :], tf.float32)  # (1, W)
    angles = tf.random.stateless_uniform(
        tf.stack([batch, res_y + 1, res_x + 1]), seed, 0.0, 2.0 * np.pi
    )
    gradients = tf.stack([tf.cos(angles), tf.sin(angles)], axis=-1)  # (B, ry+1, rx+1, 2)

    def corner(dy: int, dx: int) -> tf.Tensor:
        rows = tf.gather(gradients, cell_y + dy, axis=1)  # (B, H, rx+1, 2)
        g = tf.gather(rows, cell_x + dx, axis=2)  # (B, H, W, 2)
        return g[..., 1] * (fy - dy) + g[..., 0] * (fx - dx)

    u, v = _fade(fx), _fade(fy)
    top = corner(0, 0) * (1.0 - u) + corner(0, 1) * u
    bottom = corner(1, 0) * (1.0 - u) + corner(1, 1) * u
    return np.sqrt(2.0) * (top * (1.0 - v) + bottom * v)


def perlin_masks(batch: Any, height: int, width: int, seed: Any) -> tf.Tensor:
    """(batch, height, width) 0/1 masks: Perlin noise > 0.5 at a random grid
    resolution per sample and per axis (from perlin_resolutions)."""
    res_ys, res_xs = perlin_resolutions(height), perlin_resolutions(width)
    pairs = [(ry, rx) for ry in res_ys for rx in res_xs]
    # Every candidate resolution for the whole batch, then one picked per sample,
    # so shapes stay static: up to 36 noise fields per sample (6 x 6 resolutions
    # from 128 px up), a cost paid for static shapes.
    noises = tf.stack(
        [
            perlin_noise(
                batch, height, width, ry, rx, tf.random.experimental.stateless_fold_in(seed, k)
            )
            for k, (ry, rx) in enumerate(pairs)
        ],
        axis=1,
    )  # (B, K, H, W)
    picked = tf.random.stateless_uniform(
        tf.reshape(batch, [1]),
        tf.random.experimental.stateless_fold_in(seed, len(pairs)),
        0,
        len(pairs),
        dtype=tf.int32,
    )
    noise = tf.gather(noises, picked[:, None], axis=1, batch_dims=1)[:, 0]
    return tf.cast(noise > MASK_THRESHOLD, tf.float32)


def _seed(seed: Any, stream: int) -> tf.Tensor:
    return tf.random.experimental.stateless_fold_in(seed, stream)


def misaligned_textures(images: Any, seed: Any) -> tf.Tensor:
    """`images` made unlike their originals: circularly shifted by a random offset,
    randomly flipped (and transposed when square), contrast and brightness
    jittered, half of them inverted; values stay within the batch's range."""
    images = tf.convert_to_tensor(images, tf.float32)
    batch = tf.shape(images)[0]
    height, width = int(images.shape[1]), int(images.shape[2])
    # Circular shift by a per-sample offset: gather rows and columns.
    shift_y = tf.random.stateless_uniform([batch], _seed(seed, 0), 0, height, dtype=tf.int32)
    shift_x = tf.random.stateless_uniform([batch], _seed(seed, 1), 0, width, dtype=tf.int32)
    rows = (tf.range(height)[None, :] + shift_y[:, None]) % height  # (B, H)
    cols = (tf.range(width)[None, :] + shift_x[:, None]) % width  # (B, W)
    shifted = tf.gather(images, rows, axis=1, batch_dims=1)
    shifted = tf.gather(shifted, cols, axis=2, batch_dims=1)
    flips = tf.random.stateless_uniform([batch, 3], _seed(seed, 2)) < 0.5
    shifted = tf.where(flips[:, 0, None, None, None], tf.reverse(shifted, [1]), shifted)
    shifted = tf.where(flips[:, 1, None, None, None], tf.reverse(shifted, [2]), shifted)
    if height == width:
        transposed = tf.transpose(shifted, [0, 2, 1, 3])
        shifted = tf.where(flips[:, 2, None, None, None], transposed, shifted)
    low, high = tf.reduce_min(images), tf.reduce_max(images)
    mean = tf.reduce_mean(shifted, axis=[1, 2, 3], keepdims=True)
    contrast = tf.random.stateless_uniform([batch, 1, 1, 1], _seed(seed, 3), 0.5, 1.5)
    brightness = tf.random.stateless_uniform([batch, 1, 1, 1], _seed(seed, 4), -0.2, 0.2)
    jittered = (shifted - mean) * contrast + mean + brightness * (high - low)
    invert = tf.random.stateless_uniform([batch, 1, 1, 1], _seed(seed, 5)) < 0.5
    jittered = tf.where(invert, low + high - jittered, jittered)
    return tf.clip_by_value(jittered, low, high)


def smoothed(images: Any, height: int, width: int) -> tf.Tensor:
    """Images with their texture blurred away: two box filters a quarter of the
    image wide (a triangle filter), edges averaged over the pixels inside."""
    size = max(3, min(height, width) // 4)
    once = tf.nn.avg_pool2d(images, size, strides=1, padding="SAME")
    return tf.nn.avg_pool2d(once, size, strides=1, padding="SAME")


def noise_textures(images: Any, seed: Any) -> tf.Tensor:
    """Perlin textures at a fine grid resolution, one per image, spread over the
    batch's value range, in every channel alike."""
    images = tf.convert_to_tensor(images, tf.float32)
    batch = tf.shape(images)[0]
    height, width, channels = (int(d) for d in images.shape[1:])
    finest = perlin_resolutions(min(height, width))[-1]
    noise = perlin_noise(batch, height, width, finest, finest, seed)
    low, high = tf.reduce_min(images), tf.reduce_max(images)
    texture = low + (high - low) * tf.clip_by_value(0.5 + 0.5 * noise, 0.0, 1.0)
    return tf.repeat(texture[..., None], channels, axis=-1)


def synthesize_anomalies(
    images: Any, seed: Any, source_bank: Any = None, anomaly_fraction: float = 0.5
) -> tuple[tf.Tensor, tf.Tensor]:
    """(anomalous images, masks (B, H, W)) from a batch of normal images.

    Inside a sample's mask, the image is blended towards foreign texture with
    an opacity from OPACITY_RANGE; outside it, pixels are untouched. A sample
    left without anomaly (probability 1 - anomaly_fraction) or whose Perlin
    mask came out empty gets an all-zero mask and stays as it was.
    `source_bank` (N, H, W, C): textures to draw from; None: the batch itself,
    each image taking another one's (the next in the batch) texture, smoothed
    for a third of the samples and replaced by Perlin texture for another third.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    batch = tf.shape(images)[0]
    height, width = int(images.shape[1]), int(images.shape[2])
    masks = perlin_masks(batch, height, width, _seed(seed, 10))
    keep = tf.random.stateless_uniform([batch], _seed(seed, 11)) < anomaly_fraction
    masks = masks * tf.cast(keep, tf.float32)[:, None, None]
    if source_bank is None:
        donors = tf.roll(images, shift=1, axis=0)
        texture = misaligned_textures(donors, _seed(seed, 13))
        # Batch images alone teach only "a shifted copy of this texture": of a
        # natural texture, that is still the same texture. A third of the samples
        # get it smoothed away instead (a missing-texture defect), a third a
        # procedural Perlin texture (a foreign one).
        kind = tf.random.stateless_uniform([batch, 1, 1, 1], _seed(seed, 15), 0, 3, dtype=tf.int32)
        texture = tf.where(kind == 1, smoothed(texture, height, width), texture)
        texture = tf.where(kind == 2, noise_textures(images, _seed(seed, 16)), texture)
    else:
        bank = tf.convert_to_tensor(source_bank, tf.float32)
        picked = tf.random.stateless_uniform(
            [batch], _seed(seed, 12), 0, tf.shape(bank)[0], dtype=tf.int32
        )
        texture = misaligned_textures(tf.gather(bank, picked), _seed(seed, 13))
    opacity = tf.random.stateless_uniform([batch, 1, 1, 1], _seed(seed, 14), *OPACITY_RANGE)
    blend = masks[..., None] * opacity
    return images + blend * (texture - images), masks


def read_source_images(paths: Sequence[Path], shape: Sequence[int]) -> np.ndarray:
    """(N, H, W, C) float32 in [0, 1]: each file scaled so its shorter side fits
    the sample's, then centre-cropped to it (the files checks.check_anomaly_source
    chose: at most checks.MAX_SOURCE_IMAGES)."""
    from PIL import Image

    from anomaly_cli.data.images import read_pixels

    height, width, channels = (int(s) for s in shape)
    bank = []
    for path in paths:
        pixels = read_pixels(str(path).encode(), channels)
        image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
        scale = max(height / image.height, width / image.width)
        size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
        image = image.resize(size, Image.BILINEAR)
        left, top = (size[0] - width) // 2, (size[1] - height) // 2
        crop = np.asarray(image.crop((left, top, left + width, top + height)), dtype=np.float32)
        bank.append(crop.reshape(height, width, channels) / 255.0)
    return np.stack(bank)
