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
# Windows cut and reconstructed per network call (see sliding_reconstruction).
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


def coverage(grid: list[tuple[int, int]], height: int, width: int, size: int) -> np.ndarray:
    """(H, W): how many windows of the grid cover each pixel (>= 1 everywhere)."""
    cover = np.zeros((height, width), dtype=np.float32)
    for top, left in grid:
        cover[top : top + size, left : left + size] += 1
    return cover


def _mean_of_covering(total: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Summed windows (N, H, W, ...) divided by the windows per pixel (H, W)."""
    return total / cover.reshape(*cover.shape, *([1] * (total.ndim - 3)))


def stitch(windows: np.ndarray, grid: list[tuple[int, int]], shape: tuple[int, ...]) -> np.ndarray:
    """Windows (N * len(grid), P, P, ...) back into N images of `shape` (H, W, ...):
    each pixel the mean of the windows that cover it."""
    size = windows.shape[1]
    per_image = windows.reshape(len(windows) // len(grid), len(grid), *windows.shape[1:])
    total = np.zeros((len(per_image), *shape), dtype=np.float64)
    for index, (top, left) in enumerate(grid):
        total[:, top : top + size, left : left + size] += per_image[:, index]
    return _mean_of_covering(total, coverage(grid, shape[0], shape[1], size))


def sliding_reconstruction(
    images: np.ndarray,
    size: int,
    stride: int,
    reconstruct: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Reconstruct full-size images window by window and stitch the windows (float32).

    Windows are cut, reconstructed and added up WINDOW_BATCH at a time, so memory
    holds the images, their running sum and one chunk of windows: a 1024 px image
    with 64 px windows has 961 of them, about 4x the image if all were cut at once."""
    images = np.asarray(images, dtype=np.float32)
    grid = window_grid(images.shape[1], images.shape[2], size, stride)
    places = [(index, top, left) for index in range(len(images)) for top, left in grid]
    total = np.zeros(images.shape, dtype=np.float32)
    for start in range(0, len(places), WINDOW_BATCH):
        chunk = places[start : start + WINDOW_BATCH]
        windows = np.stack(
            [images[i, top : top + size, left : left + size] for i, top, left in chunk]
        )
        rebuilt = np.asarray(reconstruct(windows), dtype=np.float32)
        for (i, top, left), window in zip(chunk, rebuilt, strict=True):
            total[i, top : top + size, left : left + size] += window
    cover = coverage(grid, images.shape[1], images.shape[2], size)
    return _mean_of_covering(total, cover)


def smooth_maps(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of each (H, W) map; sigma 0 returns the maps unchanged."""
    if not sigma:
        return maps
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(m, sigma=sigma, mode="reflect") for m in maps])


def random_crop(image: Any, size: int, seed: Any) -> Any:
    """One P x P crop of one (H, W, C) image from a stateless seed (tf.data map)."""
    import tensorflow as tf

    channels = image.shape[-1]
    return tf.image.stateless_random_crop(image, (size, size, channels), seed=seed)
