"""Dense (MLP) autoencoder for table rows (seed 003), also usable on any sample.

The sample is flattened; each hidden layer is Dense -> optional BatchNorm ->
optional Dropout, the decoder mirrors the widths, and the output layer is
linear by default; scored by reconstruction error.
See docs/models/dense_ae.md (source, departures from it, numbers).
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np
from keras import layers

from anomaly_cli.models.base import ReconstructionModel
from anomaly_cli.models.blocks import dense_stack, per_layer_rates
from anomaly_cli.models.hyperparameters import Hyperparameter, choice, flag, integer, widths

ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu", "gelu", "selu")
OUTPUT_ACTIVATIONS = ("linear", "sigmoid", "tanh")


@keras.saving.register_keras_serializable(package="adx")
class DenseAutoencoder(ReconstructionModel):
    model_name = "dense_ae"
    accepts = "any"
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        "units": Hyperparameter([64, 32], widths(non_empty=False)),
        "latent_dim": Hyperparameter(8, integer(minimum=1)),
        "activation": Hyperparameter("relu", choice(ACTIVATIONS)),
        "batch_norm": Hyperparameter(True, flag),
        # One rate for every hidden layer, or one per layer (checked with units).
        "dropout": Hyperparameter(0.0),
        "output_activation": Hyperparameter("linear", choice(OUTPUT_ACTIVATIONS)),
        # Seed 003 trained with mae.
        "loss": Hyperparameter("mae", attribute="loss_name"),
        "score": Hyperparameter("mae", attribute="score_name"),
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        self.dropout = per_layer_rates(self.dropout, len(self.units))
        activation = self.activation

        features = int(np.prod(self.sample_shape))
        self.encoder = keras.Sequential(
            [
                keras.Input(self.sample_shape),
                layers.Flatten(),
                *dense_stack(self.units, activation, self.batch_norm, self.dropout),
                layers.Dense(self.latent_dim, name="latent"),
            ],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [
                keras.Input((self.latent_dim,)),
                *dense_stack(self.units[::-1], activation, self.batch_norm, self.dropout[::-1]),
                layers.Dense(features, activation=self.output_activation),
                layers.Reshape(self.sample_shape),
            ],
            name="decoder",
        )

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.decoder(self.encoder(inputs, training=training), training=training)
