"""PatchCore: a memory bank of pretrained patch features, nearest-neighbour distance.

After Roth et al., "Towards Total Recall in Industrial Anomaly Detection"
(CVPR 2022): the feature maps of two backbone layers (the paper's layer2
and layer3) are averaged over 3x3 neighbourhoods (locally aware patch
features), brought to the first layer's grid and concatenated. The patches
of all training images are subsampled by greedy k-center coreset selection
to `model.coreset_ratio` of them (distances taken after a seeded random
projection to `model.projection_dim` dimensions, as the paper does); the
selected patches, at full dimension, are the memory bank. A test patch's
distance to its nearest neighbour in the bank is the map (upsampled,
smoothed with sigma `model.map_sigma`); the image score is the largest patch
distance, without the paper's reweighting by the neighbour's density.
Fitted in one pass (no epochs); the bank is a non-trainable weight, so the
.keras checkpoint holds it. See docs/models/patchcore.md.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.backbone import FeatureEmbeddingModel, chunk_rows
from anomaly_cli.models.base import AnomalyModel
from anomaly_cli.models.hyperparameters import Hyperparameter, integer, number, optional
from anomaly_cli.scoring.reconstruction import DEFAULT_TOP_K

log = logging.getLogger("adx")

# The training patches kept in memory for the coreset selection (float32);
# beyond it a seeded random subset of the patches is used, with a warning.
MAX_PATCH_BYTES = 4 * 2**30
# Memory of one block of test-patch x bank distances.
DISTANCE_BLOCK_BYTES = 256 * 2**20


@keras.saving.register_keras_serializable(package="adx")
class PatchCore(FeatureEmbeddingModel):
    model_name = "patchcore"
    score_kinds = ("max",)
    # The paper's layer2 and layer3 of a ResNet (strides 8 and 16).
    default_levels = (1, 2)
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        "coreset_ratio": Hyperparameter(0.1, number(0, 1, low_open=True, hint=", e.g. 0.1")),
        "projection_dim": Hyperparameter(
            128, optional(integer(minimum=1), hint=", or null to select on the full features")
        ),
    }

    def __init__(self, sample_shape: tuple[int, ...], memory_size: int = 0, **config: Any):
        """memory_size: rows of the memory bank, known once fitted (0 before: one
        placeholder row); written in the checkpoint's config, not a setting."""
        super().__init__(sample_shape, **config)
        self.memory_size = int(memory_size)
        self.memory_bank = self.add_weight(
            shape=(max(1, self.memory_size), self.feature_channels),
            initializer="zeros",
            trainable=False,
            name="memory_bank",
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "memory_size": self.memory_size}

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Locally aware patch features (N, grid height, grid width, channels)."""
        pooled = [
            keras.ops.average_pool(f, pool_size=3, strides=1, padding="same")
            for f in self.features(inputs)
        ]
        return keras.ops.concatenate(self.on_grid(pooled), axis=-1)

    def fit_statistics(self, samples: tf.data.Dataset) -> AnomalyModel:
        """Gather every training patch, select the coreset, return a model whose
        memory bank holds it (a new one: the bank's size is known only now)."""
        rng = np.random.default_rng(np.random.randint(2**31))  # seeded by trainer.seed
        bank = self._training_patches(samples, MAX_PATCH_BYTES // (4 * self.feature_channels), rng)
        size = max(1, math.ceil(self.coreset_ratio * len(bank)))
        chosen = greedy_coreset(bank, size, self.projection_dim, rng)
        fitted = type(self).from_config({**self.get_config(), "memory_size": len(chosen)})
        fitted(np.zeros((1, *self.sample_shape), dtype="float32"))
        fitted.extractor.set_weights(self.extractor.get_weights())
        fitted.memory_bank.assign(bank[chosen])
        return fitted

    def _training_patches(
        self, samples: tf.data.Dataset, limit: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Every training patch, or a uniform random `limit` of them (reservoir
        sampling, Vitter's algorithm R) when there are more: memory holds at most
        `limit` patches and one batch, however large the train split."""
        reservoir: np.ndarray | None = None
        seen = 0
        for batch in samples:
            rows = np.asarray(self(batch, training=False), dtype=np.float32).reshape(
                -1, self.feature_channels
            )
            if reservoir is None:
                # np.empty reserves address space only: pages are used as rows are written.
                reservoir = np.empty((limit, self.feature_channels), dtype=np.float32)
            room = max(0, min(len(rows), limit - seen))
            reservoir[seen : seen + room] = rows[:room]
            if room < len(rows):
                # Row number t (0-based) replaces a random slot j <= t when j < limit;
                # a later row landing on the same slot wins, as in the sequential algorithm.
                positions = np.arange(seen + room, seen + len(rows))
                slots = rng.integers(0, positions + 1)
                kept = slots < limit
                reservoir[slots[kept]] = rows[room:][kept]
            seen += len(rows)
        if reservoir is None:
            raise AdxUserError(f"model={self.model_name} needs training images; the split is empty")
        if seen > limit:
            log.warning(
                "patchcore: %d training patches exceed the memory kept for the coreset "
                "selection; a uniform random %d of them are used",
                seen,
                limit,
            )
        return reservoir[: min(seen, limit)]

    def patch_distances(self, x: np.ndarray) -> tf.Tensor:
        """Euclidean distance of each patch to its nearest neighbour in the bank,
        in blocks of patches that keep the distance matrix under DISTANCE_BLOCK_BYTES."""
        embedding = tf.convert_to_tensor(self(x, training=False))
        queries = tf.reshape(embedding, (-1, self.feature_channels))
        bank = tf.convert_to_tensor(self.memory_bank)
        bank_norms = tf.reduce_sum(bank * bank, axis=1)
        rows = chunk_rows(4 * int(bank.shape[0]), DISTANCE_BLOCK_BYTES)
        nearest = []
        for start in range(0, int(queries.shape[0]), rows):
            block = queries[start : start + rows]
            squared = (
                tf.reduce_sum(block * block, axis=1, keepdims=True)
                - 2.0 * tf.matmul(block, bank, transpose_b=True)
                + bank_norms[None, :]
            )
            nearest.append(tf.sqrt(tf.maximum(tf.reduce_min(squared, axis=1), 0.0)))
        return tf.reshape(tf.concat(nearest, axis=0), (-1, *self.grid))

    def score_batch(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray:
        """The largest patch distance of each image (the paper's score before reweighting)."""
        distances = np.asarray(self.patch_distances(x))
        return distances.reshape(len(x), -1).max(axis=1)


def greedy_coreset(
    features: np.ndarray, size: int, projection_dim: int | None, rng: np.random.Generator
) -> np.ndarray:
    """Indices of `size` rows chosen by greedy k-center selection: each next row is
    the one farthest from those chosen so far; the first is drawn from `rng`. Fewer
    when fewer rows are distinct. Distances are measured after a Gaussian random
    projection to projection_dim dimensions (Johnson-Lindenstrauss: it keeps them
    roughly, at a fraction of the cost)."""
    count = len(features)
    if size >= count:
        return np.arange(count)
    points = features
    if projection_dim is not None and projection_dim < features.shape[1]:
        projection = rng.normal(size=(features.shape[1], projection_dim)) / math.sqrt(
            projection_dim
        )
        points = features @ projection.astype(np.float32)
    # float32 and in place: a pick costs one matrix-vector product (9 ms for
    # 157 k patches of 128 values on one core), and selection needs no more digits.
    points = np.ascontiguousarray(points, dtype=np.float32)
    norms = np.einsum("ij,ij->i", points, points)
    first = int(rng.integers(count))
    chosen = [first]
    nearest = norms - 2.0 * (points @ points[first]) + norms[first]
    distances = np.empty_like(nearest)
    # Below this every point is a copy of a chosen one (flat backgrounds, few
    # distinct features): the bank stops growing rather than repeat rows.
    tolerance = 1e-6 * float(norms.max(initial=0.0))
    for _ in range(size - 1):
        index = int(np.argmax(nearest))
        if nearest[index] <= tolerance:
            break
        chosen.append(index)
        np.matmul(points, points[index], out=distances)
        distances *= -2.0
        distances += norms
        distances += norms[index]
        np.minimum(nearest, distances, out=nearest)
    return np.array(sorted(chosen))
