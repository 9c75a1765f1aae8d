"""The backbones adx knows and where their weights come from, without TensorFlow.

The table of `keras.applications` networks the feature-embedding detectors
use (models/backbone.py builds them), and the check of
`model.backbone.weights=<path>`, which runs with the config checks before
any data is read (checks.py) and so must not import TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anomaly_cli.errors import AdxUserError

# Where Keras keeps the files it downloads (keras.utils.get_file, cache_subdir="models").
KERAS_CACHE = "~/.keras/models"
_WEIGHTS_ROOT = "https://storage.googleapis.com/tensorflow/keras-applications"
# model.backbone.weights values that are not a path.
IMAGENET, NO_WEIGHTS = "imagenet", "none"


@dataclass(frozen=True)
class Backbone:
    """One keras.applications network: how to build it, its preprocessing, its layers."""

    constructor: str  # keras.applications.<constructor>
    module: str  # keras.applications.<module>.preprocess_input
    # Feature layers from fine to coarse (strides 4, 8, 16 of the input).
    levels: tuple[str, ...]
    weights_file: str  # the no-top ImageNet file Keras downloads
    weights_url: str
    # Smallest side keras.applications builds the network for.
    min_size: int = 32


BACKBONES: dict[str, Backbone] = {
    "resnet50": Backbone(
        "ResNet50",
        "resnet50",
        ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out"),
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_WEIGHTS_ROOT}/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "mobilenet_v2": Backbone(
        "MobileNetV2",
        "mobilenet_v2",
        ("block_2_add", "block_5_add", "block_12_add"),
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        f"{_WEIGHTS_ROOT}/mobilenet_v2/"
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    ),
    "efficientnet_b0": Backbone(
        "EfficientNetB0",
        "efficientnet",
        ("block2b_add", "block3b_add", "block4c_add"),
        "efficientnetb0_notop.h5",
        "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
    ),
}


def weights_fix(name: str) -> str:
    """How to get a backbone's ImageNet weights onto a machine without network."""
    spec = BACKBONES[name]
    return (
        f"on a machine with network run python -c 'import keras; "
        f'keras.applications.{spec.constructor}(include_top=False, weights="imagenet")\' '
        f"(or download {spec.weights_url}), copy {KERAS_CACHE}/{spec.weights_file} here "
        f"and pass model.backbone.weights=<its path>; or model.backbone.weights=none "
        "(random features, far weaker)"
    )


def weights_path_problem(weights: Any) -> str | None:
    """Why model.backbone.weights=<path> cannot be read, or None; without TensorFlow,
    so that configs are checked before data (checks.py)."""
    if weights in (None, IMAGENET, NO_WEIGHTS):
        return None
    path = Path(str(weights)).expanduser()
    if not path.is_file():
        return "is not a file"
    if not path.name.endswith((".h5", ".hdf5")):
        return "is not a Keras weights file (.h5 or .weights.h5)"
    return None


BACKBONE_KEYS = ("name", "layers", "weights")


def check_backbone(key: str, value: Any) -> dict[str, Any]:
    """model.backbone: {name, layers, weights}, missing keys at their defaults."""
    if not isinstance(value, dict) and not hasattr(value, "items"):
        raise AdxUserError(
            f"model.{key}={value} must be a mapping with name, layers and weights, "
            "e.g. model.backbone.name=resnet50"
        )
    given = dict(value.items())
    unknown = sorted(set(given) - set(BACKBONE_KEYS))
    if unknown:
        raise AdxUserError(
            f"model.{key}.{unknown[0]} is not a setting of the backbone; "
            f"its settings are: {', '.join(BACKBONE_KEYS)}"
        )
    name = given.get("name", "resnet50")
    if name not in BACKBONES:
        raise AdxUserError(
            f"model.{key}.name={name} is not a backbone adx knows; "
            f"choose one of: {', '.join(BACKBONES)}"
        )
    layers = given.get("layers")
    if layers is not None:
        if isinstance(layers, str) or not len(layers):
            raise AdxUserError(
                f"model.{key}.layers={layers} must be a list of layer names, e.g. "
                f"[{','.join(BACKBONES[name].levels[:2])}], or null for the defaults"
            )
        layers = [str(layer) for layer in layers]
    weights = given.get("weights", IMAGENET)
    weights = NO_WEIGHTS if weights is None else str(weights)
    return {"name": str(name), "layers": layers, "weights": weights}


def check_backbone_config(model: Any) -> None:
    """model.backbone of a model config that has one: its name, and that a weights
    path is a readable file, before any data is read; the rest when it is built."""
    backbone = model.get("backbone") if hasattr(model, "get") else None
    if backbone is None or not hasattr(backbone, "items"):
        return
    checked = check_backbone("backbone", backbone)
    problem = weights_path_problem(checked["weights"])
    if problem:
        raise AdxUserError(
            f"model.backbone.weights={checked['weights']} {problem}; {weights_fix(checked['name'])}"
        )
