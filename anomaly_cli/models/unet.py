"""U-Net autoencoder: a convolutional autoencoder whose decoder also sees the
encoder's feature maps through skip connections.

From seed 000, section 6 ("U-Net Autoencoder"). Each of `depth` down blocks is
two 3x3 ReLU convolutions and a 2x2 max-pool; a bottleneck of two more
convolutions follows; each of `depth` up blocks doubles the resolution
(nearest-neighbour upsampling, or a 2x2 transposed convolution), concatenates
the down block's output of that level (the skip connection) and applies two
3x3 convolutions; a 1x1 sigmoid convolution maps back to the input's channels.
Widths start at `base_filters` and double per level: the seed's 32, 64, 128
with a 256-wide bottleneck for depth 3. Optional BatchNormalization and
(Monte Carlo) dropout follow the shared block order: conv -> BN, dropout once
at the end of each block.

A word of warning for users: skip connections let a U-Net carry its input
almost unchanged to the output, so it can reconstruct an anomaly as well as a
normal sample and then fails to flag it. `skip_connections` (one boolean per
level, outermost = full resolution first, or one boolean for all) drops skips;
dropping the full-resolution one forces fine detail through the bottleneck.
The default keeps all of them, the seed's design.

Without `batch_norm` (the seed had none), images that are mostly black
(dataset=synthetic's blobs) can drive the sigmoid output to a constant 0 within
the first epoch: the loss then stays at the mean squared pixel value and never
recovers, yet a bright anomaly still scores high, so a good AUROC alone does not
show the model learnt. `batch_norm=true` trains reliably there; dataset=digits
trains without it, as the seed's natural photos did.

Slips in the seed settled here: it compiled the network inside its constructor
with a fixed Adam(1e-3) (adx compiles with the configured optimizer), and
wrapped a functional model in a subclass without a config, so it could not be
saved and reloaded; its three up blocks were numbered in reverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import AnomalyModel, require_image_shape
from anomaly_cli.models.blocks import check_divisible
from anomaly_cli.models.layers import McDropout

UPSAMPLING = ("upsample", "transpose")


@keras.saving.register_keras_serializable(package="adx")
class UNetAutoencoder(AnomalyModel):
    def __init__(
        self,
        sample_shape: tuple[int, ...],
        depth: int = 3,
        base_filters: int = 32,
        skip_connections: bool | Sequence[bool] = True,
        upsampling: str = "upsample",
        batch_norm: bool = False,
        dropout: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(sample_shape=sample_shape, **kwargs)
        height, width, channels = require_image_shape("unet", self.sample_shape)
        if isinstance(depth, bool) or int(depth) < 1 or int(base_filters) < 1:
            raise AdxUserError(
                f"model.depth={depth} and model.base_filters={base_filters} must be >= 1"
            )
        depth, base_filters = int(depth), int(base_filters)
        if upsampling not in UPSAMPLING:
            raise AdxUserError(
                f"model.upsampling={upsampling}; choose one of: {', '.join(UPSAMPLING)}"
            )
        if not 0 <= float(dropout) < 1:
            raise AdxUserError(f"model.dropout={dropout} must lie in [0, 1), e.g. 0.1")
        check_divisible("unet", height, width, 2**depth, f"depth={depth}")
        self.depth = depth
        self.base_filters = base_filters
        self.skip_connections = _per_level(skip_connections, depth)
        self.upsampling = upsampling
        self.batch_norm = bool(batch_norm)
        self.dropout = float(dropout)
        self.network = self._build_network(channels)

    def _conv_pair(self, x: Any, filters: int, name: str) -> Any:
        for i in (1, 2):
            x = layers.Conv2D(
                filters, 3, padding="same", activation="relu", name=f"{name}_conv{i}"
            )(x)
            if self.batch_norm:
                x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        if self.dropout:
            x = McDropout(self.dropout, name=f"{name}_dropout")(x)
        return x

    def _build_network(self, channels: int) -> keras.Model:
        widths = [self.base_filters * 2**level for level in range(self.depth + 1)]
        inputs = keras.Input(self.sample_shape)
        x, skips = inputs, []
        for level in range(self.depth):
            x = self._conv_pair(x, widths[level], f"down{level + 1}")
            skips.append(x)
            x = layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
        x = self._conv_pair(x, widths[self.depth], "bottleneck")
        # Up blocks are numbered by the level they return to, so up1 ends at full size.
        for level in reversed(range(self.depth)):
            name = f"up{level + 1}"
            if self.upsampling == "transpose":
                x = layers.Conv2DTranspose(
                    widths[level], 2, strides=2, activation="relu", name=f"{name}_upsample"
                )(x)
            else:
                x = layers.UpSampling2D(2, name=f"{name}_upsample")(x)
            if self.skip_connections[level]:
                x = layers.Concatenate(name=f"{name}_concat")([x, skips[level]])
            x = self._conv_pair(x, widths[level], name)
        outputs = layers.Conv2D(channels, 1, activation="sigmoid", name="output")(x)
        return keras.Model(inputs, outputs, name="unet")

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.network(inputs, training=training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            depth=self.depth,
            base_filters=self.base_filters,
            skip_connections=self.skip_connections,
            upsampling=self.upsampling,
            batch_norm=self.batch_norm,
            dropout=self.dropout,
        )
        return config


def _per_level(skips: bool | Sequence[bool], depth: int) -> list[bool]:
    """One switch for every level, or a list with one per level (outermost first)."""
    if isinstance(skips, bool):
        return [skips] * depth
    if isinstance(skips, (str, bytes)) or not isinstance(skips, Sequence):
        raise AdxUserError(
            f"model.skip_connections={skips} must be true, false or a list of {depth} of them"
        )
    switches = list(skips)
    if len(switches) != depth or not all(isinstance(s, bool) for s in switches):
        raise AdxUserError(
            f"model.skip_connections={switches} needs one true/false per level "
            f"(depth={depth}), outermost (full resolution) first"
        )
    return switches
