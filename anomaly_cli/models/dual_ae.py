"""Dual autoencoder (seed 002, sec. 3.2): a global and a local MLP encoder read
the flattened sample, and one shared decoder rebuilds it from their
concatenated codes through a sigmoid. Trained with MSLE (Eq. 22); scored by
the L2 norm of the reconstruction error (sec. 3.6.1, Eq. 30).
See docs/models/dual_ae.md (the paper's gaps and slips, numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import keras
import numpy as np
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import ReconstructionModel
from anomaly_cli.models.blocks import per_layer_rates
from anomaly_cli.models.hyperparameters import Hyperparameter, choice, number, widths
from anomaly_cli.models.layers import McDropout

ENCODERS = ("both", "global", "local")
Rates = float | Sequence[float]


@keras.saving.register_keras_serializable(package="adx")
class DualAutoencoder(ReconstructionModel):
    model_name = "dual_ae"
    accepts = "any"
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        "encoders": Hyperparameter("both", choice(ENCODERS)),
        # Each encoder's widths, the last its code; the decoder's are set apart
        # (the paper's Table 3), not mirrored as in dense_ae.
        "units": Hyperparameter([2048, 1024, 512, 256], widths()),
        "decoder_units": Hyperparameter([512, 1024, 2048], widths()),
        # Rates are checked against the widths in __init__.
        "dropout": Hyperparameter(0.1),
        "local_dropout": Hyperparameter(None),
        "decoder_dropout": Hyperparameter(None),
        "leaky_relu_slope": Hyperparameter(0.2, number(0, 1, high_open=True, hint=", e.g. 0.2")),
        "loss": Hyperparameter("msle", attribute="loss_name"),
        "score": Hyperparameter("l2", attribute="score_name"),
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        units, decoder_units, dropout = self.units, self.decoder_units, self.dropout
        self.dropout = _encoder_rates(dropout, units, "dropout")
        self.local_dropout = (
            list(self.dropout)
            if self.local_dropout is None
            else _encoder_rates(self.local_dropout, units, "local_dropout")
        )
        decoder_dropout = self.decoder_dropout
        if decoder_dropout is None:
            if not isinstance(dropout, int | float):
                raise AdxUserError(
                    "model.decoder_dropout=null reuses model.dropout's single rate; with one "
                    "rate per encoder layer give model.decoder_dropout its own rate(s)"
                )
            decoder_dropout = float(dropout)
        self.decoder_dropout = per_layer_rates(
            decoder_dropout, len(decoder_units), "decoder_dropout"
        )

        inputs = keras.Input(self.sample_shape)
        self.global_encoder = (
            self._mlp_encoder(self.dropout, "global_encoder") if self.encoders != "local" else None
        )
        self.local_encoder = (
            self._mlp_encoder(self.local_dropout, "local_encoder")
            if self.encoders != "global"
            else None
        )
        codes = [enc(inputs) for enc in (self.global_encoder, self.local_encoder) if enc]
        fused = layers.Concatenate(name="fused_latent")(codes) if len(codes) > 1 else codes[0]
        # One `encoder` sub-model, as in the other detectors, gives the fused code.
        self.encoder = keras.Model(inputs, fused, name="encoder")
        self.latent_dim = units[-1] * len(codes)
        self.decoder = keras.Sequential(
            [
                keras.Input((self.latent_dim,)),
                *self._hidden(decoder_units, self.decoder_dropout),
                layers.Dense(int(np.prod(self.sample_shape)), activation="sigmoid"),
                layers.Reshape(self.sample_shape),
            ],
            name="decoder",
        )

    def _hidden(self, widths: Sequence[int], rates: Sequence[float]) -> list[layers.Layer]:
        """Dense -> leaky ReLU -> [McDropout] per width (Eqs. 4-5, 10-11, 16-17).

        blocks.dense_stack takes an activation name, and "leaky_relu" fixes the
        slope at 0.2, so the configurable slope needs its own layer.
        """
        stack: list[layers.Layer] = []
        for width, rate in zip(widths, rates, strict=True):
            stack += [layers.Dense(width), layers.LeakyReLU(negative_slope=self.leaky_relu_slope)]
            if rate:
                stack.append(McDropout(rate))
        return stack

    def _mlp_encoder(self, rates: Sequence[float], name: str) -> keras.Sequential:
        return keras.Sequential(
            [
                keras.Input(self.sample_shape),
                layers.Flatten(),
                *self._hidden(self.units, rates),
            ],
            name=name,
        )

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.decoder(self.encoder(inputs, training=training), training=training)


def _encoder_rates(dropout: Rates, units: Sequence[int], key: str) -> list[float]:
    """One rate goes to every encoder layer but the code (Table 2); a list sets each."""
    if isinstance(dropout, (int, float)):
        return [*per_layer_rates(dropout, len(units) - 1, key), 0.0]
    return per_layer_rates(dropout, len(units), key)
