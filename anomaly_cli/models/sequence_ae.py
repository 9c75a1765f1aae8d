"""Sequence autoencoders for time-series windows: `lstm_ae` and `conv1d_ae`.

Both take the windows of `dataset=timeseries`, samples of shape (window,
channels) z-scored per channel, and reconstruct them through a bottleneck.
The score is the window's reconstruction error (`model.score`, default mse).

- `lstm_ae` (LSTMAutoencoder): stacked LSTMs (`units`) read the window; the
  last one's final output is the code, optionally projected by a Dense layer
  to `latent_dim`. RepeatVector hands the code to every step of a mirrored
  LSTM stack, and a time-distributed linear Dense maps each step back to the
  channels.
- `conv1d_ae` (Conv1DAutoencoder): strided Conv1D layers (`filters`,
  `kernel_size`, `strides`) shorten the window by `strides` per layer; an
  optional Dense bottleneck (`latent_dim`) squeezes the result; mirrored
  Conv1DTranspose layers lengthen it back and a linear Conv1D returns to the
  channels. The window must be divisible by strides ** len(filters).

With `dropout` > 0 an McDropout layer follows every LSTM / convolution except
the encoder's last, so Monte Carlo dropout scoring works.

Anomaly maps: windows are not images, so `produces_maps` is False (no pixel
metrics, no heatmaps). `anomaly_map` still works and returns the per-step
error, shape (n, window): the element-wise error of `model.score` averaged
over channels (l2: the norm over channels), i.e. where in the window the
reconstruction fails.

Source: seed 004, sections 2.2 and 4.2 (VAEs for anomaly detection in time
series: impute missing values, scale the series, split it in time order,
monitor the reconstruction loss). The seed names no architecture and gives no
code for the time-series part, so these two are the standard deterministic
sequence autoencoders; adx's `vae` takes images only. One slip is not
repeated: the seed suggests trying binary cross-entropy as reconstruction
loss, which needs targets in [0, 1]; z-scored windows are negative half the
time, so the output is linear and the loss mse | mae.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import AnomalyModel, require_shape
from anomaly_cli.models.layers import McDropout

ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu", "gelu", "selu")


class _SequenceAutoencoder(AnomalyModel):
    """Shared checks and scoring of the sequence family (not registered: never built)."""

    model_name = ""
    # msle clips values below 0, so on z-scored windows it would ignore half the data.
    loss_kinds = ("mse", "mae")
    score_kinds = ("mse", "mae", "l2", "top_k_mean")

    def __init__(
        self,
        sample_shape: tuple[int, ...],
        latent_dim: int | None = None,
        dropout: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(sample_shape=sample_shape, **kwargs)
        self.window, self.channels = require_shape(self.model_name, self.sample_shape, "sequence")
        if latent_dim is not None and int(latent_dim) < 1:
            raise AdxUserError(
                f"model.latent_dim={latent_dim} must be >= 1, or null for no Dense bottleneck"
            )
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise AdxUserError(f"model.dropout={dropout} must be one rate in [0, 1)")
        if not 0 <= dropout < 1:
            raise AdxUserError(f"model.dropout={dropout} must lie in [0, 1)")
        self.latent_dim = None if latent_dim is None else int(latent_dim)
        self.dropout = float(dropout)

    def _dropout(self) -> list[layers.Layer]:
        return [McDropout(self.dropout)] if self.dropout else []

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.decoder(self.encoder(inputs, training=training), training=training)

    @property
    def produces_maps(self) -> bool:
        return False

    def anomaly_map(self, data: np.ndarray | tf.data.Dataset, batch_size: int = 256) -> np.ndarray:
        """Per-step reconstruction error, (n, window); the base class refuses
        non-image models, but a time profile of the error is useful here."""
        return self._per_batch(data, batch_size, self.map_batch)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, dropout=self.dropout)
        return config


def _positive_ints(key: str, values: Sequence[int] | int) -> list[int]:
    if isinstance(values, int) or not len(values):
        raise AdxUserError(f"model.{key}={values} must be a non-empty list, e.g. [64, 32]")
    ints = [int(v) for v in values]
    if any(v < 1 for v in ints):
        raise AdxUserError(f"model.{key}={ints} must all be >= 1")
    return ints


@keras.saving.register_keras_serializable(package="adx")
class LSTMAutoencoder(_SequenceAutoencoder):
    model_name = "lstm_ae"

    def __init__(
        self,
        sample_shape: tuple[int, ...],
        units: Sequence[int] = (64, 32),
        latent_dim: int | None = None,
        dropout: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(sample_shape, latent_dim=latent_dim, dropout=dropout, **kwargs)
        self.units = _positive_ints("units", units)
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

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(units=self.units)
        return config


@keras.saving.register_keras_serializable(package="adx")
class Conv1DAutoencoder(_SequenceAutoencoder):
    model_name = "conv1d_ae"

    def __init__(
        self,
        sample_shape: tuple[int, ...],
        filters: Sequence[int] = (32, 64),
        kernel_size: int = 5,
        strides: int = 2,
        activation: str = "relu",
        latent_dim: int | None = 16,
        dropout: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(sample_shape, latent_dim=latent_dim, dropout=dropout, **kwargs)
        self.filters = _positive_ints("filters", filters)
        self.kernel_size, self.strides = int(kernel_size), int(strides)
        if self.kernel_size < 1 or self.strides < 1:
            raise AdxUserError(
                f"model.kernel_size={kernel_size} and model.strides={strides} must be >= 1"
            )
        if activation not in ACTIVATIONS:
            raise AdxUserError(
                f"model.activation={activation}; choose one of: {', '.join(ACTIVATIONS)}"
            )
        self.activation = activation
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
            "activation": activation,
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
                layers.Dense(short[0] * short[1], activation=activation),
                layers.Reshape(short),
            ]
        for width in reversed(self.filters):
            decoder += [layers.Conv1DTranspose(width, **conv), *self._dropout()]
        decoder.append(layers.Conv1D(self.channels, self.kernel_size, padding="same"))
        code = (self.latent_dim,) if self.latent_dim else short
        self.decoder = keras.Sequential([keras.Input(code), *decoder], name="decoder")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            activation=self.activation,
        )
        return config
