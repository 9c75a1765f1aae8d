"""Vanilla convolutional autoencoder (seed 000), with the notebook's slips fixed.

Encoder: `num_hidden_layers` strided 3x3 convolutions whose filter count
doubles per layer, flatten, an optional dense layer, the latent vector.
Decoder: the mirror image, whose filter count halves per layer (the
notebook's `num_filter // 2` discarded its result, so every transposed
convolution had the largest width, and its reshape hard-coded 128 channels),
ending in a 3x3 sigmoid convolution back to the input's channels.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import AnomalyModel, require_image_shape


@keras.saving.register_keras_serializable(package="adx")
class ConvAutoencoder(AnomalyModel):
    def __init__(
        self,
        sample_shape: tuple[int, ...],
        num_hidden_layers: int = 3,
        num_filters: int = 32,
        dense_units: int = 256,
        latent_dim: int = 16,
        **kwargs: Any,
    ):
        super().__init__(sample_shape=sample_shape, **kwargs)
        height, width, channels = require_image_shape("conv_ae", self.sample_shape)
        if num_hidden_layers < 1 or num_filters < 1 or latent_dim < 1 or dense_units < 0:
            raise AdxUserError(
                "model.num_hidden_layers, num_filters and latent_dim must be >= 1 "
                "and dense_units >= 0"
            )
        factor = 2**num_hidden_layers
        if height % factor or width % factor:
            raise AdxUserError(
                f"model=conv_ae with num_hidden_layers={num_hidden_layers} needs image sides "
                f"divisible by {factor}; the dataset gives {height}x{width}"
            )
        self.num_hidden_layers = num_hidden_layers
        self.num_filters = num_filters
        self.dense_units = dense_units
        self.latent_dim = latent_dim

        widths = [num_filters * 2**i for i in range(num_hidden_layers)]
        conv = {"kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"}
        dense = [layers.Dense(dense_units, activation="relu")] if dense_units else []
        self.encoder = keras.Sequential(
            [
                keras.Input(self.sample_shape),
                *(layers.Conv2D(w, **conv) for w in widths),
                layers.Flatten(),
                *dense,
                layers.Dense(latent_dim, name="latent"),
            ],
            name="encoder",
        )
        start = (height // factor, width // factor, widths[-1])
        self.decoder = keras.Sequential(
            [
                keras.Input((latent_dim,)),
                layers.Dense(start[0] * start[1] * start[2], activation="relu"),
                layers.Reshape(start),
                *(layers.Conv2DTranspose(w, **conv) for w in reversed(widths)),
                layers.Conv2D(channels, 3, padding="same", activation="sigmoid"),
            ],
            name="decoder",
        )

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.decoder(self.encoder(inputs, training=training), training=training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_hidden_layers=self.num_hidden_layers,
            num_filters=self.num_filters,
            dense_units=self.dense_units,
            latent_dim=self.latent_dim,
        )
        return config
