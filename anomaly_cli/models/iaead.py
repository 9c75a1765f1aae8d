"""IAEAD: Improved AutoEncoder for unsupervised Anomaly Detection (seed 001, sec. 3).

A convolutional autoencoder trained on reconstruction error plus lambda * a
Deep SVDD term on its latent code (Eqs. 6-8), switched on after a warm-up;
scored by the distance of a sample's latent to the training set's mean latent
(Eq. 9). See docs/models/iaead.md (protocol, radius, warm-up and early
stopping, the paper's slips, numbers).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models import svdd
from anomaly_cli.models.base import LATENT_DISTANCE, ReconstructionModel, batch_inputs
from anomaly_cli.models.blocks import conv_decoder, conv_encoder, conv_widths
from anomaly_cli.models.hyperparameters import (
    Hyperparameter,
    choice,
    conv_stack,
    flag,
    integer,
    number,
)
from anomaly_cli.models.structural_losses import training_loss
from anomaly_cli.scoring.reconstruction import DEFAULT_TOP_K, ERRORS

log = logging.getLogger("adx")


@keras.saving.register_keras_serializable(package="adx")
class IAEAD(ReconstructionModel):
    model_name = "iaead"
    accepts = "image"
    score_kinds = (LATENT_DISTANCE, *ERRORS)
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        **conv_stack(filters=32, latent_dim=32, units=[]),
        "batch_norm": Hyperparameter(True, flag),
        "lambda_svdd": Hyperparameter(5e-5, number(0, hint=" (paper: 5e-5; 0 is a plain CAE)")),
        "nu": Hyperparameter(1.0, number(0, 1, low_open=True, hint=", e.g. 0.1")),
        "objective": Hyperparameter("soft_boundary", choice(svdd.OBJECTIVES)),
        "eps": Hyperparameter(0.1, number(0, low_open=True, hint=", e.g. 0.1")),
        "warmup_epochs": Hyperparameter(
            20, integer(minimum=0, hint=" (paper: 20; 0 starts the SVDD term at once)")
        ),
        "score": Hyperparameter(LATENT_DISTANCE, attribute="score_name"),
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        conv = conv_widths(self.model_name, self.sample_shape, self.num_hidden_layers, self.filters)
        self.encoder = conv_encoder(
            self.sample_shape, conv, self.latent_dim, self.units, batch_norm=self.batch_norm
        )
        self.decoder = conv_decoder(
            self.latent_dim, self.sample_shape, conv, batch_norm=self.batch_norm
        )
        # State the fit loop and the score need after a reload: saved with the weights.
        state = {"trainable": False, "initializer": "zeros"}
        self.centre = self.add_weight(shape=(self.latent_dim,), name="centre", **state)
        self.radius = self.add_weight(shape=(), name="radius", **state)
        self.svdd_active = self.add_weight(shape=(), name="svdd_active", **state)
        self.mean_latent = self.add_weight(shape=(self.latent_dim,), name="mean_latent", **state)
        self.has_mean_latent = self.add_weight(shape=(), name="has_mean_latent", **state)

        self._reconstruction_fn = training_loss(self.loss_name)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.svdd_tracker = keras.metrics.Mean(name="svdd_loss")

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.decoder(self.encoder(inputs, training=training), training=training)

    # Training.
    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker, self.reconstruction_tracker, self.svdd_tracker]

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
        x = batch_inputs(data)
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
        x = batch_inputs(data)
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

    def score_batch(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray:
        if self.score_name != LATENT_DISTANCE:
            return super().score_batch(x, top_k)
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
