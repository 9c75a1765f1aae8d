"""A small generated stand-in for a MedMNIST .npz file (no download).

Label 0 ("blob"): one soft Gaussian blob per 28x28 uint8 image, the normal class.
Label 1 ("patch"): a blob with a bright square patch, the anomaly to detect.
Label 2 ("bar"): a blob with a bright horizontal bar, a few per split, to test
`anomaly_classes`. Every split (train, val, test) holds all three labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Images per split and label: {split: (blob, patch, bar)}.
COUNTS = {"train": (160, 20, 6), "val": (40, 12, 4), "test": (60, 30, 4)}
SIZE = 28


def make_images(labels: np.ndarray, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    n = len(labels)
    grid = np.arange(size, dtype=np.float32)
    cy, cx = rng.uniform(size * 0.3, size * 0.7, (2, n, 1, 1))
    sigma = rng.uniform(size * 0.12, size * 0.2, (n, 1, 1))
    peak = rng.uniform(0.4, 0.7, (n, 1, 1))
    dist = (grid[None, :, None] - cy) ** 2 + (grid[None, None, :] - cx) ** 2
    images = peak * np.exp(-dist / (2 * sigma**2))
    for i in np.flatnonzero(labels == 1):
        top, left = rng.integers(0, size - 6, 2)
        images[i, top : top + 6, left : left + 6] = 1.0
    for i in np.flatnonzero(labels == 2):
        row = rng.integers(2, size - 4)
        images[i, row : row + 2, :] = 1.0
    return np.round(images * 255).astype(np.uint8)


def make_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """The six MedMNIST arrays; labels are (N, 1) like MedMNIST's."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, counts in COUNTS.items():
        labels = rng.permutation(np.repeat(np.arange(3), counts))
        arrays[f"{split}_images"] = make_images(labels, rng)
        arrays[f"{split}_labels"] = labels.astype(np.uint8)[:, None]
    return arrays


def make_npz_fixture(root: Path, name: str = "pneumoniamnist.npz", seed: int = 0) -> Path:
    """Write the generated file as root/name (the README's `pneumoniamnist.npz`)."""
    path = Path(root) / name
    np.savez_compressed(path, **make_arrays(seed))
    return path
