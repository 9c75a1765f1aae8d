"""IAEAD: Improved AutoEncoder for unsupervised Anomaly Detection (seed 001, sec. 3).

A convolutional autoencoder trained on reconstruction error plus a weighted
Deep SVDD term on its latent code (Eqs. 6-8):

    L = L_rec + lambda * L_reg,   L_reg = R^2 + 1/(nu n) sum max(0, |z - c|^2 - R^2)

with `objective=one_class` giving Deep SVDD's one-class variant, mean |z - c|^2,
instead of Eq. 7's soft boundary. The protocol of sec. 4.3 sets the defaults:
lambda = 5e-5, nu = 1 (fixed for every experiment, so no label information is
used to pick it), and a warm-up of 20 epochs on reconstruction alone. At the
start of the first epoch after warm-up (the weights are those at the end of
warm-up; sec. 4.3's "right after the warm-up finished") a training callback
sets the centre c to the mean latent of the training samples, each component
pushed at least `eps` away from 0 (svdd.initial_centre), and switches the
SVDD term on through the non-trainable `svdd_active` weight. Before that the
term is multiplied by 0, so `svdd_loss` is exactly 0 and the gradients are the
plain autoencoder's.

Radius: sec. 4.3 "solve[s] for R via line search every mini-batch, the same
strategy as the original paper" (Ruff et al. 2018). For fixed network weights
the soft-boundary objective is minimised over R by the (1 - nu) quantile of
the distances, which is how that "line search" is carried out in Deep SVDD's
and IAEAD's released code: after every optimiser step R becomes the (1 - nu)
quantile of the batch's distances |z - c| computed in that step's forward
pass (R = 0 until the first SVDD batch). R is not trained by gradient. The
quantile is computed with tensor ops (`svdd.batch_radius`, NumPy's linear
interpolation, the same value as svdd.radius_quantile) so that train_step
stays a compiled graph. With nu = 1 it is the batch's smallest distance.

Score (Eq. 9): the Euclidean distance of a sample's latent to the mean latent
of the training set, not to c; the paper finds this slightly better. The mean
is taken by `finish_training` on the best checkpoint and kept in a
non-trainable weight. `score` may instead name a reconstruction error
(mse, mae, ...), the CAE baseline's score. Maps are reconstruction-error maps.

Metrics: `loss` (the total), `reconstruction_loss` and `svdd_loss` (L_reg
without lambda), for training and validation alike.

Early stopping: the checkpointer watches the total loss, which jumps by
lambda * L_reg when the SVDD term comes on, and it knows nothing of warm-up, so
a run can stop (or keep its best checkpoint) before the SVDD term ever
trained. The model then is a plain autoencoder scored by latent distance; the
callback and `finish_training` log a warning saying so and what to change.
`first_checkpoint_epoch` names the first epoch trained with the term, for a
fit loop that ignores the epochs before it.

Slips in the seed settled here:
- Eq. 9 writes the centre as the sum of the latents; "mean center" (the text
  and the released code) is meant, so the mean is used.
- Eq. 8 writes the reconstruction term as a norm, the released code uses the
  mean squared error; `loss` chooses (mse by default).
- Sec. 4.3 describes four conv blocks (conv, BN, activation); the released
  code has three. The depth is `num_hidden_layers`, and blocks.conv_encoder
  applies the activation before BatchNormalization. Images are scaled to
  [0, 1] here, so the decoder ends in a sigmoid instead of the paper's tanh on
  [-1, 1] data, and the latent is linear (the released code adds a tanh).
"""

from __future__ import annotations

import logging
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models import svdd
from anomaly_cli.models.base import LATENT_DISTANCE, AnomalyModel, require_shape
from anomaly_cli.models.blocks import conv_decoder, conv_encoder, doubling_widths
from anomaly_cli.scoring.reconstruction import ERRORS

log = logging.getLogger("adx")


@keras.saving.register_keras_serializable(package="adx")
class IAEAD(AnomalyModel):
    score_kinds = (LATENT_DISTANCE, *ERRORS)

    def __init__(
        self,
        sample_shape: tuple[int, ...],
        num_hidden_layers: int = 3,
        num_filters: int = 32,
        dense_units: int = 0,
        latent_dim: int = 32,
        batch_norm: bool = True,
        lambda_svdd: float = 5e-5,
        nu: float = 1.0,
        objective: str = "soft_boundary",
        eps: float = 0.1,
        warmup_epochs: int = 20,
        loss: str = "mse",
        score: str = LATENT_DISTANCE,
        **kwargs: Any,
    ):
        super().__init__(sample_shape=sample_shape, loss=loss, score=score, **kwargs)
        height, width, channels = require_shape("iaead", self.sample_shape, "image")
        widths = doubling_widths(
            "iaead", self.sample_shape, num_hidden_layers, num_filters, latent_dim, dense_units
        )
        svdd.check_svdd_settings(objective, float(nu), float(eps))
        if float(lambda_svdd) < 0:
            raise AdxUserError(
                f"model.lambda_svdd={lambda_svdd} must be >= 0 (paper: 5e-5; 0 is a plain CAE)"
            )
        if int(warmup_epochs) < 0:
            raise AdxUserError(
                f"model.warmup_epochs={warmup_epochs} must be >= 0 (paper: 20; 0 starts the "
                "SVDD term at once)"
            )
        self.num_hidden_layers = int(num_hidden_layers)
        self.num_filters = int(num_filters)
        self.dense_units = int(dense_units)
        self.latent_dim = int(latent_dim)
        self.batch_norm = bool(batch_norm)
        self.lambda_svdd = float(lambda_svdd)
        self.nu = float(nu)
        self.objective = objective
        self.eps = float(eps)
        self.warmup_epochs = int(warmup_epochs)

        self.encoder = conv_encoder(
            self.sample_shape,
            widths,
            self.latent_dim,
            dense_units=self.dense_units,
            batch_norm=self.batch_norm,
        )
        self.decoder = conv_decoder(
            self.latent_dim, (height, width, channels), widths, batch_norm=self.batch_norm
        )
        # State the fit loop and the score need after a reload: saved with the weights.
        state = {"trainable": False, "initializer": "zeros"}
        self.centre = self.add_weight(shape=(self.latent_dim,), name="centre", **state)
        self.radius = self.add_weight(shape=(), name="radius", **state)
        self.svdd_active = self.add_weight(shape=(), name="svdd_active", **state)
        self.mean_latent = self.add_weight(shape=(self.latent_dim,), name="mean_latent", **state)
        self.has_mean_latent = self.add_weight(shape=(), name="has_mean_latent", **state)

        self._reconstruction_fn = keras.losses.get(self.loss_name)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.svdd_tracker = keras.metrics.Mean(name="svdd_loss")

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.decoder(self.encoder(inputs, training=training), training=training)

    # Training.
    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker, self.reconstruction_tracker, self.svdd_tracker]

    def compile_for_training(self, optimizer: keras.optimizers.Optimizer) -> None:
        # train_step and test_step compute the loss themselves.
        self.compile(optimizer=optimizer)

    def _terms(self, x: Any, training: bool) -> tuple[Any, Any, Any, Any]:
        latents = self.encoder(x, training=training)
        reconstruction = self.decoder(latents, training=training)
        rec = ops.mean(self._reconstruction_fn(x, reconstruction))
        sq_distances = svdd.squared_distances(latents, self.centre)
        # Multiplying by the 0/1 flag keeps one compiled graph for both phases;
        # before warm-up ends the term, and its gradient, are exactly 0.
        reg = self.svdd_active * svdd.svdd_loss(sq_distances, self.radius, self.nu, self.objective)
        return rec + self.lambda_svdd * reg, rec, reg, sq_distances

    def _report(self, total: Any, rec: Any, reg: Any) -> dict[str, Any]:
        self.loss_tracker.update_state(total)
        self.reconstruction_tracker.update_state(rec)
        self.svdd_tracker.update_state(reg)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data: Any) -> dict[str, Any]:
        x = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            total, rec, reg, sq_distances = self._terms(x, training=True)
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(total, variables), variables)
        if self.objective == "soft_boundary":
            # Deep SVDD's per-batch line search for R, from this step's distances.
            radius = svdd.batch_radius(ops.stop_gradient(sq_distances), self.nu)
            self.radius.assign(ops.where(self.svdd_active > 0, radius, self.radius))
        return self._report(total, rec, reg)

    def test_step(self, data: Any) -> dict[str, Any]:
        x = data[0] if isinstance(data, (tuple, list)) else data
        total, rec, reg, _ = self._terms(x, training=False)
        return self._report(total, rec, reg)

    def start_svdd(self, samples: tf.data.Dataset) -> None:
        """End warm-up: c = mean training latent (pushed eps from 0), R = 0, term on."""
        latents = svdd.encode_all(self.encoder, samples)
        self.centre.assign(svdd.initial_centre(latents, self.eps))
        self.radius.assign(0.0)
        self.svdd_active.assign(1.0)

    @property
    def first_checkpoint_epoch(self) -> int:
        """The first epoch (1-based) trained with the SVDD term. Not read by the fit
        loop yet: a checkpointer that skipped earlier epochs for the best checkpoint
        and for patience would make a warm-up-only result impossible."""
        return self.warmup_epochs + 1

    @property
    def svdd_started(self) -> bool:
        return bool(self.svdd_active.numpy())

    def training_callbacks(self, samples: tf.data.Dataset) -> list[keras.callbacks.Callback]:
        return [SvddWarmup(samples, self.warmup_epochs)]

    def finish_training(self, samples: tf.data.Dataset) -> None:
        """Store the training set's mean latent, the centre Eq. 9 scores against."""
        if not self.svdd_started:
            log.warning(
                "model=iaead: this checkpoint was saved before the Deep SVDD term switched on "
                "(after model.warmup_epochs=%d epochs), so it is a plain autoencoder; raise "
                "trainer.epochs / trainer.patience or lower model.warmup_epochs",
                self.warmup_epochs,
            )
        latents = svdd.encode_all(self.encoder, samples)
        self.mean_latent.assign(np.asarray(latents, np.float64).mean(axis=0).astype(np.float32))
        self.has_mean_latent.assign(1.0)

    # Scoring.
    def latents(self, x: Any) -> np.ndarray:
        return np.asarray(self.encoder(x, training=False))

    def score_batch(self, x: np.ndarray) -> np.ndarray:
        if self.score_name != LATENT_DISTANCE:
            return super().score_batch(x)
        if not self.has_mean_latent.numpy():
            raise AdxUserError(
                "model=iaead has no mean training latent to score against yet: call "
                "finish_training(train samples) after fitting (adx train does), or score "
                "with a reconstruction error, e.g. model.score=mse"
            )
        offsets = self.latents(x).astype(np.float64) - np.asarray(self.mean_latent, np.float64)
        return np.sqrt(np.square(offsets).sum(axis=1))

    @property
    def map_error(self) -> str:
        """Maps of a latent-distance score show the training loss's error."""
        return self.loss_name

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_hidden_layers=self.num_hidden_layers,
            num_filters=self.num_filters,
            dense_units=self.dense_units,
            latent_dim=self.latent_dim,
            batch_norm=self.batch_norm,
            lambda_svdd=self.lambda_svdd,
            nu=self.nu,
            objective=self.objective,
            eps=self.eps,
            warmup_epochs=self.warmup_epochs,
        )
        return config


class SvddWarmup(keras.callbacks.Callback):
    """Switches the SVDD term on when epoch `warmup_epochs` + 1 begins.

    Starting at the next epoch's beginning rather than at the last warm-up
    epoch's end uses the same weights, but leaves that epoch's checkpoint
    without the term, so a checkpoint's `svdd_active` says whether the term
    ever trained it. A resumed run past warm-up loads the flag with its
    checkpoint and is left alone.
    """

    def __init__(self, samples: tf.data.Dataset, warmup_epochs: int):
        super().__init__()
        self.samples = samples
        self.warmup_epochs = warmup_epochs

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch >= self.warmup_epochs and not self.model.svdd_started:
            self.model.start_svdd(self.samples)
            log.info("model=iaead: warm-up done, Deep SVDD term on from epoch %d", epoch + 1)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self.model.svdd_started:
            log.warning(
                "model=iaead: training ended before the Deep SVDD term switched on (it starts "
                "after model.warmup_epochs=%d epochs; early stopping or trainer.epochs ended "
                "it first); raise trainer.epochs / trainer.patience or lower model.warmup_epochs",
                self.warmup_epochs,
            )
