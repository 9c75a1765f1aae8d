"""scikit-learn's bundled 8x8 digits: one-vs-rest anomaly detection, no download."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from anomaly_cli.data.base import LoadContext, Splits
from anomaly_cli.data.preprocess import image_size
from anomaly_cli.data.splits import array_splits


def load(cfg: DictConfig, ctx: LoadContext) -> Splits:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixel intensities run 0..16; the decoder's sigmoid needs [0, 1].
    size = image_size(cfg)
    x = upscale(digits.images / 16.0, size)[..., np.newaxis]
    ids = np.array([f"digits-{i:04d}" for i in range(len(x))])
    info = {"source": "sklearn.datasets.load_digits", "image_size": size}
    return array_splits(x, digits.target.astype(str), ids, cfg, ctx, info)


def upscale(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of (N, h, w) images to (N, size, size), values kept in [0, 1]."""
    from scipy.ndimage import zoom

    h, w = images.shape[1:]
    if (h, w) == (size, size):
        return images.astype(np.float32)
    resized = zoom(images, (1, size / h, size / w), order=1, grid_mode=True, mode="nearest")
    return np.clip(resized, 0.0, 1.0).astype(np.float32)
