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

from anomaly_cli.models.base import AnomalyModel, require_image_shape
from anomaly_cli.models.blocks import conv_decoder, conv_encoder, doubling_widths


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
        widths = doubling_widths(
            "conv_ae", self.sample_shape, num_hidden_layers, num_filters, latent_dim, dense_units
        )
        self.num_hidden_layers = num_hidden_layers
        self.num_filters = num_filters
        self.dense_units = dense_units
        self.latent_dim = latent_dim

        self.encoder = conv_encoder(self.sample_shape, widths, latent_dim, dense_units)
        self.decoder = conv_decoder(latent_dim, (height, width, channels), widths)

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
