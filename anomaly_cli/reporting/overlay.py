"""The one way adx draws an anomaly map over an image (plots, predict's heatmaps/, reports).

Pure NumPy plus a matplotlib colormap, no figure: the result is an RGB uint8
array that a plot shows with `imshow` and `save_png` writes as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anomaly_cli import runs

# How much of the heatmap shows through the image.
DEFAULT_ALPHA = 0.5


def to_rgb(image: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """An (H, W), (H, W, 1) or (H, W, 3) image in `value_range` as float RGB in [0, 1]."""
    low, high = value_range
    picture = (np.asarray(image, dtype=np.float64) - low) / max(high - low, 1e-12)
    picture = np.clip(picture, 0.0, 1.0)
    if picture.ndim == 3 and picture.shape[-1] == 1:
        picture = picture[..., 0]
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=-1)
    return picture[..., :3]


def normalise_map(amap: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """Map values in [0, 1]: divided by `vmax` (one scale for many images) or the map's own max."""
    values = np.nan_to_num(np.asarray(amap, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    values = np.maximum(values, 0.0)
    top = float(vmax) if vmax is not None and vmax > 0 else float(values.max(initial=0.0))
    return np.clip(values / top, 0.0, 1.0) if top > 0 else np.zeros_like(values)


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """The boundary pixels of a binary (H, W) mask: inside the mask, next to outside it."""
    inside = np.asarray(mask) > 0.5
    padded = np.pad(inside, 1, mode="edge")
    eroded = (
        padded[1:-1, 1:-1]
        & padded[:-2, 1:-1]
        & padded[2:, 1:-1]
        & padded[1:-1, :-2]
        & padded[1:-1, 2:]
    )
    return inside & ~eroded


def heatmap_overlay(
    image: np.ndarray,
    amap: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
    vmax: float | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> np.ndarray:
    """`image` with `amap` (H, W; higher = more anomalous) blended on top as a heat colormap,
    and the ground-truth `mask` outlined in green when given. Returns (H, W, 3) uint8."""
    from matplotlib import colormaps

    picture = to_rgb(image, value_range)
    heat = colormaps["jet"](normalise_map(amap, vmax))[..., :3]
    blended = (1.0 - alpha) * picture + alpha * heat
    if mask is not None:
        blended[mask_outline(mask)] = (0.0, 1.0, 0.0)
    return np.round(blended * 255).astype(np.uint8)


def save_png(rgb: np.ndarray, path: Path) -> Path:
    """Write an (H, W, 3) uint8 array as a PNG, atomically; returns `path`."""
    from PIL import Image

    with runs.atomic_path(path) as tmp:
        Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(tmp, format="PNG")
    return path
