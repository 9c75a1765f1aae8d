"""Pretrained feature extractors for the feature-embedding detectors (PaDiM, PatchCore).

A backbone is a `keras.applications` network cut after the layers whose
feature maps a detector compares: `model.backbone.name` picks one from
`BACKBONES` (each with its input preprocessing and its default layers, from
fine to coarse), `model.backbone.layers` names others, and
`model.backbone.weights` says where its weights come from: `imagenet` (Keras
downloads the no-top file once and caches it in ~/.keras/models/), `none`
(randomly initialised, drawn from the seeded generators: tests, and machines
that cannot download), or the path of a weights file (for machines without
network). Whatever it was started from, the cut network is part of the
detector, so its .keras checkpoint holds every weight it scores with and a
reload never downloads anything.

`FeatureEmbeddingModel` is what both detectors share: images in [0, 1],
grayscale repeated to three channels, the backbone's own preprocessing, the
per-pixel map (upsampled to the image and Gaussian-smoothed) and the
one-pass fit (`fits_in_one_pass`, see training/fit.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from anomaly_cli.errors import AdxUserError, first_lines
from anomaly_cli.models.backbone_weights import (
    BACKBONES,
    IMAGENET,
    NO_WEIGHTS,
    check_backbone,
    weights_fix,
    weights_path_problem,
)
from anomaly_cli.models.base import AnomalyModel
from anomaly_cli.models.hyperparameters import Hyperparameter, number

# True while a checkpoint is being loaded: its file holds the weights, so
# building the backbone must not download or read any.
_RESTORING: contextvars.ContextVar[bool] = contextvars.ContextVar("restoring", default=False)


def build_extractor(
    backbone: dict[str, Any], image_size: tuple[int, int], layers: list[str]
) -> keras.Model:
    """The backbone cut after `layers`: float images in [0, 255] with 3 channels ->
    one feature map per layer. Its weights: see the module docstring."""
    spec = BACKBONES[backbone["name"]]
    full = getattr(keras.applications, spec.constructor)(
        include_top=False, weights=None, input_shape=(*image_size, 3)
    )
    known = {layer.name for layer in full.layers}
    for layer in layers:  # before any download
        if layer not in known:
            raise AdxUserError(
                f"model.backbone.layers names {layer}, which {backbone['name']} does not have; "
                f"its default layers are: {', '.join(spec.levels)}"
            )
    if not _RESTORING.get():
        _load_weights(full, backbone)
    outputs = [full.get_layer(layer).output for layer in layers]
    return keras.Model(full.input, outputs, name=f"{backbone['name']}_features")


def _load_weights(full: keras.Model, backbone: dict[str, Any]) -> None:
    name, weights = backbone["name"], backbone["weights"]
    spec = BACKBONES[name]
    if weights == NO_WEIGHTS:
        return
    if weights == IMAGENET:
        try:
            path = keras.utils.get_file(spec.weights_file, spec.weights_url, cache_subdir="models")
        except Exception as error:  # Keras raises a bare Exception on a failed fetch
            raise AdxUserError(
                f"model.backbone.weights=imagenet: the ImageNet weights of {name} could not be "
                f"downloaded ({_fetch_reason(error)}); {weights_fix(name)}"
            ) from None
    else:
        problem = weights_path_problem(weights)
        if problem:
            raise AdxUserError(f"model.backbone.weights={weights} {problem}; {weights_fix(name)}")
        path = str(Path(weights).expanduser())
    try:
        full.load_weights(path)
    except Exception as error:  # h5py, shape and layer-count errors alike
        raise AdxUserError(
            f"model.backbone.weights={weights} could not be loaded into {name} "
            f"({first_lines(error)[:120]}); pass the no-top weights of {name} "
            f"({spec.weights_file}, or a file saved by save_weights of the same network)"
        ) from None


def _fetch_reason(error: Exception) -> str:
    """Why a download failed, without the URL Keras repeats (the fix names it)."""
    text = first_lines(error)
    return text.rsplit(" -- ", 1)[-1][:120] if " -- " in text else text[:120]


def gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(4 * sigma + 0.5))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)


def smooth(maps: tf.Tensor, sigma: float) -> tf.Tensor:
    """Gaussian blur of (N, H, W) maps, edges mirrored; each map on its own."""
    if not sigma:
        return maps
    kernel = gaussian_kernel(sigma)
    radius = len(kernel) // 2
    x = maps[..., None]
    for axis in (1, 2):
        # Mirror at most the side's length (SYMMETRIC allows no more); repeat beyond.
        side = int(x.shape[axis])
        pad = min(radius, side)
        paddings = [[0, 0], [0, 0], [0, 0], [0, 0]]
        paddings[axis] = [pad, pad]
        x = tf.pad(x, paddings, mode="SYMMETRIC")
        if pad < radius:
            paddings[axis] = [radius - pad, radius - pad]
            x = tf.pad(x, paddings, mode="SYMMETRIC")
        shape = (len(kernel), 1, 1, 1) if axis == 1 else (1, len(kernel), 1, 1)
        x = tf.nn.conv2d(x, tf.constant(kernel.reshape(shape)), strides=1, padding="VALID")
    return x[..., 0]


class FeatureEmbeddingModel(AnomalyModel):
    """An image detector on a pretrained backbone's features, fitted in one pass.

    Subclasses say which backbone levels they use by default (`default_levels`),
    turn the feature maps into one embedding map (`embed`), define
    `fit_statistics` and the per-position distance (`patch_distances`).
    """

    accepts = "image"
    fits_in_one_pass = True
    # Indices into the backbone's `levels` used when model.backbone.layers is null.
    default_levels: ClassVar[tuple[int, ...]] = (0, 1)
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        "backbone": Hyperparameter(
            {"name": "resnet50", "layers": None, "weights": IMAGENET}, check_backbone
        ),
        "map_sigma": Hyperparameter(4.0, number(0, hint=" (pixels; 0: no smoothing)")),
    }

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        height, width, channels = self.sample_shape
        spec = BACKBONES[self.backbone["name"]]
        if min(height, width) < spec.min_size:
            raise AdxUserError(
                f"dataset.preprocess.image_size={min(height, width)} is smaller than "
                f"{self.backbone['name']} takes ({spec.min_size} px); set "
                f"dataset.preprocess.image_size={spec.min_size} or more (ImageNet weights "
                "were trained at 224)"
            )
        if channels not in (1, 3):
            raise AdxUserError(
                f"model={self.model_name} needs grayscale or RGB images; the dataset gives "
                f"{channels} channels"
            )
        self.feature_layers = self.backbone["layers"] or [
            spec.levels[i] for i in self.default_levels
        ]
        self.extractor = build_extractor(self.backbone, (height, width), self.feature_layers)
        shapes = [tuple(t.shape[1:]) for t in _as_list(self.extractor.output)]
        # Every layer's map is brought to the finest grid (the first layer's).
        self.grid: tuple[int, int] = (int(shapes[0][0]), int(shapes[0][1]))
        self.feature_channels = sum(int(s[-1]) for s in shapes)

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> AnomalyModel:
        """A checkpoint holds the backbone's weights: nothing is downloaded or read."""
        with restoring():
            return super().from_config(config, custom_objects)

    def features(self, images: Any) -> list[Any]:
        """The backbone's feature maps of images in [0, 1] (N, H, W, 1 or 3)."""
        x = keras.ops.cast(images, "float32")
        if self.sample_shape[-1] == 1:
            x = keras.ops.repeat(x, 3, axis=-1)
        module = getattr(keras.applications, BACKBONES[self.backbone["name"]].module)
        x = module.preprocess_input(x * 255.0)
        return [keras.ops.cast(f, "float32") for f in _as_list(self.extractor(x))]

    def on_grid(self, feature_maps: list[Any]) -> list[Any]:
        return [
            f
            if tuple(f.shape[1:3]) == self.grid
            else keras.ops.image.resize(f, self.grid, interpolation="bilinear")
            for f in feature_maps
        ]

    # Scoring.
    @property
    def produces_maps(self) -> bool:
        return True

    def patch_distances(self, x: np.ndarray) -> tf.Tensor:
        """(N, grid height, grid width) distances of each position to the normal ones."""
        raise NotImplementedError

    def map_batch(self, x: np.ndarray) -> np.ndarray:
        distances = self.patch_distances(x)
        upsampled = tf.image.resize(distances[..., None], self.sample_shape[:2], "bilinear")
        return np.asarray(smooth(upsampled[..., 0], self.map_sigma), dtype=np.float32)

    def fit_statistics(self, samples: tf.data.Dataset) -> AnomalyModel:
        raise NotImplementedError(f"{type(self).__name__} must define fit_statistics")


@contextlib.contextmanager
def restoring() -> Iterator[None]:
    token = _RESTORING.set(True)
    try:
        yield
    finally:
        _RESTORING.reset(token)


def _as_list(outputs: Any) -> list[Any]:
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


def chunk_rows(total_bytes_per_row: int, budget_bytes: int = 256 * 2**20) -> int:
    """Rows of a chunk that keep a (rows x something) float32 block under budget."""
    return max(1, math.floor(budget_bytes / max(1, total_bytes_per_row)))
