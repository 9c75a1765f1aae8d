"""Folders of small PNGs for `dataset=folder`: blobs, blobs with a bright patch, masks.

`make_folder_fixture(root)` writes

    root/images/normal/normal_000.png ...      smooth blobs
    root/images/abnormal/abnormal_000.png ...  blobs with a bright square patch
    root/masks/abnormal_000_mask.png ...       the patch, 255 on 0

so `root/images` also serves as a `dataset.root` with classes normal and abnormal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class FolderFixture:
    images: Path
    normal: Path
    abnormal: Path
    masks: Path


def blob_image(
    height: int, width: int, rng: np.random.Generator, patch: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (h, w): one soft blob, plus a bright square of side `patch` if > 0; and its mask."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = rng.uniform(0.25, 0.75, 2) * (height, width)
    sigma = rng.uniform(0.1, 0.2) * min(height, width)
    peak = rng.uniform(0.5, 0.9)
    image = peak * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))
    mask = np.zeros((height, width), np.uint8)
    if patch:
        top = rng.integers(0, height - patch + 1)
        left = rng.integers(0, width - patch + 1)
        image[top : top + patch, left : left + patch] = 1.0
        mask[top : top + patch, left : left + patch] = 255
    return (image * 255).round().astype(np.uint8), mask


def save_png(pixels: np.ndarray, path: Path, mode: str = "L") -> Path:
    """Write grayscale `pixels` as a PNG in PIL `mode` (L, RGB, RGBA, ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def make_folder_fixture(
    root: Path,
    n_normal: int = 60,
    n_abnormal: int = 20,
    size: int = 32,
    mode: str = "L",
    seed: int = 0,
) -> FolderFixture:
    """Normal blobs, abnormal blobs with a patch of side size // 4, and the patch masks."""
    rng = np.random.default_rng(seed)
    fixture = FolderFixture(
        images=root / "images",
        normal=root / "images" / "normal",
        abnormal=root / "images" / "abnormal",
        masks=root / "masks",
    )
    for i in range(n_normal):
        save_png(blob_image(size, size, rng)[0], fixture.normal / f"normal_{i:03d}.png", mode)
    for i in range(n_abnormal):
        image, mask = blob_image(size, size, rng, patch=max(2, size // 4))
        save_png(image, fixture.abnormal / f"abnormal_{i:03d}.png", mode)
        save_png(mask, fixture.masks / f"abnormal_{i:03d}_mask.png")
    return fixture


def write_corrupt(path: Path) -> Path:
    """Bytes that no image reader accepts, under an image suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an image\n" * 8)
    return path


def write_truncated(path: Path, size: int = 32) -> Path:
    """A PNG cut off halfway through its pixel data: the header reads, the decode fails."""
    rng = np.random.default_rng(1)
    save_png(rng.integers(0, 256, (size, size), dtype=np.uint8), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path
