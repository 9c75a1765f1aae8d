"""Sequence autoencoders for time-series windows: `lstm_ae` and `conv1d_ae`.

Both reconstruct the z-scored (window, channels) samples of dataset=timeseries
through a bottleneck (stacked LSTMs, or strided Conv1D layers) and score a
window by its reconstruction error. Source: seed 004, sections 2.2 and 4.2.
See docs/models/lstm_ae.md and docs/models/conv1d_ae.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import ReconstructionModel
from anomaly_cli.models.hyperparameters import (
    Hyperparameter,
    choice,
    integer,
    number,
    optional,
    widths,
)
from anomaly_cli.models.layers import McDropout
from anomaly_cli.scoring.batches import map_batches

ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu", "gelu", "selu")


def _one_rate(key: str, value: Any) -> float:
    """One dropout rate in [0, 1): these stacks take no per-layer list."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AdxUserError(f"model.{key}={value} must be one rate in [0, 1)")
    return number(0, 1, high_open=True)(key, value)


class _SequenceAutoencoder(ReconstructionModel):
    """Shared settings and scoring of the sequence family (not registered: never built)."""

    accepts = "sequence"
    # msle clips values below 0, so on z-scored windows it would ignore half the data.
    loss_kinds = ("mse", "mae")
    score_kinds = ("mse", "mae", "l2", "top_k_mean")
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        "latent_dim": Hyperparameter(
            None, optional(integer(minimum=1), hint=", or null for no Dense bottleneck")
        ),
        "dropout": Hyperparameter(0.0, _one_rate),
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        self.window, self.channels = self.sample_shape

    def _dropout(self) -> list[layers.Layer]:
        return [McDropout(self.dropout)] if self.dropout else []

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.decoder(self.encoder(inputs, training=training), training=training)

    def anomaly_map(self, data: np.ndarray | tf.data.Dataset, batch_size: int = 256) -> np.ndarray:
        """Per-step reconstruction error, (n, window): not a per-pixel map (so
        produces_maps is false), but a time profile of where the error lies."""
        return map_batches(data, batch_size, self.map_batch)


@keras.saving.register_keras_serializable(package="adx")
class LSTMAutoencoder(_SequenceAutoencoder):
    model_name = "lstm_ae"
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        "units": Hyperparameter([64, 32], widths()),
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        code = self.latent_dim or self.units[-1]

        encoder: list[layers.Layer] = []
        for i, width in enumerate(self.units):
            last = i == len(self.units) - 1
            encoder.append(layers.LSTM(width, return_sequences=not last))
            if not last:
                encoder += self._dropout()
        if self.latent_dim:
            encoder.append(layers.Dense(self.latent_dim, name="latent"))
        self.encoder = keras.Sequential([keras.Input(self.sample_shape), *encoder], name="encoder")

        decoder: list[layers.Layer] = [layers.RepeatVector(self.window)]
        for width in reversed(self.units):
            decoder += [layers.LSTM(width, return_sequences=True), *self._dropout()]
        decoder.append(layers.TimeDistributed(layers.Dense(self.channels)))
        self.decoder = keras.Sequential([keras.Input((code,)), *decoder], name="decoder")


@keras.saving.register_keras_serializable(package="adx")
class Conv1DAutoencoder(_SequenceAutoencoder):
    model_name = "conv1d_ae"
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        "filters": Hyperparameter([32, 64], widths()),
        "kernel_size": Hyperparameter(5, integer(minimum=1)),
        "strides": Hyperparameter(2, integer(minimum=1)),
        "activation": Hyperparameter("relu", choice(ACTIVATIONS)),
        "latent_dim": Hyperparameter(
            16, optional(integer(minimum=1), hint=", or null for no Dense bottleneck")
        ),
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        factor = self.strides ** len(self.filters)
        if self.window % factor:
            raise AdxUserError(
                f"model=conv1d_ae with strides={self.strides} and {len(self.filters)} conv "
                f"layers (filters={self.filters}) shortens windows by {factor}, so it needs "
                f"dataset.window divisible by {factor}; the dataset gives windows of "
                f"{self.window} steps: change dataset.window, model.strides or model.filters"
            )
        conv = {
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": "same",
            "activation": self.activation,
        }

        encoder: list[layers.Layer] = []
        for i, width in enumerate(self.filters):
            encoder.append(layers.Conv1D(width, **conv))
            if i < len(self.filters) - 1:
                encoder += self._dropout()
        short = (self.window // factor, self.filters[-1])
        if self.latent_dim:
            encoder += [layers.Flatten(), layers.Dense(self.latent_dim, name="latent")]
        self.encoder = keras.Sequential([keras.Input(self.sample_shape), *encoder], name="encoder")

        decoder: list[layers.Layer] = []
        if self.latent_dim:
            decoder += [
                layers.Dense(short[0] * short[1], activation=self.activation),
                layers.Reshape(short),
            ]
        for width in reversed(self.filters):
            decoder += [layers.Conv1DTranspose(width, **conv), *self._dropout()]
        decoder.append(layers.Conv1D(self.channels, self.kernel_size, padding="same"))
        code = (self.latent_dim,) if self.latent_dim else short
        self.decoder = keras.Sequential([keras.Input(code), *decoder], name="decoder")
