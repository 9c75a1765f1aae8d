"""What every data source hands to the rest of adx.

A source returns `Splits`: train, val and test, each with ids, labels
(0 normal, 1 anomaly) and source classes known up front and the samples
themselves behind `Split.dataset()`, a tf.data pipeline in id order.
In-memory sources use `ArraySplit`; sources that stream from disk subclass
`Split` (see `images.FileSplit`) and build their pipeline from file paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import tensorflow as tf

NORMAL, ANOMALY = 0, 1
# Protocols (configs/protocol/): which samples train sees and which are scored.
CLEAN, TRANSDUCTIVE, UNSUPERVISED = "clean", "transductive", "unsupervised"


@dataclass(frozen=True)
class Split:
    ids: np.ndarray
    labels: np.ndarray
    # The source's class of each sample (as text), for data.json's per-class counts.
    classes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def dataset(self) -> tf.data.Dataset:
        """Unbatched float32 samples, in the order of `ids`."""
        raise NotImplementedError

    def mask_dataset(self) -> tf.data.Dataset | None:
        """Unbatched per-pixel ground truth (h, w) in {0, 1} in id order, if the source has it."""
        return None

    def select(self, indices: np.ndarray) -> Split:
        """The samples at `indices`; subclasses add their own per-sample fields."""
        return replace(self, **self._subset(indices))

    def _subset(self, indices: np.ndarray) -> dict[str, Any]:
        fields = {"ids": self.ids[indices], "labels": self.labels[indices]}
        if self.classes is not None:
            fields["classes"] = self.classes[indices]
        return fields

    def normal_only(self) -> Split:
        return self.select(np.flatnonzero(self.labels == NORMAL))

    def counts(self) -> dict[str, int]:
        return {
            "normal": int(np.sum(self.labels == NORMAL)),
            "anomaly": int(np.sum(self.labels == ANOMALY)),
        }

    def class_counts(self) -> dict[str, int]:
        if self.classes is None:
            return {}
        names, counts = np.unique(self.classes.astype(str), return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts, strict=True)}


@dataclass(frozen=True)
class ArraySplit(Split):
    x: np.ndarray = field(default_factory=lambda: np.empty((0,), np.float32))

    def dataset(self) -> tf.data.Dataset:
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(self.x.astype(np.float32, copy=False))

    def _subset(self, indices: np.ndarray) -> dict[str, Any]:
        return {**super()._subset(indices), "x": self.x[indices]}


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split
    # Shape of one sample, e.g. (8, 8, 1) for an image or (17,) for a table row.
    input_shape: tuple[int, ...]
    # What the source wants recorded about itself in data.json (name, classes,
    # preprocessing, skipped files).
    info: dict[str, Any] = field(default_factory=dict)
    protocol: str = CLEAN
    # State fitted on train (scaler, PCA, z-score) as its `to_dict()` (see
    # data/transforms.py); saved with the run so evaluate applies the same
    # transform to new data.
    transform: dict[str, Any] | None = None
    # Training-only augmentation of one unbatched sample: (x, seed[2]) -> x.
    augment: Callable[[Any, Any], Any] | None = None
    # Extra per-sample reports from test scores, e.g. per-point scores of a
    # time series: file name in the run dir -> table.
    reports: Callable[[np.ndarray], dict[str, pd.DataFrame]] | None = None

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: getattr(self, name).counts() for name in ("train", "val", "test")}

    def class_counts(self) -> dict[str, dict[str, int]]:
        return {name: getattr(self, name).class_counts() for name in ("train", "val", "test")}

    @property
    def labels_guide_training(self) -> bool:
        """Whether early stopping may use val labels (not when training is unsupervised)."""
        return self.protocol != UNSUPERVISED


@dataclass(frozen=True)
class LoadContext:
    """What a source needs besides its own config."""

    # dataset.seed: every random choice about the data (split, draws, generation).
    seed: int
    protocol: str = CLEAN
    # Unsupervised protocol: share of anomalies in the (unlabelled) training set.
    contamination: float = 0.1
    # A finished run's fitted transform (Splits.transform), reapplied by evaluate.
    transform: dict[str, Any] | None = None
