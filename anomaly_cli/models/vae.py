"""Variational autoencoder and beta-VAE for images (seed 000, sections 4 and 5).

A strided conv encoder with Gaussian mean and log-variance heads, a
reparameterised latent and the conv autoencoder's mirrored sigmoid decoder,
trained on reconstruction + beta * KL; scored by the reconstruction error of
the decoded mean (or of `n_samples` seeded draws).
See docs/models/vae.md and docs/models/beta_vae.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from anomaly_cli.models.base import ReconstructionModel, batch_inputs
from anomaly_cli.models.blocks import conv_decoder, conv_encoder, conv_widths
from anomaly_cli.models.hyperparameters import (
    Hyperparameter,
    conv_stack,
    integer,
    number,
)
from anomaly_cli.models.structural_losses import training_loss
from anomaly_cli.scoring.reconstruction import (
    DEFAULT_TOP_K,
    error_map,
    reconstruction_error,
)


@keras.saving.register_keras_serializable(package="adx")
class VariationalAutoencoder(ReconstructionModel):
    model_name = "vae"
    accepts = "image"
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        **conv_stack(filters=32, latent_dim=16, units=[256]),
        "beta": Hyperparameter(
            1.0, number(0, hint="; 1 is the plain VAE, seed 000's beta-VAE uses 1e-4")
        ),
        "n_samples": Hyperparameter(
            0,
            integer(
                minimum=0,
                hint="; 0 scores the decoded mean, N averages the error over N latent draws",
            ),
        ),
        "sample_seed": Hyperparameter(0, integer(minimum=0)),
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        conv = conv_widths(self.model_name, self.sample_shape, self.num_hidden_layers, self.filters)
        self.encoder = conv_encoder(self.sample_shape, conv, 2 * self.latent_dim, self.units)
        self.decoder = conv_decoder(self.latent_dim, self.sample_shape, conv)
        # Drawn from Python's seeded RNG (apply_seed), so seeded training repeats.
        self.noise = keras.random.SeedGenerator(name="reparameterisation_noise")
        self._objective = training_loss(self.loss_name)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self._score_noise: np.ndarray | None = None

    # Model.
    def encode(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        """The mean and log-variance of q(z|x)."""
        stats = self.encoder(x, training=training)
        return stats[:, : self.latent_dim], stats[:, self.latent_dim :]

    def reparameterise(self, mean: Any, log_var: Any) -> Any:
        eps = keras.random.normal(tf.shape(mean), seed=self.noise)
        return mean + tf.exp(0.5 * log_var) * eps

    def call(self, inputs: Any, training: bool = False) -> Any:
        mean, log_var = self.encode(inputs, training=training)
        z = self.reparameterise(mean, log_var) if training else mean
        return self.decoder(z, training=training)

    # Training: the objective lives in train_step/test_step.
    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def elbo_terms(self, x: Any, sample: bool, training: bool = False) -> tuple[Any, Any]:
        """Batch means of the per-sample reconstruction loss and of the KL divergence."""
        mean, log_var = self.encode(x, training=training)
        z = self.reparameterise(mean, log_var) if sample else mean
        reconstruction = self.decoder(z, training=training)
        # Keras' own losses reduce over the last axis, the structural ones give one
        # value per sample; the mean over the rest makes either per-sample.
        per_sample = self._objective(x, reconstruction)
        per_sample = tf.reduce_mean(tf.reshape(per_sample, (tf.shape(per_sample)[0], -1)), axis=1)
        kl = 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - 1.0 - log_var, axis=1)
        return tf.reduce_mean(per_sample), tf.reduce_mean(kl)

    def _report(self, reconstruction: Any, kl: Any, loss: Any) -> dict[str, Any]:
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data: Any) -> dict[str, Any]:
        x = batch_inputs(data)
        with tf.GradientTape() as tape:
            reconstruction, kl = self.elbo_terms(x, sample=True, training=True)
            loss = reconstruction + self.beta * kl
            if self.losses:
                loss += tf.add_n(self.losses)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights, strict=True))
        return self._report(reconstruction, kl, loss)

    def test_step(self, data: Any) -> dict[str, Any]:
        x = batch_inputs(data)
        reconstruction, kl = self.elbo_terms(x, sample=False)
        return self._report(reconstruction, kl, reconstruction + self.beta * kl)

    # Scoring.
    def reconstruct(self, x: Any) -> np.ndarray:
        """The decoded mean, z = mu: the same image every time."""
        mean, _ = self.encode(tf.convert_to_tensor(x, dtype="float32"))
        return np.asarray(self.decoder(mean, training=False))

    def _sampled_reconstructions(self, x: np.ndarray) -> list[np.ndarray]:
        """One decoded image per scoring draw; the draws are fixed by sample_seed."""
        if self._score_noise is None:
            rng = np.random.default_rng(self.sample_seed)
            self._score_noise = rng.standard_normal((self.n_samples, self.latent_dim)).astype(
                "float32"
            )
        mean, log_var = self.encode(tf.convert_to_tensor(x, dtype="float32"))
        std = tf.exp(0.5 * log_var)
        return [
            np.asarray(self.decoder(mean + std * eps[None, :], training=False))
            for eps in self._score_noise
        ]

    def score_batch(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray:
        if not self.n_samples:
            return super().score_batch(x, top_k)
        errors = [
            reconstruction_error(x, r, self.score_name, top_k)
            for r in self._sampled_reconstructions(x)
        ]
        return np.mean(errors, axis=0)

    def map_batch(self, x: np.ndarray) -> np.ndarray:
        if not self.n_samples:
            return super().map_batch(x)
        maps = [error_map(x, r, self.score_name) for r in self._sampled_reconstructions(x)]
        return np.mean(maps, axis=0)
