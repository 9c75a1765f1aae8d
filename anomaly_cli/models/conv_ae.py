"""Vanilla convolutional autoencoder (seed 000, the Caltech101 notebook).

Strided 3x3 convolutions whose filter count doubles per layer, optional dense
layers (`units`), the latent vector, and a mirrored decoder whose filter count
halves per layer, ending in a sigmoid convolution; scored by reconstruction
error. See docs/models/conv_ae.md (source, departures from it, numbers).
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras

from anomaly_cli.models.base import ReconstructionModel
from anomaly_cli.models.blocks import conv_decoder, conv_encoder, conv_widths
from anomaly_cli.models.hyperparameters import (
    Hyperparameter,
    conv_stack,
)
from anomaly_cli.models.windows import WINDOW_SETTINGS


@keras.saving.register_keras_serializable(package="adx")
class ConvAutoencoder(ReconstructionModel):
    model_name = "conv_ae"
    accepts = "image"
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        **conv_stack(filters=32, latent_dim=16, units=[256]),
        **WINDOW_SETTINGS,
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        conv = conv_widths(
            self.model_name,
            self.network_shape,
            self.num_hidden_layers,
            self.filters,
            self.network_shape_source,
        )
        self.encoder = conv_encoder(self.network_shape, conv, self.latent_dim, self.units)
        self.decoder = conv_decoder(self.latent_dim, self.network_shape, conv)

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.decoder(self.encoder(inputs, training=training), training=training)
