"""Variational autoencoder and beta-VAE for images (seed 000, sections 4 and 5).

Encoder: strided 3x3 convolutions whose filter count doubles per layer, flatten,
a dense layer, then the two Gaussian heads, the mean and the log-variance of
q(z|x). Decoder: the conv autoencoder's mirrored decoder ending in a sigmoid.
Both come from `blocks`; the encoder's last Dense layer has 2 * latent_dim units
whose first half is the mean head and second half the log-variance head (one
Dense of 2L units is exactly two Dense heads of L side by side, as in the seed).

Training minimises, per batch,

    loss = reconstruction_loss + beta * kl_loss

where reconstruction_loss is the batch mean of each sample's `model.loss`
(mse | mae | msle) averaged over its pixels and channels, and kl_loss is the
batch mean of KL(q(z|x) || N(0, I)) summed over the latent dimensions. That is
the seed's scaling (Keras' "mse" loss plus a latent-summed, batch-averaged KL),
so its beta = 1e-4 means the same thing here. Because the reconstruction term is
a per-pixel mean, beta = 1 weighs the KL as heavily as an ELBO with a summed
reconstruction error and beta = H * W * C would; that is the seed's plain VAE, whose reconstructions
collapsed to grey images, and why its beta-VAE shrinks beta. `kl_loss` is
reported unweighted, so loss - reconstruction_loss = beta * kl_loss.

Training samples z = mu + sigma * eps (the reparameterisation trick). The
validation loss (test_step) decodes the mean z = mu instead, so early stopping
and checkpointing watch a number without sampling noise, whose reconstruction
part is the mean anomaly score of the validation normals when loss == score.

Score: the reconstruction error (`model.score`) of the decoded mean, z = mu.
With `n_samples` > 0 it is the error averaged over that many reparameterised
draws z_i = mu + sigma * eps_i, where the eps_i come from `sample_seed` and are
the same for every sample: the same model scores the same input the same way,
whatever batch it sits in.

Slips in the seed fixed here:
- Scoring ran `predict`, i.e. the sampling forward pass, so every call gave
  other scores; the score here decodes the mean (or seeded draws).
- The KL term went through `add_loss` in `call`, so it also entered every
  inference pass, and `loss` / the "mse" metric never said how much of the
  objective was reconstruction; the terms are reported apart here.
- The beta-VAE drew its noise with a static `mean.shape`, which fails for an
  unknown batch size inside a compiled function; the noise here takes the
  runtime shape and a seed generator, so seeded training is reproducible.
- The beta-VAE listing shows a 1-channel sigmoid convolution at the end of
  its encoder's conv stack, in no other model and never discussed; it reads
  as a pasting slip, and both models share one encoder here.
- Every layer's initialiser got the same fixed seed, so same-shaped layers
  started identical; here the run's seed (apply_seed) drives them all.
The seed's KL formula itself, -0.5 * sum(1 + log_var - mu^2 - exp(log_var)),
is correct and kept.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import AnomalyModel, require_shape
from anomaly_cli.models.blocks import conv_decoder, conv_encoder, doubling_widths
from anomaly_cli.scoring.reconstruction import error_map, reconstruction_error


@keras.saving.register_keras_serializable(package="adx")
class VariationalAutoencoder(AnomalyModel):
    def __init__(
        self,
        sample_shape: tuple[int, ...],
        num_hidden_layers: int = 3,
        num_filters: int = 32,
        dense_units: int = 256,
        latent_dim: int = 16,
        beta: float = 1.0,
        n_samples: int = 0,
        sample_seed: int = 0,
        **kwargs: Any,
    ):
        super().__init__(sample_shape=sample_shape, **kwargs)
        height, width, channels = require_shape("vae", self.sample_shape, "image")
        widths = doubling_widths(
            "vae", self.sample_shape, num_hidden_layers, num_filters, latent_dim, dense_units
        )
        if not float(beta) >= 0:
            raise AdxUserError(
                f"model.beta={beta} must be >= 0; 1 is the plain VAE, seed 000's beta-VAE uses 1e-4"
            )
        if int(n_samples) < 0:
            raise AdxUserError(
                f"model.n_samples={n_samples} must be >= 0; 0 scores the decoded mean, "
                "N averages the error over N latent draws"
            )
        self.num_hidden_layers = int(num_hidden_layers)
        self.num_filters = int(num_filters)
        self.dense_units = int(dense_units)
        self.latent_dim = int(latent_dim)
        self.beta = float(beta)
        self.n_samples = int(n_samples)
        self.sample_seed = int(sample_seed)

        self.encoder = conv_encoder(
            self.sample_shape, widths, 2 * self.latent_dim, self.dense_units
        )
        self.decoder = conv_decoder(self.latent_dim, (height, width, channels), widths)
        # Drawn from Python's seeded RNG (apply_seed), so seeded training repeats.
        self.noise = keras.random.SeedGenerator(name="reparameterisation_noise")
        self._objective = keras.losses.get(self.loss_name)
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

    # Training.
    def compile_for_training(self, optimizer: keras.optimizers.Optimizer) -> None:
        # The objective lives in train_step/test_step; compile only sets the optimizer.
        self.compile(optimizer=optimizer)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def elbo_terms(self, x: Any, sample: bool, training: bool = False) -> tuple[Any, Any]:
        """Batch means of the per-sample reconstruction loss and of the KL divergence."""
        mean, log_var = self.encode(x, training=training)
        z = self.reparameterise(mean, log_var) if sample else mean
        reconstruction = self.decoder(z, training=training)
        # Keras' losses reduce over the last axis; the mean over the rest makes it per-pixel.
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
        x = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            reconstruction, kl = self.elbo_terms(x, sample=True, training=True)
            loss = reconstruction + self.beta * kl
            if self.losses:
                loss += tf.add_n(self.losses)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights, strict=True))
        return self._report(reconstruction, kl, loss)

    def test_step(self, data: Any) -> dict[str, Any]:
        x = data[0] if isinstance(data, (tuple, list)) else data
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

    def score_batch(self, x: np.ndarray) -> np.ndarray:
        if not self.n_samples:
            return super().score_batch(x)
        errors = [
            reconstruction_error(x, r, self.score_name, self.top_k)
            for r in self._sampled_reconstructions(x)
        ]
        return np.mean(errors, axis=0)

    def map_batch(self, x: np.ndarray) -> np.ndarray:
        if not self.n_samples:
            return super().map_batch(x)
        maps = [error_map(x, r, self.score_name) for r in self._sampled_reconstructions(x)]
        return np.mean(maps, axis=0)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_hidden_layers=self.num_hidden_layers,
            num_filters=self.num_filters,
            dense_units=self.dense_units,
            latent_dim=self.latent_dim,
            beta=self.beta,
            n_samples=self.n_samples,
            sample_seed=self.sample_seed,
        )
        return config
