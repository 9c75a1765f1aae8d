"""DRAEM: a reconstruction network and a segmentation network trained on synthetic defects.

After Zavrtanik, Kristan and Skocaj, "DRAEM - A discriminatively trained
reconstruction embedding for surface anomaly detection" (ICCV 2021). Each
training batch gets synthetic anomalies on the fly (data/synthetic_anomalies.py:
Perlin-noise masks filled with foreign texture). The reconstructive
sub-network learns to return the clean image from the damaged one (L2 + SSIM
loss); the discriminative sub-network, a small U-Net, sees the damaged image
and its reconstruction side by side and learns to segment the pasted region
(focal loss, gamma 2). Scoring uses the discriminator's per-pixel anomaly
probability: the map itself, and as image score the maximum of the map after
a mean filter (the paper's 21x21 at 256 px, scaled), or the mean of its top
pixels. Unlike reconstruction error, this does not rank a smooth, easily
rebuilt patch as normal: the discriminator has learnt that *any* region that
does not belong is a defect. See docs/models/draem.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from anomaly_cli.data.synthetic_anomalies import read_source_images, synthesize_anomalies
from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import AnomalyModel, batch_inputs, input_gradient
from anomaly_cli.models.blocks import BATCH_NORM_MOMENTUM, check_divisible
from anomaly_cli.models.hyperparameters import (
    Hyperparameter,
    integer,
    number,
    optional,
)
from anomaly_cli.scoring.reconstruction import DEFAULT_TOP_K, check_top_k, top_fraction_mean

# The image scores: max of the mean-filtered map (the paper's), or top-k mean.
MAX_SCORE = "max"
SCORES = (MAX_SCORE, "top_k_mean")
# The paper's mean filter: 21 px at 256 px images.
PAPER_WINDOW_FRACTION = 21 / 256
# SSIM's Gaussian window (tf.image.ssim's default), shrunk for smaller images.
SSIM_FILTER = 11
FOCAL_GAMMA = 2.0
# The seed of the validation batches' synthetic anomalies: the same defects every
# epoch, so validation losses are comparable.
_VALIDATION_SEED = (20_211_010, 7)


def _anomaly_source(key: str, value: Any) -> str | None:
    # The folder itself is checked before the data is read (checks.check_anomaly_source).
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise AdxUserError(f"model.{key}={value} must be a folder of images, or null")
    return value


@keras.saving.register_keras_serializable(package="adx")
class Draem(AnomalyModel):
    model_name = "draem"
    accepts = "image"
    score_kinds = SCORES
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        # Down (and up) stages of both sub-networks.
        "num_hidden_layers": Hyperparameter(3, integer(minimum=1)),
        # Width of the reconstructive network's first stage, doubled per stage.
        "filters": Hyperparameter(16, integer(minimum=1)),
        # Width of the discriminative U-Net's first stage, doubled per stage.
        "discriminator_filters": Hyperparameter(16, integer(minimum=1)),
        "anomaly_source": Hyperparameter(None, _anomaly_source),
        "anomaly_fraction": Hyperparameter(0.5, number(0, 1, low_open=True, hint=", e.g. 0.5")),
        "score_window": Hyperparameter(
            None,
            optional(integer(minimum=1), hint=", or null for 21/256 of the image side"),
        ),
        "score": Hyperparameter(MAX_SCORE, attribute="score_name"),
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        height, width, channels = self.sample_shape
        depth = self.num_hidden_layers
        check_divisible(self.model_name, height, width, 2**depth, f"num_hidden_layers={depth}")
        self.reconstructive = self._reconstructive_network(channels)
        self.discriminative = self._discriminative_network()
        # The synthetic-anomaly stream: a base seed drawn once (from trainer.seed's
        # seeding of NumPy) and a step counter; both are weights, so a checkpoint
        # holds them and a resumed run continues the stream where it stopped.
        base = int(np.random.randint(0, 2**31 - 1))
        self.synthesis_seed = self.add_weight(
            shape=(),
            dtype="int64",
            initializer=keras.initializers.Constant(base),
            trainable=False,
            name="synthesis_seed",
        )
        self.synthesis_step = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="synthesis_step"
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.segmentation_tracker = keras.metrics.Mean(name="segmentation_loss")
        self._source_bank: np.ndarray | None = None

    # Networks.
    def _conv_block(self, x: Any, filters: int, name: str) -> Any:
        for i in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
            x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn{i}")(x)
            x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
        return x

    def _reconstructive_network(self, channels: int) -> keras.Model:
        """Encoder-decoder without skips (a skip would copy the defect through);
        linear output, as the paper's."""
        inputs = keras.Input(self.sample_shape)
        x = inputs
        for level in range(self.num_hidden_layers):
            x = self._conv_block(x, self.filters * 2**level, f"rec_down{level + 1}")
            x = layers.MaxPooling2D(2, name=f"rec_down{level + 1}_pool")(x)
        x = self._conv_block(x, self.filters * 2**self.num_hidden_layers, "rec_bottleneck")
        for level in reversed(range(self.num_hidden_layers)):
            x = layers.UpSampling2D(2, interpolation="bilinear", name=f"rec_up{level + 1}_up")(x)
            x = self._conv_block(x, self.filters * 2**level, f"rec_up{level + 1}")
        outputs = layers.Conv2D(channels, 3, padding="same", name="rec_output")(x)
        return keras.Model(inputs, outputs, name="reconstructive")

    def _discriminative_network(self) -> keras.Model:
        """U-Net on [image, reconstruction]; one logit per pixel (anomalous or not)."""
        height, width, channels = self.sample_shape
        inputs = keras.Input((height, width, 2 * channels))
        x, skips = inputs, []
        for level in range(self.num_hidden_layers):
            x = self._conv_block(x, self.discriminator_filters * 2**level, f"seg_down{level + 1}")
            skips.append(x)
            x = layers.MaxPooling2D(2, name=f"seg_down{level + 1}_pool")(x)
        x = self._conv_block(
            x, self.discriminator_filters * 2**self.num_hidden_layers, "seg_bottleneck"
        )
        for level in reversed(range(self.num_hidden_layers)):
            x = layers.UpSampling2D(2, interpolation="bilinear", name=f"seg_up{level + 1}_up")(x)
            x = layers.Concatenate(name=f"seg_up{level + 1}_concat")([x, skips[level]])
            x = self._conv_block(x, self.discriminator_filters * 2**level, f"seg_up{level + 1}")
        logits = layers.Conv2D(1, 1, dtype="float32", name="seg_logits")(x)
        return keras.Model(inputs, logits, name="discriminative")

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Per-pixel anomaly logits (N, H, W, 1) of the images."""
        reconstruction = self.reconstructive(inputs, training=training)
        joined = tf.concat([tf.cast(inputs, reconstruction.dtype), reconstruction], axis=-1)
        return self.discriminative(joined, training=training)

    # Training.
    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker, self.reconstruction_tracker, self.segmentation_tracker]

    def source_bank(self) -> np.ndarray | None:
        """The anomaly-source folder's images at the sample shape, read once when
        training first needs them (scoring a checkpoint never does)."""
        if self.anomaly_source is None:
            return None
        if self._source_bank is None:
            from anomaly_cli.checks import check_anomaly_source

            paths = check_anomaly_source(self.anomaly_source)
            self._source_bank = read_source_images(paths, self.sample_shape)
        return self._source_bank

    def _objective(self, clean: Any, seed: Any, training: bool) -> tuple[Any, Any]:
        damaged, masks = synthesize_anomalies(
            clean, seed, self.source_bank(), self.anomaly_fraction
        )
        reconstruction = tf.cast(self.reconstructive(damaged, training=training), tf.float32)
        reconstruction_loss = tf.reduce_mean(tf.square(reconstruction - clean)) + tf.reduce_mean(
            1.0 - self._ssim(clean, reconstruction)
        )
        joined = tf.concat([damaged, reconstruction], axis=-1)
        logits = tf.cast(self.discriminative(joined, training=training), tf.float32)[..., 0]
        return reconstruction_loss, focal_loss(masks, logits)

    def _ssim(self, a: Any, b: Any) -> Any:
        # Images in [0, 1] (adx's preprocessing), so max_val 1.
        size = min(SSIM_FILTER, *self.sample_shape[:2])
        return tf.image.ssim(a, b, max_val=1.0, filter_size=size)

    def _record(self, reconstruction_loss: Any, segmentation_loss: Any) -> dict[str, Any]:
        self.loss_tracker.update_state(reconstruction_loss + segmentation_loss)
        self.reconstruction_tracker.update_state(reconstruction_loss)
        self.segmentation_tracker.update_state(segmentation_loss)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data: Any) -> dict[str, Any]:
        clean = tf.cast(batch_inputs(data), tf.float32)
        seed = tf.stack([self.synthesis_seed.value, self.synthesis_step.value])
        self.synthesis_step.assign_add(1)
        with tf.GradientTape() as tape:
            reconstruction_loss, segmentation_loss = self._objective(clean, seed, training=True)
            loss = reconstruction_loss + segmentation_loss
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return self._record(reconstruction_loss, segmentation_loss)

    def test_step(self, data: Any) -> dict[str, Any]:
        """The same losses on the validation normals, with synthetic anomalies from
        a fixed seed: the same defects every epoch."""
        clean = tf.cast(batch_inputs(data), tf.float32)
        seed = tf.constant(_VALIDATION_SEED, tf.int64)
        return self._record(*self._objective(clean, seed, training=False))

    # Scoring.
    @property
    def produces_maps(self) -> bool:
        return True

    @property
    def window(self) -> int:
        """Side of the mean filter before the map's maximum (odd, >= 1)."""
        if self.score_window is not None:
            return int(self.score_window)
        side = round(PAPER_WINDOW_FRACTION * min(self.sample_shape[:2]))
        return max(1, side - 1 + side % 2)  # the odd size at or below it

    def map_batch(self, x: np.ndarray) -> np.ndarray:
        """The discriminator's anomaly probability per pixel, (N, H, W)."""
        logits = self(tf.convert_to_tensor(x, tf.float32), training=False)
        return np.asarray(tf.sigmoid(tf.cast(logits, tf.float32))[..., 0], dtype=np.float32)

    def score_batch(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray:
        maps = self.map_batch(x)
        if self.score_name == "top_k_mean":
            return top_fraction_mean(maps, check_top_k(top_k))
        return mean_filtered_max(maps, self.window)

    def score_gradient(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray | None:
        """|d score / d x| through both sub-networks (saliency plots)."""
        count = max(1, int(np.ceil(check_top_k(top_k) * np.prod(self.sample_shape[:2]))))

        def scores(inputs: Any) -> Any:
            maps = tf.sigmoid(tf.cast(self(inputs, training=False), tf.float32))
            if self.score_name == "top_k_mean":
                flat = tf.reshape(maps, (tf.shape(maps)[0], -1))
                return tf.reduce_mean(tf.math.top_k(flat, k=count).values, axis=1)
            pooled = tf.nn.avg_pool2d(maps, self.window, strides=1, padding="SAME")
            return tf.reduce_max(pooled, axis=[1, 2, 3])

        return input_gradient(x, scores)


def focal_loss(masks: Any, logits: Any, gamma: float = FOCAL_GAMMA) -> Any:
    """Binary focal loss (Lin et al. 2017) per pixel, averaged: cross-entropy
    weighted by (1 - p_t)^gamma, so the many easy normal pixels count little."""
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=masks, logits=logits)
    p_true = tf.exp(-cross_entropy)
    return tf.reduce_mean(tf.pow(1.0 - p_true, gamma) * cross_entropy)


def mean_filtered_max(maps: np.ndarray, window: int) -> np.ndarray:
    """Per map, the maximum of its window x window mean (edges averaged over
    the pixels inside the image)."""
    if window <= 1:
        return maps.reshape(len(maps), -1).max(axis=1).astype(np.float64)
    pooled = tf.nn.avg_pool2d(
        tf.convert_to_tensor(maps[..., None], tf.float32), window, strides=1, padding="SAME"
    )
    return np.asarray(tf.reduce_max(pooled, axis=[1, 2, 3]), dtype=np.float64)
