"""Deep SVDD: map normal samples into a small hypersphere, score by the distance to its centre.

From seed 001, sec. 2.3 (Eq. 4 and 5), which restates Ruff et al., "Deep One-Class
Classification" (ICML 2018). A bias-free encoder phi maps each sample to a `rep_dim`
vector; training pulls phi(x) towards a fixed centre c. Two objectives:
- one_class: mean ||phi(x) - c||^2;
- soft_boundary (Eq. 4): R^2 + 1/nu * mean(max(0, ||phi(x) - c||^2 - R^2)), where the
  radius R is not learnt by gradient but set to the (1-nu) quantile of the training
  distances at the end of every epoch once `warmup_epochs` epochs have run with R = 0.
The weight-decay term of Eq. 4 is left to the optimizer (optimizer=adamw).

Images get strided 3x3 convolutions (blocks.conv_encoder), any other sample (rows,
windows) is flattened into a Dense stack. Every layer has use_bias=False and
BatchNormalization has no affine shift or scale: with a bias (or beta) the network could
map every input to c and the hypersphere would collapse (Ruff et al., sec. 3.3). The
leaky ReLU has Keras' slope 0.2 (Ruff's code: 0.01). c is the mean latent of an initial
pass over the train split, components within `eps` of 0 pushed to +-eps. With
`pretrain_epochs` > 0 the encoder is first trained as the encoder of an autoencoder
whose mirrored decoder is thrown away (the "pretraining" the seed mentions). c and R
are non-trainable weights, so the .keras checkpoint holds them.

BatchNorm follows Ruff's PyTorch networks in its running-average rate
(blocks.BATCH_NORM_MOMENTUM), and its moving statistics are settled on the train
split before c is placed: c comes from an inference pass, training sees batch
statistics, and the two must agree or training pulls the latents towards a point
they never had.

Slips in the seed settled here:
- "n denotes the radius of the hypersphere" below Eq. 4: the radius is R.
- Eq. 5 scores with the distance ||phi(x) - c||; Ruff et al. score with the squared
  distance (minus R^2 for the soft boundary), which ranks samples the same way within
  one model. The squared form is used, so a soft-boundary score > 0 means "outside".
- Eq. 4 minimises over R as well as W, but says nothing of how; Ruff et al. solve for
  R by the quantile (a line search), as here, rather than by gradient descent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import AnomalyModel, require_shape
from anomaly_cli.models.blocks import check_divisible, conv_decoder, conv_encoder, dense_stack
from anomaly_cli.models.svdd import (
    check_svdd_settings,
    encode_all,
    initial_centre,
    radius_quantile,
    squared_distances,
    svdd_loss,
)

ACTIVATION = "leaky_relu"
# Batches that settle BatchNorm's moving statistics before c is placed: 0.9 ** 30 < 5 %.
_SETTLING_BATCHES = 30
# tf.data shuffle buffer for pretraining, the cap the training pipeline uses too.
_SHUFFLE_BUFFER = 10_000
_PRETRAIN_SHUFFLE_SEED = 0
_NO_MAPS = (
    "model=deep_svdd scores whole samples (a distance in latent space) and gives no "
    "per-pixel anomaly maps; use a reconstruction model such as model=conv_ae for maps"
)


@keras.saving.register_keras_serializable(package="adx")
class DeepSVDD(AnomalyModel):
    # The objective is set by `objective`; the loss/score names only satisfy the base
    # class, which otherwise expects reconstruction errors.
    loss_kinds = ("svdd",)
    score_kinds = ("distance",)

    def __init__(
        self,
        sample_shape: tuple[int, ...],
        objective: str = "one_class",
        nu: float = 0.1,
        eps: float = 0.1,
        warmup_epochs: int = 5,
        rep_dim: int = 32,
        conv_filters: Sequence[int] = (32, 64),
        dense_units: int = 0,
        hidden_units: Sequence[int] = (64, 32),
        batch_norm: bool = True,
        pretrain_epochs: int = 0,
        loss: str = "svdd",
        score: str = "distance",
        **kwargs: Any,
    ):
        super().__init__(sample_shape=sample_shape, loss=loss, score=score, **kwargs)
        require_shape("deep_svdd", self.sample_shape, "any")
        check_svdd_settings(objective, float(nu), float(eps))
        conv_filters = [int(f) for f in conv_filters]
        hidden_units = [int(u) for u in hidden_units]
        if int(rep_dim) < 1:
            raise AdxUserError(f"model.rep_dim={rep_dim} must be >= 1, e.g. 32")
        if not conv_filters or any(f < 1 for f in conv_filters):
            raise AdxUserError(
                f"model.conv_filters={conv_filters} needs at least one layer, every width >= 1"
            )
        if any(u < 1 for u in hidden_units):
            raise AdxUserError(f"model.hidden_units={hidden_units} widths must be >= 1")
        for key, value in (
            ("dense_units", dense_units),
            ("warmup_epochs", warmup_epochs),
            ("pretrain_epochs", pretrain_epochs),
        ):
            if int(value) < 0:
                raise AdxUserError(f"model.{key}={value} must be >= 0")
        self.objective = objective
        self.nu = float(nu)
        self.eps = float(eps)
        self.warmup_epochs = int(warmup_epochs)
        self.rep_dim = int(rep_dim)
        self.conv_filters = conv_filters
        self.dense_units = int(dense_units)
        self.hidden_units = hidden_units
        self.batch_norm = bool(batch_norm)
        self.pretrain_epochs = int(pretrain_epochs)

        if self.is_image:
            height, width, _ = self.sample_shape
            if self.pretrain_epochs:
                # Only the mirrored decoder needs sides that double back exactly.
                check_divisible(
                    "deep_svdd",
                    height,
                    width,
                    2 ** len(conv_filters),
                    f"{len(conv_filters)} conv layers and pretrain_epochs > 0",
                )
            self.encoder = conv_encoder(
                self.sample_shape,
                conv_filters,
                self.rep_dim,
                dense_units=self.dense_units,
                activation=ACTIVATION,
                batch_norm=self.batch_norm,
                use_bias=False,
            )
        else:
            self.encoder = keras.Sequential(
                [
                    keras.Input(self.sample_shape),
                    layers.Flatten(),
                    *dense_stack(hidden_units, ACTIVATION, self.batch_norm, use_bias=False),
                    layers.Dense(self.rep_dim, use_bias=False, name="latent"),
                ],
                name="encoder",
            )
        self.centre = self.add_weight(
            shape=(self.rep_dim,), initializer="zeros", trainable=False, name="centre"
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
    def compile_for_training(self, optimizer: keras.optimizers.Optimizer) -> None:
        self.compile(optimizer=optimizer)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker]

    def _objective(self, x: Any, training: bool) -> Any:
        distances = squared_distances(self.encoder(x, training=training), self.centre)
        return svdd_loss(distances, self.radius, self.nu, self.objective)

    def train_step(self, data: Any) -> dict[str, Any]:
        x = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            loss = self._objective(x, training=True)
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data: Any) -> dict[str, Any]:
        x = data[0] if isinstance(data, (tuple, list)) else data
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
                self.rep_dim,
                self.sample_shape,
                self.conv_filters,
                activation=ACTIVATION,
                batch_norm=self.batch_norm,
                output_activation="linear",
                name="pretraining_decoder",
            )
        return keras.Sequential(
            [
                keras.Input((self.rep_dim,)),
                *dense_stack(self.hidden_units[::-1], ACTIVATION, self.batch_norm),
                layers.Dense(int(np.prod(self.sample_shape))),
                layers.Reshape(self.sample_shape),
            ],
            name="pretraining_decoder",
        )

    # Scoring.
    def score_batch(self, x: np.ndarray) -> np.ndarray:
        """Squared distance to c; minus R^2 with the soft boundary (> 0: outside)."""
        latents = np.asarray(self.encoder(x, training=False), dtype=np.float64)
        centre = np.asarray(self.centre, dtype=np.float64)
        scores = np.asarray(squared_distances(latents, centre), dtype=np.float64)
        if self.objective == "soft_boundary":
            scores = scores - float(self.radius) ** 2
        return scores

    def reconstruct(self, x: Any) -> np.ndarray:
        raise AdxUserError("model=deep_svdd has no decoder; it maps samples to a latent vector")

    @property
    def produces_maps(self) -> bool:
        return False

    def map_batch(self, x: np.ndarray) -> np.ndarray:
        raise AdxUserError(_NO_MAPS)

    def anomaly_map(self, data: np.ndarray | tf.data.Dataset, batch_size: int = 256) -> np.ndarray:
        raise AdxUserError(_NO_MAPS)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            objective=self.objective,
            nu=self.nu,
            eps=self.eps,
            warmup_epochs=self.warmup_epochs,
            rep_dim=self.rep_dim,
            conv_filters=self.conv_filters,
            dense_units=self.dense_units,
            hidden_units=self.hidden_units,
            batch_norm=self.batch_norm,
            pretrain_epochs=self.pretrain_epochs,
        )
        return config


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
