"""Deep SVDD: map normal samples into a small hypersphere, score by the distance to its centre.

From seed 001, sec. 2.3 (Eqs. 4 and 5), after Ruff et al., "Deep One-Class
Classification" (ICML 2018): a bias-free encoder pulled towards a fixed centre
c, with the one-class or soft-boundary objective (R set by the (1 - nu)
quantile); scored by the squared distance to c.
See docs/models/deep_svdd.md (the seed's slips, failure modes, numbers).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import LATENT_DISTANCE, AnomalyModel, batch_inputs, input_gradient
from anomaly_cli.models.blocks import check_divisible, conv_decoder, conv_encoder, dense_stack
from anomaly_cli.models.hyperparameters import (
    Hyperparameter,
    choice,
    flag,
    integer,
    number,
    optional,
    widths,
)
from anomaly_cli.models.svdd import (
    OBJECTIVES,
    encode_all,
    initial_centre,
    radius_quantile,
    squared_distances,
    svdd_loss,
)
from anomaly_cli.scoring.reconstruction import DEFAULT_TOP_K

ACTIVATION = "leaky_relu"
# units: null picks these by the kind of sample: none after the conv stack of
# images (Ruff's LeNet-style networks), two hidden layers for rows and windows.
_DEFAULT_UNITS = {"image": [], "flat": [64, 32]}
# Batches that settle BatchNorm's moving statistics before c is placed: 0.9 ** 30 < 5 %.
_SETTLING_BATCHES = 30
# tf.data shuffle buffer for pretraining, the cap the training pipeline uses too.
_SHUFFLE_BUFFER = 10_000
_PRETRAIN_SHUFFLE_SEED = 0


@keras.saving.register_keras_serializable(package="adx")
class DeepSVDD(AnomalyModel):
    model_name = "deep_svdd"
    accepts = "any"
    # The squared distance of the latent to c (minus R^2 for the soft boundary).
    score_kinds = (LATENT_DISTANCE,)
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        "objective": Hyperparameter("one_class", choice(OBJECTIVES)),
        "nu": Hyperparameter(0.1, number(0, 1, low_open=True, hint=", e.g. 0.1")),
        "eps": Hyperparameter(0.1, number(0, low_open=True, hint=", e.g. 0.1")),
        "warmup_epochs": Hyperparameter(5, integer(minimum=0)),
        "latent_dim": Hyperparameter(32, integer(minimum=1, hint=", e.g. 32")),
        "filters": Hyperparameter([32, 64], widths()),
        "units": Hyperparameter(
            None,
            optional(widths(non_empty=False), hint=", or null for the default of the samples"),
        ),
        "batch_norm": Hyperparameter(True, flag),
        "pretrain_epochs": Hyperparameter(0, integer(minimum=0)),
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        if self.units is None:
            self.units = list(_DEFAULT_UNITS["image" if self.is_image else "flat"])
        if self.is_image:
            height, width, _ = self.sample_shape
            if self.pretrain_epochs:
                # Only the mirrored decoder needs sides that double back exactly.
                check_divisible(
                    self.model_name,
                    height,
                    width,
                    2 ** len(self.filters),
                    f"{len(self.filters)} conv layers and pretrain_epochs > 0",
                )
            self.encoder = conv_encoder(
                self.sample_shape,
                self.filters,
                self.latent_dim,
                units=self.units,
                activation=ACTIVATION,
                batch_norm=self.batch_norm,
                use_bias=False,
            )
        else:
            self.encoder = keras.Sequential(
                [
                    keras.Input(self.sample_shape),
                    layers.Flatten(),
                    *dense_stack(self.units, ACTIVATION, self.batch_norm, use_bias=False),
                    layers.Dense(self.latent_dim, use_bias=False, name="latent"),
                ],
                name="encoder",
            )
        self.centre = self.add_weight(
            shape=(self.latent_dim,), initializer="zeros", trainable=False, name="centre"
        )
        self.radius = self.add_weight(shape=(), initializer="zeros", trainable=False, name="radius")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) == 3

    def call(self, inputs: Any, training: bool = False) -> Any:
        """The latent representation phi(x)."""
        return self.encoder(inputs, training=training)

    # Training.
    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker]

    def _objective(self, x: Any, training: bool) -> Any:
        distances = squared_distances(self.encoder(x, training=training), self.centre)
        return svdd_loss(distances, self.radius, self.nu, self.objective)

    def train_step(self, data: Any) -> dict[str, Any]:
        x = batch_inputs(data)
        with tf.GradientTape() as tape:
            loss = self._objective(x, training=True)
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data: Any) -> dict[str, Any]:
        x = batch_inputs(data)
        self.loss_tracker.update_state(self._objective(x, training=False))
        return {"loss": self.loss_tracker.result()}

    def prepare_training(self, samples: tf.data.Dataset) -> None:
        """[Pretrain as an autoencoder,] then fix c from a pass over the train split."""
        if self.pretrain_epochs:
            self._pretrain(samples)
        self._settle_batch_norm(samples)
        latents = encode_all(self.encoder, samples)
        if not len(latents):
            raise AdxUserError("model=deep_svdd needs training samples to place its centre")
        self.centre.assign(initial_centre(latents, self.eps))
        self.radius.assign(0.0)
        if self.objective == "soft_boundary" and self.warmup_epochs == 0:
            self._set_radius(latents)

    def _settle_batch_norm(self, samples: tf.data.Dataset) -> None:
        """Bring BatchNorm's moving statistics to the train split's before c is placed.

        c comes from an inference pass, training from batch statistics. Left at
        their initial values (mean 0, variance 1), the moving statistics would put c
        where the training-mode latents are not: on 107 digits the first epoch's
        training loss was 250 times the validation loss, and early stopping kept
        epoch 1. Forward passes in training mode (no gradient) fix that; enough of
        them that the initial values keep under 5 % of the weight.
        """
        if not self.batch_norm:
            return
        per_pass = int(samples.cardinality())
        if per_pass < 0:
            per_pass = sum(1 for _ in samples)
        for _ in range(math.ceil(_SETTLING_BATCHES / max(1, per_pass))):
            for batch in samples:
                self.encoder(batch, training=True)

    def training_callbacks(self, samples: tf.data.Dataset) -> list[keras.callbacks.Callback]:
        if self.objective != "soft_boundary":
            return []
        return [_RadiusUpdate(self, samples)]

    @property
    def first_checkpoint_epoch(self) -> int:
        """Soft boundary: the first epoch whose validation loss uses a radius (set at
        the end of the warm-up's last epoch); the warm-up's R = 0 losses are
        1/nu * mean(d^2), not comparable with R^2 + 1/nu * mean(excess)."""
        return self.warmup_epochs + 1 if self.objective == "soft_boundary" else 1

    def update_radius(self, samples: tf.data.Dataset) -> None:
        """R = the (1-nu) quantile of the train split's distances to c."""
        self._set_radius(encode_all(self.encoder, samples))

    def _set_radius(self, latents: np.ndarray) -> None:
        centre = np.asarray(self.centre, dtype=np.float64)
        distances = squared_distances(np.asarray(latents, dtype=np.float64), centre)
        self.radius.assign(radius_quantile(np.asarray(distances), self.nu))

    def _pretrain(self, samples: tf.data.Dataset) -> None:
        """Train the encoder to reconstruct through a throw-away mirrored decoder.

        Neither the decoder nor the autoencoder around it is an attribute of self, so
        neither is tracked or saved. It gets a fresh optimizer of the configured kind,
        so the main optimizer's state starts clean.
        """
        autoencoder = keras.Sequential(
            [keras.Input(self.sample_shape), self.encoder, self._pretraining_decoder()],
            name="pretraining_autoencoder",
        )
        if getattr(self, "optimizer", None) is not None:
            optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(self.optimizer))
        else:
            optimizer = keras.optimizers.Adam()
        autoencoder.compile(optimizer=optimizer, loss="mse", jit_compile=False)
        batch_size = next(iter(samples)).shape[0]
        shuffled = (
            samples.unbatch()
            .shuffle(_SHUFFLE_BUFFER, seed=_PRETRAIN_SHUFFLE_SEED, reshuffle_each_iteration=True)
            .batch(batch_size)
            .map(lambda x: (x, x))
        )
        # Re-batching keeps the number of batches; saying so spares Keras an
        # "input ran out of data" warning at the end of the first epoch.
        steps = int(samples.cardinality())
        if steps > 0:
            shuffled = shuffled.apply(tf.data.experimental.assert_cardinality(steps))
        autoencoder.fit(shuffled, epochs=self.pretrain_epochs, shuffle=False, verbose=0)

    def _pretraining_decoder(self) -> keras.Sequential:
        # Linear output: the data may be scaled to [0, 1] or standardised. Biases are
        # fine here since the decoder never reaches the hypersphere.
        if self.is_image:
            return conv_decoder(
                self.latent_dim,
                self.sample_shape,
                self.filters,
                activation=ACTIVATION,
                batch_norm=self.batch_norm,
                output_activation="linear",
                name="pretraining_decoder",
            )
        return keras.Sequential(
            [
                keras.Input((self.latent_dim,)),
                *dense_stack(self.units[::-1], ACTIVATION, self.batch_norm),
                layers.Dense(int(np.prod(self.sample_shape))),
                layers.Reshape(self.sample_shape),
            ],
            name="pretraining_decoder",
        )

    # Scoring.
    def score_batch(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray:
        """Squared distance to c; minus R^2 with the soft boundary (> 0: outside)."""
        latents = np.asarray(self.encoder(x, training=False), dtype=np.float64)
        centre = np.asarray(self.centre, dtype=np.float64)
        scores = np.asarray(squared_distances(latents, centre), dtype=np.float64)
        if self.objective == "soft_boundary":
            scores = scores - float(self.radius) ** 2
        return scores

    def score_gradient(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray | None:
        """|d score / d x| (R^2 is a constant: the squared distance's gradient)."""
        return input_gradient(
            x, lambda inputs: squared_distances(self.encoder(inputs, training=False), self.centre)
        )


class _RadiusUpdate(keras.callbacks.Callback):
    """Sets R from the train split at the end of each epoch once the warm-up is over.

    Ruff et al. re-estimate R from every mini-batch; once per epoch over the whole
    split is steadier and lets each checkpoint hold the R of its own weights.
    """

    def __init__(self, svdd: DeepSVDD, samples: tf.data.Dataset):
        super().__init__()
        self._svdd = svdd
        self._samples = samples

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # `epoch` counts from 0; the warm-up is the first `warmup_epochs` epochs.
        if epoch + 1 >= self._svdd.warmup_epochs:
            self._svdd.update_radius(self._samples)
