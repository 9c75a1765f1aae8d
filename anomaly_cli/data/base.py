"""What every data source hands to the rest of adx.

A source returns `Splits`: train (normal samples only), val and test (normal
and anomaly samples), each with ids and labels (0 normal, 1 anomaly) known up
front and the samples themselves behind `Split.dataset()`, a tf.data pipeline
in id order. In-memory sources use `ArraySplit`; sources that stream from disk
subclass `Split` and build their pipeline from file paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

NORMAL, ANOMALY = 0, 1


@dataclass(frozen=True)
class Split:
    ids: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def dataset(self) -> tf.data.Dataset:
        """Unbatched float32 samples, in the order of `ids`."""
        raise NotImplementedError

    def select(self, indices: np.ndarray) -> Split:
        raise NotImplementedError

    def normal_only(self) -> Split:
        return self.select(np.flatnonzero(self.labels == NORMAL))

    def counts(self) -> dict[str, int]:
        return {
            "normal": int(np.sum(self.labels == NORMAL)),
            "anomaly": int(np.sum(self.labels == ANOMALY)),
        }


@dataclass(frozen=True)
class ArraySplit(Split):
    x: np.ndarray = field(default_factory=lambda: np.empty((0,), np.float32))

    def dataset(self) -> tf.data.Dataset:
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(self.x.astype(np.float32, copy=False))

    def select(self, indices: np.ndarray) -> ArraySplit:
        return ArraySplit(ids=self.ids[indices], labels=self.labels[indices], x=self.x[indices])


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split
    # Shape of one sample, e.g. (8, 8, 1) for an image or (17,) for a table row.
    input_shape: tuple[int, ...]
    # What the source wants recorded about itself (name, classes, sizes).
    info: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: getattr(self, name).counts() for name in ("train", "val", "test")}
