"""Dense (MLP) autoencoder for table rows (seed 003), also usable on any sample.

The sample is flattened, so rows (d,), time-series windows (window, channels)
and small images all fit. Each hidden layer is Dense -> optional
BatchNormalization -> optional Dropout; the decoder mirrors the encoder's
widths. The output layer is linear by default: standardised features are
negative about half the time, so seed 003's sigmoid output (and the
BatchNormalization it put after the output layer, which rescales the
reconstruction to batch statistics) are not repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import AnomalyModel
from anomaly_cli.models.blocks import dense_stack, per_layer_rates

ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu", "gelu", "selu")
OUTPUT_ACTIVATIONS = ("linear", "sigmoid", "tanh")


@keras.saving.register_keras_serializable(package="adx")
class DenseAutoencoder(AnomalyModel):
    def __init__(
        self,
        sample_shape: tuple[int, ...],
        hidden_units: Sequence[int] = (64, 32),
        latent_dim: int = 8,
        activation: str = "relu",
        batch_norm: bool = True,
        dropout: float | Sequence[float] = 0.0,
        output_activation: str = "linear",
        **kwargs: Any,
    ):
        super().__init__(sample_shape=sample_shape, **kwargs)
        hidden_units = [int(u) for u in hidden_units]
        dropouts = per_layer_rates(dropout, len(hidden_units))
        if latent_dim < 1 or any(u < 1 for u in hidden_units):
            raise AdxUserError(
                f"model.hidden_units={hidden_units} and latent_dim={latent_dim} must be >= 1"
            )
        for key, value, allowed in (
            ("activation", activation, ACTIVATIONS),
            ("output_activation", output_activation, OUTPUT_ACTIVATIONS),
        ):
            if value not in allowed:
                raise AdxUserError(f"model.{key}={value}; choose one of: {', '.join(allowed)}")
        self.hidden_units = hidden_units
        self.latent_dim = int(latent_dim)
        self.activation = activation
        self.batch_norm = bool(batch_norm)
        self.dropout = dropouts
        self.output_activation = output_activation

        features = int(np.prod(self.sample_shape))
        self.encoder = keras.Sequential(
            [
                keras.Input(self.sample_shape),
                layers.Flatten(),
                *dense_stack(hidden_units, activation, self.batch_norm, dropouts),
                layers.Dense(self.latent_dim, name="latent"),
            ],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [
                keras.Input((self.latent_dim,)),
                *dense_stack(hidden_units[::-1], activation, self.batch_norm, dropouts[::-1]),
                layers.Dense(features, activation=output_activation),
                layers.Reshape(self.sample_shape),
            ],
            name="decoder",
        )

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.decoder(self.encoder(inputs, training=training), training=training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            hidden_units=self.hidden_units,
            latent_dim=self.latent_dim,
            activation=self.activation,
            batch_norm=self.batch_norm,
            dropout=self.dropout,
            output_activation=self.output_activation,
        )
        return config
