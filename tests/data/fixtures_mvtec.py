"""A tiny fake MVTec AD category on disk, for tests and the README's commands.

Good images are a smooth colour gradient that varies a little from image to
image; defect images are good images with a bright square patch, and their
ground-truth mask is exactly that patch. Patches start on even pixels and have
even sides, so they stay exact when a test halves the image size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Side of each defect's square patch, in pixels.
DEFECT_PATCHES = {"crack": 6, "hole": 8}


def make_mvtec_fixture(
    root: Path,
    category: str = "hazelnut",
    n_train: int = 40,
    n_test_good: int = 8,
    n_per_defect: int = 6,
    size: int = 32,
    seed: int = 0,
) -> dict[str, tuple[int, int, int]]:
    """Write `root/category/{train/good, test/*, ground_truth/*}`.

    Returns each defect image's patch as (top, left, side), keyed by its path
    relative to `root`, e.g. "hazelnut/test/crack/003.png".
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = Path(root) / category
    patches: dict[str, tuple[int, int, int]] = {}

    def save(pixels: np.ndarray, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(path)

    for i in range(n_train):
        save(_background(rng, size), base / "train" / "good" / f"{i:03d}.png")
    for i in range(n_test_good):
        save(_background(rng, size), base / "test" / "good" / f"{i:03d}.png")
    for defect, side in DEFECT_PATCHES.items():
        for i in range(n_per_defect):
            top, left = (2 * rng.integers(0, (size - side) // 2 + 1, 2)).tolist()
            image = _background(rng, size)
            image[top : top + side, left : left + side] = 1.0
            mask = np.zeros((size, size), np.float32)
            mask[top : top + side, left : left + side] = 1.0
            save(image, base / "test" / defect / f"{i:03d}.png")
            save(mask, base / "ground_truth" / defect / f"{i:03d}_mask.png")
            patches[f"{category}/test/{defect}/{i:03d}.png"] = (top, left, side)
    return patches


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth, dark RGB gradient in [0.15, 0.55]: easy to reconstruct, far from a patch."""
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    angle = rng.uniform(0, np.pi / 4)
    field = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
    field = field / field.max()
    tint = rng.uniform(0.8, 1.0, 3).astype(np.float32)
    return (0.15 + 0.4 * field[..., None] * tint).astype(np.float32)
