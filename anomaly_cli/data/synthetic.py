"""Generated images with planted anomalies, for fast tests and demos.

A normal image is one soft Gaussian blob at a random place; an anomaly is a
normal image with a bright square patch pasted somewhere else. An autoencoder
trained on blobs reconstructs patches badly, so the anomalies are detectable.
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from anomaly_cli.data.base import LoadContext, Splits
from anomaly_cli.data.preprocess import image_size
from anomaly_cli.data.splits import array_splits
from anomaly_cli.errors import AdxUserError


def load(cfg: DictConfig, ctx: LoadContext) -> Splits:
    size, patch = image_size(cfg), int(cfg.patch_size)
    if not 0 < patch < size:
        raise AdxUserError(
            f"dataset.patch_size={patch} must lie between 1 and image_size-1 ({size - 1})"
        )
    x, labels = make_images(
        int(cfg.n_normal), int(cfg.n_anomaly), size, int(cfg.channels), patch, ctx.seed
    )
    ids = np.array([f"synthetic-{i:05d}" for i in range(len(x))])
    info = {"source": "synthetic", "image_size": size, "patch_size": patch}
    classes = np.where(labels == 1, "patch", "blob")
    return array_splits(x, classes, ids, cfg, ctx, info, names=["blob", "patch"])


def make_images(
    n_normal: int, n_anomaly: int, size: int, channels: int, patch: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = n_normal + n_anomaly
    grid = np.arange(size, dtype=np.float32)
    cy, cx = rng.uniform(size * 0.25, size * 0.75, (2, n, 1, 1))
    sigma = rng.uniform(size * 0.1, size * 0.2, (n, 1, 1))
    peak = rng.uniform(0.5, 0.9, (n, 1, 1))
    blob = peak * np.exp(
        -((grid[None, :, None] - cy) ** 2 + (grid[None, None, :] - cx) ** 2) / (2 * sigma**2)
    )
    images = np.repeat(blob[..., None], channels, axis=-1).astype(np.float32)
    labels = np.zeros(n, dtype=np.int8)
    labels[n_normal:] = 1
    for i in range(n_normal, n):
        top, left = rng.integers(0, size - patch + 1, 2)
        images[i, top : top + patch, left : left + patch, :] = 1.0
    order = rng.permutation(n)
    return images[order], labels[order]
