"""Apply a per-batch function to samples given as one array or as batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np


def iterate_batches(data: np.ndarray | Iterable[Any], batch_size: int) -> Iterator[np.ndarray]:
    """Batches of `batch_size` samples of an array, or the batches of a batched
    dataset (a tf.data.Dataset or any iterable of arrays) as they come."""
    if isinstance(data, np.ndarray):
        for start in range(0, len(data), batch_size):
            yield data[start : start + batch_size]
    else:
        for batch in data:
            yield np.asarray(batch)


def map_batches(
    data: np.ndarray | Iterable[Any],
    batch_size: int,
    fn: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """fn applied to every batch, the results concatenated along the sample axis."""
    parts = [fn(batch) for batch in iterate_batches(data, batch_size)]
    return np.concatenate(parts) if parts else np.empty((0,))
