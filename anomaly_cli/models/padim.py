"""PaDiM: a Gaussian per position over pretrained multi-layer features, Mahalanobis distance.

After Defard et al., "PaDiM: a Patch Distribution Modeling Framework for
Anomaly Detection and Localization" (ICPR 2020): the feature maps of 2-3
backbone layers are brought to the first layer's grid and concatenated, a
seeded random subset of `model.feature_dim` channels is kept, and each grid
position gets a Gaussian (mean, covariance + 0.01 I) over the training
images. A test position's Mahalanobis distance to its Gaussian is the map
(upsampled to the image, smoothed with sigma `model.map_sigma`); the image
score is the map's maximum. Fitted in one pass (no epochs); the statistics
are non-trainable weights, so the .keras checkpoint holds them.
See docs/models/padim.md (departures, failure modes, numbers).
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.backbone import FeatureEmbeddingModel
from anomaly_cli.models.base import AnomalyModel
from anomaly_cli.models.hyperparameters import Hyperparameter, integer, optional
from anomaly_cli.scoring.reconstruction import DEFAULT_TOP_K

# The paper's regulariser: covariance + 0.01 I keeps it invertible with few images.
COVARIANCE_EPSILON = 0.01
# Above this the fit of the per-position covariances (positions x d x d) would
# not fit a workstation's memory; a smaller model.feature_dim does.
MAX_COVARIANCE_BYTES = 4 * 2**30
# Bytes per covariance entry at the fit's peak: the float64 sums of outer
# products and one batch's float64 product being added to them, and the float32
# weight (the float32 inverses replace the product once the pass is over).
FIT_BYTES_PER_ENTRY = 8 + 8 + 4
# Covariances inverted at a time (float64).
INVERSION_BLOCK_BYTES = 64 * 2**20


@keras.saving.register_keras_serializable(package="adx")
class PaDiM(FeatureEmbeddingModel):
    model_name = "padim"
    score_kinds = ("max",)
    # The paper's layer1-3 of a ResNet (strides 4, 8, 16).
    default_levels = (0, 1, 2)
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        "feature_dim": Hyperparameter(
            100, optional(integer(minimum=1), hint=", or null for every channel")
        ),
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        total = self.feature_channels
        if self.feature_dim is not None and self.feature_dim > total:
            raise AdxUserError(
                f"model.feature_dim={self.feature_dim} is more than the {total} channels of "
                f"{', '.join(self.feature_layers)}; set it to {total} or less, or null"
            )
        dim = self.feature_dim or total
        positions = self.grid[0] * self.grid[1]
        if positions * dim * dim * FIT_BYTES_PER_ENTRY > MAX_COVARIANCE_BYTES:
            needed = positions * dim * dim * FIT_BYTES_PER_ENTRY / 2**30
            raise AdxUserError(
                f"model.feature_dim={self.feature_dim} at a {self.grid[0]}x{self.grid[1]} grid "
                f"needs {needed:.1f} GiB to fit its covariances; "
                "set model.feature_dim=100 (the paper's) or lower dataset.preprocess.image_size"
            )
        self.channels = self.add_weight(
            shape=(dim,), dtype="int32", initializer="zeros", trainable=False, name="channels"
        )
        # Drawn from NumPy's generator, which adx seeds from trainer.seed; a
        # checkpoint restores the subset it was fitted with.
        chosen = (
            np.sort(np.random.choice(total, dim, replace=False))
            if self.feature_dim is not None
            else np.arange(total)
        )
        self.channels.assign(chosen.astype("int32"))
        self.mean = self.add_weight(
            shape=(positions, dim), initializer="zeros", trainable=False, name="mean"
        )
        self.inverse_covariance = self.add_weight(
            shape=(positions, dim, dim),
            initializer="zeros",
            trainable=False,
            name="inverse_covariance",
        )

    def call(self, inputs: Any, training: bool = False) -> Any:
        """The embedding map (N, grid height, grid width, feature_dim)."""
        stacked = keras.ops.concatenate(self.on_grid(self.features(inputs)), axis=-1)
        return keras.ops.take(stacked, self.channels, axis=-1)

    def fit_statistics(self, samples: tf.data.Dataset) -> AnomalyModel:
        """Mean and covariance per position in one pass, in float64. Sums are taken
        around the first batch's mean (the shifted-data algorithm), so the
        covariance does not lose its digits to large feature means."""
        count, shift, total, outer = 0, None, None, None
        for batch in samples:
            embedding = np.asarray(self(batch, training=False), dtype=np.float64)
            flat = embedding.reshape(len(embedding), -1, embedding.shape[-1])  # (N, P, d)
            if shift is None:
                shift = flat.mean(axis=0)
                total = np.zeros_like(shift)
                outer = np.zeros((*shift.shape, shift.shape[-1]))
            centred = flat - shift
            count += len(flat)
            total += centred.sum(axis=0)
            outer += np.matmul(centred.transpose(1, 2, 0), centred.transpose(1, 0, 2))
        if shift is None:
            raise AdxUserError(f"model={self.model_name} needs training images; the split is empty")
        offset = total / count
        self.mean.assign((shift + offset).astype(np.float32))
        self.inverse_covariance.assign(_inverse_covariances(outer, offset, count))
        return self

    def patch_distances(self, x: np.ndarray) -> tf.Tensor:
        embedding = tf.convert_to_tensor(self(x, training=False))
        height, width = self.grid
        diff = tf.reshape(embedding, (-1, height * width, embedding.shape[-1])) - self.mean
        weighted = tf.einsum("bpd,pde->bpe", diff, tf.convert_to_tensor(self.inverse_covariance))
        squared = tf.maximum(tf.reduce_sum(weighted * diff, axis=-1), 0.0)
        return tf.reshape(tf.sqrt(squared), (-1, height, width))

    def score_batch(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray:
        """The maximum of the smoothed map, one per image."""
        return self.map_batch(x).reshape(len(x), -1).max(axis=1)


def _inverse_covariances(outer: np.ndarray, offset: np.ndarray, count: int) -> np.ndarray:
    """The regularised inverse covariance per position (float32), from the sums of
    outer products around the shift; a block of positions at a time, so no second
    float64 array of the covariances' size is held (FIT_BYTES_PER_ENTRY)."""
    positions, dim = offset.shape
    inverse = np.empty((positions, dim, dim), dtype=np.float32)
    step = max(1, INVERSION_BLOCK_BYTES // (8 * dim * dim))
    for start in range(0, positions, step):
        block = slice(start, start + step)
        mean_outer = count * offset[block, :, None] * offset[block, None, :]
        covariance = (outer[block] - mean_outer) / max(count - 1, 1)
        covariance += COVARIANCE_EPSILON * np.eye(dim)
        inverse[block] = np.linalg.inv(covariance)
    return inverse
