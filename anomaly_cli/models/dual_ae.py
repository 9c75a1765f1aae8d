"""Dual autoencoder: a global and a local MLP encoder feeding one shared decoder.

From seed 002, sec. 3.2.1-3.2.5 (Tables 2 and 3). Each encoder flattens the
sample and applies Dense -> leaky ReLU -> dropout per layer (2048, 1024, 512,
256 in the paper); the two 256-wide codes are concatenated (512) and a shared
decoder (512, 1024, 2048) ends in a sigmoid Dense layer back to every value of
the sample, reshaped to the sample's shape. The paper trains with MSLE
(Eq. 22) and scores with the L2 norm of the reconstruction error (sec. 3.6.1,
Eq. 30), so those are the defaults.

What the "local pixel encoder" (sec. 3.2.2) does differently: the paper
defines it on the same input vec(I) (Eq. 9) with the same depth and widths
(Eq. 13); it only has its own weights and its own dropout rates, tuned apart
from the global encoder's. Sec. 3.2.5 speaks of "different views of the same
input", but no view, crop or transform is given anywhere, so none is
invented here: the local encoder differs by `local_dropout`. The ablation of
sec. 5.2 (`encoders=global | local`) keeps one encoder, whose code alone
feeds the decoder (its input width shrinks to that encoder's latent width).

Slips in the seed settled here:
- Eq. 5 puts dropout on every hidden state, Table 2 none on the 256-wide code;
  one rate follows Table 2 (the latent gets none), a list sets every layer.
- Sec. 3.1 "projects" the fused code before the decoder; no extra layer is
  given for it (Eq. 20, Table 3), so the decoder's first Dense layer is it.
- The pseudocode scores with the squared L2 norm, sec. 3.6.1 with the norm;
  they rank samples identically, and `l2` is the norm.
- The leaky-ReLU slope is not given; 0.2 (Keras' leaky_relu default) is used.
- Eq. 29 samples only the decoder's dropout masks for Monte Carlo scoring;
  adx's scorer switches every McDropout layer on, the encoders' too.
- Table 2 draws a (A, B, 1) grey image; any sample shape works here since the
  sample is flattened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import AnomalyModel, require_shape
from anomaly_cli.models.blocks import per_layer_rates
from anomaly_cli.models.layers import McDropout

ENCODERS = ("both", "global", "local")
Rates = float | Sequence[float]


@keras.saving.register_keras_serializable(package="adx")
class DualAutoencoder(AnomalyModel):
    def __init__(
        self,
        sample_shape: tuple[int, ...],
        encoders: str = "both",
        encoder_units: Sequence[int] = (2048, 1024, 512, 256),
        decoder_units: Sequence[int] = (512, 1024, 2048),
        dropout: Rates = 0.1,
        local_dropout: Rates | None = None,
        decoder_dropout: Rates | None = None,
        leaky_relu_slope: float = 0.2,
        loss: str = "msle",
        score: str = "l2",
        **kwargs: Any,
    ):
        super().__init__(sample_shape=sample_shape, loss=loss, score=score, **kwargs)
        require_shape("dual_ae", self.sample_shape, "any")
        if encoders not in ENCODERS:
            raise AdxUserError(f"model.encoders={encoders}; choose one of: {', '.join(ENCODERS)}")
        encoder_units = [int(u) for u in encoder_units]
        decoder_units = [int(u) for u in decoder_units]
        for key, units in (("encoder_units", encoder_units), ("decoder_units", decoder_units)):
            if not units or any(u < 1 for u in units):
                raise AdxUserError(
                    f"model.{key}={units} needs at least one layer, every width >= 1"
                )
        if not 0 <= float(leaky_relu_slope) < 1:
            raise AdxUserError(
                f"model.leaky_relu_slope={leaky_relu_slope} must lie in [0, 1), e.g. 0.2"
            )
        self.encoders = encoders
        self.encoder_units = encoder_units
        self.decoder_units = decoder_units
        self.dropout = _encoder_rates(dropout, encoder_units, "dropout")
        self.local_dropout = (
            list(self.dropout)
            if local_dropout is None
            else _encoder_rates(local_dropout, encoder_units, "local_dropout")
        )
        if decoder_dropout is None:
            if not isinstance(dropout, (int, float)):
                raise AdxUserError(
                    "model.decoder_dropout=null reuses model.dropout's single rate; with one "
                    "rate per encoder layer give model.decoder_dropout its own rate(s)"
                )
            decoder_dropout = float(dropout)
        self.decoder_dropout = per_layer_rates(
            decoder_dropout, len(decoder_units), "decoder_dropout"
        )
        self.leaky_relu_slope = float(leaky_relu_slope)

        inputs = keras.Input(self.sample_shape)
        self.global_encoder = (
            self._mlp_encoder(self.dropout, "global_encoder") if encoders != "local" else None
        )
        self.local_encoder = (
            self._mlp_encoder(self.local_dropout, "local_encoder") if encoders != "global" else None
        )
        codes = [enc(inputs) for enc in (self.global_encoder, self.local_encoder) if enc]
        fused = layers.Concatenate(name="fused_latent")(codes) if len(codes) > 1 else codes[0]
        # One `encoder` sub-model, as in the other detectors, gives the fused code.
        self.encoder = keras.Model(inputs, fused, name="encoder")
        self.latent_dim = encoder_units[-1] * len(codes)
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
                *self._hidden(self.encoder_units, rates),
            ],
            name=name,
        )

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.decoder(self.encoder(inputs, training=training), training=training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            encoders=self.encoders,
            encoder_units=self.encoder_units,
            decoder_units=self.decoder_units,
            dropout=self.dropout,
            local_dropout=self.local_dropout,
            decoder_dropout=self.decoder_dropout,
            leaky_relu_slope=self.leaky_relu_slope,
        )
        return config


def _encoder_rates(dropout: Rates, units: Sequence[int], key: str) -> list[float]:
    """One rate goes to every encoder layer but the code (Table 2); a list sets each."""
    if isinstance(dropout, (int, float)):
        return [*per_layer_rates(dropout, len(units) - 1, key), 0.0]
    return per_layer_rates(dropout, len(units), key)
