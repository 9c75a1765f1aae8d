"""U-Net autoencoder (seed 000, section 6): a convolutional autoencoder whose
decoder also sees the encoder's feature maps through skip connections.

Down blocks of two 3x3 convs and a 2x2 max-pool, a bottleneck, up blocks that
concatenate the matching down block's output (per-level `skip_connections`),
a 1x1 sigmoid output; scored by reconstruction error.
See docs/models/unet.md (the seed's slips, failure modes, numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import keras
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import ReconstructionModel
from anomaly_cli.models.blocks import check_divisible
from anomaly_cli.models.hyperparameters import Hyperparameter, choice, flag, integer, number
from anomaly_cli.models.layers import McDropout
from anomaly_cli.models.windows import WINDOW_SETTINGS

UPSAMPLING = ("upsample", "transpose")


@keras.saving.register_keras_serializable(package="adx")
class UNetAutoencoder(ReconstructionModel):
    model_name = "unet"
    accepts = "image"
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        # Down blocks (and up blocks).
        "num_hidden_layers": Hyperparameter(3, integer(minimum=1)),
        # Width of the first level, doubled per level.
        "filters": Hyperparameter(32, integer(minimum=1)),
        # One switch for every level, or one per level (checked in __init__).
        "skip_connections": Hyperparameter(True),
        "upsampling": Hyperparameter("upsample", choice(UPSAMPLING)),
        "batch_norm": Hyperparameter(False, flag),
        "dropout": Hyperparameter(0.0, number(0, 1, high_open=True, hint=", e.g. 0.1")),
        **WINDOW_SETTINGS,
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        height, width, channels = self.network_shape
        depth = self.num_hidden_layers
        check_divisible(
            self.model_name,
            height,
            width,
            2**depth,
            f"num_hidden_layers={depth}",
            self.network_shape_source,
        )
        self.skip_connections = _per_level(self.skip_connections, depth)
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
        widths = [self.filters * 2**level for level in range(self.num_hidden_layers + 1)]
        inputs = keras.Input(self.network_shape)
        x, skips = inputs, []
        for level in range(self.num_hidden_layers):
            x = self._conv_pair(x, widths[level], f"down{level + 1}")
            skips.append(x)
            x = layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
        x = self._conv_pair(x, widths[self.num_hidden_layers], "bottleneck")
        # Up blocks are numbered by the level they return to, so up1 ends at full size.
        for level in reversed(range(self.num_hidden_layers)):
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
            f"(num_hidden_layers={depth}), outermost (full resolution) first"
        )
    return switches
