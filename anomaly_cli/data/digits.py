"""scikit-learn's bundled 8x8 digits: one-vs-rest anomaly detection, no download."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig, ListConfig

from anomaly_cli.data.base import Splits
from anomaly_cli.data.splits import array_splits
from anomaly_cli.errors import AdxUserError


def load(cfg: DictConfig, seed: int) -> Splits:
    from sklearn.datasets import load_digits

    digits = load_digits()
    classes = sorted(int(c) for c in np.unique(digits.target))
    normal = normal_classes(cfg.normal_class, classes)
    labels = (~np.isin(digits.target, normal)).astype(np.int8)
    # Pixel intensities run 0..16; the decoder's sigmoid needs [0, 1].
    x = upscale(digits.images / 16.0, int(cfg.image_size))[..., np.newaxis]
    ids = np.array([f"digits-{i:04d}" for i in range(len(x))])
    info = {
        "source": "sklearn.datasets.load_digits",
        "normal_classes": normal,
        "classes": classes,
        "image_size": int(cfg.image_size),
    }
    return array_splits(x, labels, ids, cfg.split, seed, info)


def upscale(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of (N, h, w) images to (N, size, size), values kept in [0, 1]."""
    from scipy.ndimage import zoom

    if size < 1:
        raise AdxUserError(f"dataset.image_size={size} must be a positive number of pixels")
    h, w = images.shape[1:]
    if (h, w) == (size, size):
        return images.astype(np.float32)
    resized = zoom(images, (1, size / h, size / w), order=1, grid_mode=True, mode="nearest")
    return np.clip(resized, 0.0, 1.0).astype(np.float32)


def normal_classes(value: int | list[int] | ListConfig, present: list[int]) -> list[int]:
    wanted = list(value) if isinstance(value, (list, ListConfig)) else [value]
    unknown = [v for v in wanted if v not in present]
    if not wanted or unknown:
        raise AdxUserError(
            f"dataset.normal_class={value} is not a class of this dataset; "
            f"classes present: {', '.join(map(str, present))}"
        )
    return [int(v) for v in wanted]
