"""Layer stacks shared by the detectors: conv encoders/decoders and dense stacks.

Built as keras.Sequential sub-models so each model keeps an `encoder` and a
`decoder` attribute that tests and scoring can call on their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.layers import McDropout

# BatchNorm's moving-average momentum: PyTorch's default (0.1 there, its name for
# 1 - momentum), which Ruff's Deep SVDD and GANomaly train with. Keras' own 0.99
# leaves the inference-time statistics near their initial values for hundreds of
# steps, so a short run scores with statistics the network never trained with
# (Deep SVDD on planted images: AUROC 0.59-0.80 with 0.99, 1.0 with 0.9).
BATCH_NORM_MOMENTUM = 0.9
# Where image sides come from, in divisibility errors, unless windows cut them.
DATASET_SIDES = "the dataset gives"


def per_layer_rates(
    dropout: float | Sequence[float], count: int, key: str = "dropout"
) -> list[float]:
    """One dropout rate for every layer, or a list with one rate per layer."""
    if isinstance(dropout, (int, float)):
        rates = [float(dropout)] * count
    else:
        rates = [float(r) for r in dropout]
        if len(rates) != count:
            raise AdxUserError(f"model.{key}={rates} needs one rate per hidden layer ({count})")
    if any(not 0 <= r < 1 for r in rates):
        raise AdxUserError(f"model.{key}={dropout} rates must lie in [0, 1)")
    return rates


def check_divisible(
    model_name: str,
    height: int,
    width: int,
    factor: int,
    setting: str,
    source: str = DATASET_SIDES,
) -> None:
    """Strided or pooled stacks need image sides that halve cleanly at every level.
    `source` says where the sides come from (the dataset, or model.window_size)."""
    if height % factor or width % factor:
        raise AdxUserError(
            f"model={model_name} with {setting} needs image sides divisible by {factor}; "
            f"{source} {height}x{width}"
        )


def conv_widths(
    model_name: str,
    image_shape: tuple[int, ...],
    num_hidden_layers: int,
    filters: int | Sequence[int],
    source: str = DATASET_SIDES,
) -> list[int]:
    """Filters of a strided conv stack of num_hidden_layers layers: an int is the
    first layer's width, doubled per layer; a list gives each layer's. Checks
    that the image halves cleanly num_hidden_layers times."""
    if isinstance(filters, int):
        widths = [int(filters) * 2**i for i in range(int(num_hidden_layers))]
    else:
        widths = [int(f) for f in filters]
        if len(widths) != num_hidden_layers:
            raise AdxUserError(
                f"model.filters={widths} needs one width per conv layer "
                f"(num_hidden_layers={num_hidden_layers}), or one int doubled per layer"
            )
    height, width = int(image_shape[0]), int(image_shape[1])
    check_divisible(
        model_name,
        height,
        width,
        2**num_hidden_layers,
        f"num_hidden_layers={num_hidden_layers}",
        source,
    )
    return widths


def _normalised(
    layer: layers.Layer, batch_norm: bool, use_bias: bool, rate: float
) -> list[layers.Layer]:
    """layer (activation inside) -> [BatchNorm] -> [McDropout], seed 003's order.
    BatchNorm has no affine shift or scale when the stack has no biases: Deep
    SVDD needs a bias-free network."""
    stack: list[layers.Layer] = [layer]
    if batch_norm:
        stack.append(
            layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, center=use_bias, scale=use_bias)
        )
    if rate:
        stack.append(McDropout(rate))
    return stack


def dense_stack(
    widths: Sequence[int],
    activation: str = "relu",
    batch_norm: bool = False,
    dropout: float | Sequence[float] = 0.0,
    use_bias: bool = True,
) -> list[layers.Layer]:
    """Dense -> [BatchNorm] -> [McDropout], once per width."""
    rates = per_layer_rates(dropout, len(widths))
    stack: list[layers.Layer] = []
    for width, rate in zip(widths, rates, strict=True):
        dense = layers.Dense(int(width), activation=activation, use_bias=use_bias)
        stack += _normalised(dense, batch_norm, use_bias, rate)
    return stack


def conv_encoder(
    sample_shape: tuple[int, ...],
    widths: Sequence[int],
    latent_dim: int,
    units: Sequence[int] = (),
    activation: str = "relu",
    batch_norm: bool = False,
    dropout: float = 0.0,
    use_bias: bool = True,
    name: str = "encoder",
) -> keras.Sequential:
    """Strided 3x3 convolutions (one per width), flatten, a Dense layer per units
    entry, latent vector."""
    stack: list[layers.Layer] = []
    for width in widths:
        conv = layers.Conv2D(
            int(width),
            3,
            strides=2,
            padding="same",
            activation=activation,
            use_bias=use_bias,
        )
        stack += _normalised(conv, batch_norm, use_bias, dropout)
    stack.append(layers.Flatten())
    stack += dense_stack(units, activation, batch_norm, dropout, use_bias)
    return keras.Sequential(
        [
            keras.Input(tuple(sample_shape)),
            *stack,
            layers.Dense(int(latent_dim), use_bias=use_bias, name="latent"),
        ],
        name=name,
    )


def conv_decoder(
    latent_dim: int,
    image_shape: tuple[int, int, int],
    widths: Sequence[int],
    activation: str = "relu",
    batch_norm: bool = False,
    dropout: float = 0.0,
    output_activation: str = "sigmoid",
    use_bias: bool = True,
    name: str = "decoder",
) -> keras.Sequential:
    """The mirror of conv_encoder: dense to the smallest feature map, one strided
    transposed convolution per width (widths given in encoder order), then a
    3x3 convolution back to the image's channels."""
    height, width, channels = image_shape
    factor = 2 ** len(widths)
    start = (height // factor, width // factor, int(widths[-1]))
    dense = layers.Dense(start[0] * start[1] * start[2], activation=activation, use_bias=use_bias)
    stack = _normalised(dense, batch_norm, use_bias, dropout)
    stack.append(layers.Reshape(start))
    for w in reversed(widths):
        conv = layers.Conv2DTranspose(
            int(w),
            3,
            strides=2,
            padding="same",
            activation=activation,
            use_bias=use_bias,
        )
        stack += _normalised(conv, batch_norm, use_bias, dropout)
    return keras.Sequential(
        [
            keras.Input((int(latent_dim),)),
            *stack,
            layers.Conv2D(
                channels, 3, padding="same", activation=output_activation, use_bias=use_bias
            ),
        ],
        name=name,
    )
