"""Full-size images through a network built for small windows.

Squeezing a 700-1024 px product photo to 128 px erases a 10 px scratch. With
`model.window_size=P` an image model's network is built for P x P windows
instead: training sees one random P x P crop of each image per epoch (the
data pipeline cuts it from stateless seeds, so a resumed run sees the same
crops), and scoring slides a P x P window over the whole image with
`model.window_stride` (null: P / 2), reconstructs every window, and stitches
them back into one full-size reconstruction, each pixel the mean of the
windows that cover it. Error maps and scores are then taken from the
stitched reconstruction as for a whole image; maps are smoothed with a
Gaussian of `model.map_sigma` pixels (null: 4 with windows, none without),
and `top_k_mean` reduces the smoothed map, so one noisy pixel does not
decide an image's score. (dataset.patch_size is another thing: the size of
the synthetic dataset's planted anomaly.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.hyperparameters import Hyperparameter, integer, number, optional

# Smoothing of stitched maps when windows are on and model.map_sigma is null
# (PaDiM and PatchCore smooth their maps with sigma 4 too).
DEFAULT_WINDOW_SIGMA = 4.0
# Windows reconstructed per network call: bounded, so a 1024 px image with
# small windows does not put thousands of windows in memory at once.
WINDOW_BATCH = 256

WINDOW_SETTINGS: dict[str, Hyperparameter] = {
    "window_size": Hyperparameter(
        None, optional(integer(minimum=8), " (null: the whole image is one sample)")
    ),
    "window_stride": Hyperparameter(
        None, optional(integer(minimum=1), " (null: half of model.window_size)")
    ),
    "map_sigma": Hyperparameter(
        None,
        optional(number(0), " (null: 4 with model.window_size set, no smoothing without)"),
    ),
}


def check_windows(
    model_name: str, image_shape: tuple[int, ...], size: int | None, stride: int | None
) -> None:
    """A window that fits the image and a stride that leaves no pixel unscored."""
    if size is None:
        if stride is not None:
            raise AdxUserError(
                f"model.window_stride={stride} needs model.window_size (e.g. model.window_size=64)"
            )
        return
    height, width = image_shape[:2]
    if size > min(height, width):
        raise AdxUserError(
            f"model.window_size={size} is larger than the {height}x{width} images of "
            f"model={model_name}; choose a window of at most {min(height, width)} px or raise "
            "dataset.preprocess.image_size"
        )
    if stride is not None and stride > size:
        raise AdxUserError(
            f"model.window_stride={stride} is larger than model.window_size={size}, which "
            f"leaves pixels outside every window; choose a stride of at most {size}"
        )


def window_starts(length: int, size: int, stride: int) -> list[int]:
    """Top (or left) edges of windows covering 0..length-1; the last one ends at the edge."""
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def window_grid(height: int, width: int, size: int, stride: int) -> list[tuple[int, int]]:
    return [
        (top, left)
        for top in window_starts(height, size, stride)
        for left in window_starts(width, size, stride)
    ]


def cut_windows(images: np.ndarray, grid: list[tuple[int, int]], size: int) -> np.ndarray:
    """(N * len(grid), P, P, C): every window of every image, image by image."""
    return np.stack(
        [image[top : top + size, left : left + size] for image in images for top, left in grid]
    )


def stitch(windows: np.ndarray, grid: list[tuple[int, int]], shape: tuple[int, ...]) -> np.ndarray:
    """Windows (N * len(grid), P, P, ...) back into N images of `shape` (H, W, ...):
    each pixel the mean of the windows that cover it."""
    size = windows.shape[1]
    count = len(windows) // len(grid)
    total = np.zeros((count, *shape), dtype=np.float64)
    cover = np.zeros(shape[:2], dtype=np.float64)
    for top, left in grid:
        cover[top : top + size, left : left + size] += 1
    per_image = windows.reshape(count, len(grid), *windows.shape[1:])
    for index, (top, left) in enumerate(grid):
        total[:, top : top + size, left : left + size] += per_image[:, index]
    return total / cover.reshape(*shape[:2], *([1] * (len(shape) - 2)))


def sliding_reconstruction(
    images: np.ndarray,
    size: int,
    stride: int,
    reconstruct: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Reconstruct full-size images window by window and stitch the windows (float32)."""
    grid = window_grid(images.shape[1], images.shape[2], size, stride)
    windows = cut_windows(np.asarray(images, dtype=np.float32), grid, size)
    rebuilt = np.concatenate(
        [
            reconstruct(windows[start : start + WINDOW_BATCH])
            for start in range(0, len(windows), WINDOW_BATCH)
        ]
    )
    return stitch(rebuilt, grid, images.shape[1:]).astype(np.float32)


def smooth_maps(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of each (H, W) map; sigma 0 returns the maps unchanged."""
    if not sigma:
        return maps
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(m, sigma=sigma, mode="reflect") for m in maps])


def top_fraction_mean(maps: np.ndarray, fraction: float) -> np.ndarray:
    """Mean of the largest `fraction` of each map's pixels, one value per map."""
    flat = maps.reshape(len(maps), -1)
    count = max(1, int(np.ceil(fraction * flat.shape[1])))
    return np.partition(flat, flat.shape[1] - count, axis=1)[:, -count:].mean(axis=1)


def random_crop(image: Any, size: int, seed: Any) -> Any:
    """One P x P crop of one (H, W, C) image from a stateless seed (tf.data map)."""
    import tensorflow as tf

    channels = image.shape[-1]
    return tf.image.stateless_random_crop(image, (size, size, channels), seed=seed)
