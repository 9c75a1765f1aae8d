"""The interface every detector implements, and the base of the autoencoder family.

`AnomalyModel` is all a model needs to be: it scores a batch (`score_batch`,
higher = more anomalous), says which samples it accepts (`accepts`) and
declares its settings once (`hyperparameters`, see models/hyperparameters.py).
`score(x)` and `anomaly_map(x)` take a NumPy array or a batched
tf.data.Dataset and return NumPy arrays.

`ReconstructionModel` is the base of the models that rebuild their input:
a training loss and a score chosen among the reconstruction errors,
`reconstruct`, and per-pixel error maps for images.

A new model is one module (a subclass of either, registered with Keras) and
one YAML in configs/model/ whose keys are its hyperparameters.

Models with state beyond their weights (a hypersphere centre, a warm-up
switch, the training set's mean latent) use the training hooks, which the
fit loop calls in this order: `prepare_training` once before the first
epoch, `training_callbacks` during fit (ahead of checkpointing), and
`finish_training` on the best checkpoint afterwards. Such state lives in
non-trainable weights, so it is saved in the .keras checkpoint.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
import yaml

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.blocks import DATASET_SIDES
from anomaly_cli.models.hyperparameters import Hyperparameter
from anomaly_cli.models.legacy import upgrade
from anomaly_cli.models.structural_losses import structural_error, training_loss
from anomaly_cli.models.windows import (
    DEFAULT_WINDOW_SIGMA,
    check_windows,
    sliding_reconstruction,
    smooth_maps,
)
from anomaly_cli.scoring.batches import map_batches
from anomaly_cli.scoring.reconstruction import (
    DEFAULT_TOP_K,
    ERRORS,
    LOSSES,
    STRUCTURAL_KINDS,
    check_image_kind,
    check_top_k,
    error_map,
    reconstruction_error,
    top_fraction_mean,
)

# The score of models that compare two latents, or a latent with a reference.
LATENT_DISTANCE = "latent_distance"

# What a model may accept, and the rank of such a sample ("any": every rank).
SAMPLE_KINDS = ("image", "sequence", "any")
_RANKS = {"image": 3, "sequence": 2}


def batch_inputs(data: Any) -> Any:
    """The inputs of a batch as fit() hands it to a custom train_step/test_step:
    x alone, or x of an (x, y) / (x, y, weights) tuple."""
    return data[0] if isinstance(data, tuple | list) else data


class AnomalyModel(keras.Model):
    """A keras.Model that scores samples. Subclasses set `accepts` and
    `hyperparameters`, build their layers in __init__ and define
    `score_batch` (and `call`, which Keras needs to build and save them)."""

    # The name the config gives the model, for messages (model=conv_ae ...).
    model_name: ClassVar[str] = ""
    # The samples the model takes: "image" (height, width, channels),
    # "sequence" (steps, channels) or "any" (flattened).
    accepts: ClassVar[str] = ""
    # The values model.score may take; the first is the default.
    score_kinds: ClassVar[tuple[str, ...]] = ()
    # Settings beyond sample_shape; merged along the class hierarchy, so a
    # subclass adds its own and may replace an inherited default.
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        "score": Hyperparameter(None, attribute="score_name"),
    }

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        merged: dict[str, Hyperparameter] = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get("hyperparameters", {}))
        cls.hyperparameters = merged

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        declared = type(self).hyperparameters
        # Keras' own constructor arguments (name, trainable, dtype) pass through.
        keras_args = {k: config.pop(k) for k in ("name", "trainable", "dtype") if k in config}
        unknown = sorted(set(config) - set(declared))
        if unknown:
            raise AdxUserError(
                f"model.{unknown[0]}={config[unknown[0]]} is not a setting of "
                f"model={self.model_name}; its settings are: {', '.join(sorted(declared))}"
            )
        super().__init__(**keras_args)
        self.sample_shape = require_shape(self.model_name, sample_shape, self.accepts)
        for key, spec in declared.items():
            value = config.get(key, spec.default)
            if key == "score" and value is None:
                value = self.score_kinds[0]
            setattr(self, spec.attribute_for(key), spec.check(key, value))
        if self.score_name not in self.score_kinds:
            raise AdxUserError(
                f"model.score={self.score_name} is not supported; "
                f"choose one of: {', '.join(self.score_kinds)}"
            )

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> AnomalyModel:
        """Rebuild from a checkpoint's config; configs written before a setting was
        renamed (legacy.RETIRED) are upgraded first, so old checkpoints still load."""
        return super().from_config(upgrade(dict(config)), custom_objects)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["sample_shape"] = list(self.sample_shape)
        for key, spec in type(self).hyperparameters.items():
            config[key] = getattr(self, spec.attribute_for(key))
        return config

    # Scoring.
    def set_score(self, score: str) -> None:
        """Score with another kind (model.score=...) than the one trained with."""
        if score not in self.score_kinds:
            raise AdxUserError(
                f"model.score={score} is not supported by {type(self).__name__}; "
                f"choose one of: {', '.join(self.score_kinds)}"
            )
        self.score_name = score

    def score_batch(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray:
        """One score per sample of one batch, higher = more anomalous. top_k is the
        fraction a top_k_mean score averages (scoring.top_k); scores without that
        reduction ignore it."""
        raise NotImplementedError(f"{type(self).__name__} must define score_batch")

    def score(
        self,
        data: np.ndarray | tf.data.Dataset,
        batch_size: int = 256,
        top_k: float = DEFAULT_TOP_K,
    ) -> np.ndarray:
        return map_batches(data, batch_size, lambda x: self.score_batch(x, top_k))

    @property
    def produces_maps(self) -> bool:
        """Whether anomaly_map gives per-pixel maps of images (pixel metrics, heatmaps)."""
        return False

    @property
    def network_shape(self) -> tuple[int, ...]:
        """The shape the network itself is built for and called on: the sample
        shape, or a window of it (models/windows.py)."""
        return self.sample_shape

    def anomaly_map(self, data: np.ndarray | tf.data.Dataset, batch_size: int = 256) -> np.ndarray:
        if not self.produces_maps:
            raise AdxUserError(
                f"model={self.model_name} scores whole samples and gives no per-pixel "
                "anomaly maps; use a model that reconstructs images for maps"
            )
        return map_batches(data, batch_size, self.map_batch)

    def map_batch(self, x: np.ndarray) -> np.ndarray:
        """Per-pixel anomaly map (N, H, W) of one batch of images; models whose
        produces_maps is true define it."""
        raise NotImplementedError(f"{type(self).__name__} must define map_batch")

    def score_gradient(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray | None:
        """|d score / d x| of each sample of one batch, shaped like x (saliency, seed
        002 Eq. 35); None where the score has no differentiable form here."""
        return None

    # Training.
    def compile_for_training(
        self, optimizer: keras.optimizers.Optimizer, jit_compile: bool | str = "auto"
    ) -> None:
        """Models with their own train_step compute their loss there. jit_compile:
        XLA or not (trainer.jit_compile, resolved by training/devices.py)."""
        self.compile(optimizer=optimizer, jit_compile=jit_compile)

    # Models that gather statistics of the train split instead of training (PaDiM,
    # PatchCore) set this and define fit_statistics: training/fit.py then makes one
    # pass over the data instead of epochs.
    fits_in_one_pass: ClassVar[bool] = False

    def fit_statistics(self, samples: tf.data.Dataset) -> AnomalyModel:
        """One pass over `samples`; returns the fitted model (self, or a new one
        whose variables could only be sized once the data was seen)."""
        raise NotImplementedError(f"{type(self).__name__} does not fit in one pass")

    # Training hooks; `samples` holds the train split's x batches in a fixed order.
    def prepare_training(self, samples: tf.data.Dataset) -> None:
        """Runs once before the first epoch (not when a run resumes)."""

    def training_callbacks(self, samples: tf.data.Dataset) -> list[keras.callbacks.Callback]:
        """Callbacks that keep model state in step with training; they run before
        the checkpointer, so each checkpoint holds the state of its epoch."""
        return []

    def finish_training(self, samples: tf.data.Dataset) -> None:
        """Runs on the best checkpoint after training; the checkpoint is saved again."""

    @property
    def first_checkpoint_epoch(self) -> int:
        """First epoch (1-based) whose loss may become the best checkpoint or count
        towards early stopping. Models whose objective changes after a warm-up
        return the epoch after it: losses from before are not comparable."""
        return 1

    @property
    def has_finish_training(self) -> bool:
        return type(self).finish_training is not AnomalyModel.finish_training


class ReconstructionModel(AnomalyModel):
    """A detector that rebuilds its input: trained on a reconstruction loss
    (`loss`), scored by a reconstruction error (`score`), with error maps."""

    loss_kinds: ClassVar[tuple[str, ...]] = LOSSES
    score_kinds: ClassVar[tuple[str, ...]] = ERRORS
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        "loss": Hyperparameter("mse", attribute="loss_name"),
        "score": Hyperparameter("mse", attribute="score_name"),
    }
    # The error an anomaly map shows when the score has no per-pixel form
    # (a latent distance); otherwise maps show the error the score reduces.
    map_error = "mse"
    # model.window_size, window_stride and map_sigma (models/windows.py): settings
    # of the image models that declare WINDOW_SETTINGS; the others keep these.
    window_size: int | None = None
    window_stride: int | None = None
    map_sigma: float | None = None

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        super().__init__(sample_shape, **config)
        if self.loss_name not in self.loss_kinds:
            raise AdxUserError(
                f"model.loss={self.loss_name} is not supported; "
                f"choose one of: {', '.join(self.loss_kinds)}"
            )
        # SSIM and the gradient term need images; say so now, not mid-training.
        check_image_kind("loss", self.loss_name, self.sample_shape, self.model_name)
        check_image_kind("score", self.score_name, self.sample_shape, self.model_name)
        check_windows(self.model_name, self.sample_shape, self.window_size, self.window_stride)

    @property
    def network_shape(self) -> tuple[int, ...]:
        if self.window_size is None:
            return self.sample_shape
        return (self.window_size, self.window_size, *self.sample_shape[2:])

    @property
    def network_shape_source(self) -> str:
        """Where network_shape comes from, for error messages about its sides."""
        if self.window_size is None:
            return DATASET_SIDES
        return f"model.window_size={self.window_size} gives windows of"

    @property
    def map_smoothing(self) -> float:
        """Sigma (pixels) of the Gaussian that smooths anomaly maps (model.map_sigma)."""
        if self.map_sigma is not None:
            return float(self.map_sigma)
        return DEFAULT_WINDOW_SIGMA if self.window_size is not None else 0.0

    def compile_for_training(
        self, optimizer: keras.optimizers.Optimizer, jit_compile: bool | str = "auto"
    ) -> None:
        # Keras' own train_step needs the loss compiled in; a model with its own
        # train_step (VAE, IAEAD) computes it there, from loss_name.
        if type(self).train_step is ReconstructionModel.train_step:
            loss = training_loss(self.loss_name)
            self.compile(optimizer=optimizer, loss=loss, jit_compile=jit_compile)
        else:
            self.compile(optimizer=optimizer, jit_compile=jit_compile)

    def set_score(self, score: str) -> None:
        check_image_kind("score", score, self.sample_shape, self.model_name)
        super().set_score(score)

    def reconstruct(self, x: Any) -> np.ndarray:
        """Whole samples rebuilt; with model.window_size, stitched from sliding windows."""
        if self.window_size is None:
            return self._reconstruct_network(x)
        stride = self.window_stride or max(1, self.window_size // 2)
        return sliding_reconstruction(
            np.asarray(x), self.window_size, stride, self._reconstruct_network
        )

    def _reconstruct_network(self, x: Any) -> np.ndarray:
        # float32 whatever the layers computed in (trainer.precision): scores stay float32.
        return np.asarray(self.predict_on_batch(x), dtype=np.float32)

    def score_batch(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray:
        """The reconstruction error model.score names, one per sample; top_k_mean
        of a smoothed map (model.map_sigma) reduces the map."""
        if self.score_name == "top_k_mean" and self.map_smoothing and self.produces_maps:
            return top_fraction_mean(self.map_batch(x), check_top_k(top_k))
        return reconstruction_error(x, self.reconstruct(x), self.score_name, top_k)

    def map_batch(self, x: np.ndarray) -> np.ndarray:
        kind = self.score_name if self.score_name in ERRORS else self.map_error
        return smooth_maps(error_map(x, self.reconstruct(x), kind), self.map_smoothing)

    def score_gradient(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray | None:
        """|d error / d x| through the reconstruction (call() in inference mode): the
        score's error, or map_error when the score is a latent distance. Samples do
        not mix in inference, so the gradient of the summed errors is each one's own."""
        if self.window_size is not None or self.map_smoothing:
            return None  # scored through windows or a smoothed map: no single graph
        kind = self.score_name if self.score_name in ERRORS else self.map_error
        return input_gradient(
            x, lambda inputs: error_tensor(inputs, self(inputs, training=False), kind, top_k)
        )

    @property
    def produces_maps(self) -> bool:
        return len(self.sample_shape) == 3


def input_gradient(x: np.ndarray, scores: Any) -> np.ndarray:
    """|d scores(x) / d x| per sample of one batch, for a TensorFlow `scores` function
    that scores each sample on its own (inference mode), so the gradient of their
    sum is each sample's own."""
    inputs = tf.convert_to_tensor(x, dtype="float32")
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        total = tf.reduce_sum(scores(inputs))
    return np.abs(np.asarray(tape.gradient(total, inputs)))


def error_tensor(x: Any, reconstruction: Any, kind: str, top_k: float) -> Any:
    """scoring.reconstruction.reconstruction_error in TensorFlow, so it has a gradient."""
    if kind in STRUCTURAL_KINDS:
        return structural_error(x, reconstruction, kind)
    reconstruction = tf.cast(reconstruction, x.dtype)  # mixed precision outputs 16 bits
    if kind == "mae":
        elementwise = tf.abs(x - reconstruction)
    elif kind == "msle":
        elementwise = tf.square(
            tf.math.log1p(tf.maximum(x, keras.config.epsilon()))
            - tf.math.log1p(tf.maximum(reconstruction, keras.config.epsilon()))
        )
    else:  # mse, l2, top_k_mean
        elementwise = tf.square(x - reconstruction)
    flat = tf.reshape(elementwise, (tf.shape(elementwise)[0], -1))
    if kind == "l2":
        return tf.sqrt(tf.reduce_sum(flat, axis=1))
    if kind == "top_k_mean":
        count = max(1, math.ceil(top_k * int(flat.shape[1])))
        return tf.reduce_mean(tf.math.top_k(flat, k=count).values, axis=1)
    return tf.reduce_mean(flat, axis=1)


# What each kind of sample is called in messages.
_NEEDS = {
    "image": "images (height, width, channels)",
    "sequence": "windows (steps, channels)",
}
_PLURAL = {"image": "images", "sequence": "windows"}


def _kind_of_shape(shape: tuple[int, ...]) -> str | None:
    return {rank: kind for kind, rank in _RANKS.items()}.get(len(shape))


class ShapeMismatch(AdxUserError):
    """A model was given samples of the wrong kind; the message names what fits."""

    def __init__(
        self, model_name: str, kind: str, shape: tuple[int, ...], dataset: str | None = None
    ):
        self.model_name, self.kind, self.shape = model_name, kind, tuple(shape)
        source = f"dataset={dataset}" if dataset else "the dataset"
        super().__init__(
            f"model={model_name} needs {_NEEDS[kind]}; {source} gives {describe_shape(shape)}; "
            f"use a dataset of {_PLURAL[kind]} or {_models_that_fit(self.shape)}"
        )

    def naming(self, model_name: str, dataset: str | None) -> ShapeMismatch:
        """The same mismatch, under the config's model name (beta_vae, not vae) and dataset."""
        return ShapeMismatch(model_name, self.kind, self.shape, dataset)


def _models_that_fit(shape: tuple[int, ...]) -> str:
    """'a model that takes windows: a, b, or any sample: c, d', from configs/model/."""
    accepting = models_by_kind()
    given = _kind_of_shape(shape)
    parts = []
    if given and accepting.get(given):
        parts.append(f"{_PLURAL[given]}: {', '.join(accepting[given])}")
    if accepting.get("any"):
        parts.append(f"any sample: {', '.join(accepting['any'])}")
    return "a model that takes " + ", or ".join(parts) if parts else "another model"


@cache
def models_by_kind() -> dict[str, list[str]]:
    """The model configs in configs/model/ by the kind of sample their class
    accepts, names sorted. Read from the YAMLs, so a new model joins by its YAML;
    a YAML whose target cannot be imported is left out, not an error."""
    from anomaly_cli.config_dir import config_dir
    from anomaly_cli.targets import resolve_target

    folder = config_dir() / "model"
    by_kind: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            target, name = _target_and_name(folder, path.stem)
            accepts = resolve_target("model", target).accepts
        except Exception:  # a broken or plugin YAML must not hide the mismatch itself
            continue
        by_kind.setdefault(accepts, []).append(name)
    return {kind: sorted(names) for kind, names in by_kind.items()}


def _target_and_name(folder: Path, stem: str, depth: int = 0) -> tuple[str, str]:
    """A model YAML's _target_ and name, following its defaults list in the group
    (beta_vae.yaml inherits vae.yaml's target)."""
    data = yaml.safe_load((folder / f"{stem}.yaml").read_text()) or {}
    target = data.get("_target_")
    if target is None and depth < 5:
        for parent in data.get("defaults") or []:
            if isinstance(parent, str) and parent != "_self_":
                target = _target_and_name(folder, parent, depth + 1)[0]
    return str(target), str(data.get("name", stem))


def require_shape(model_name: str, shape: tuple[int, ...], kind: str) -> tuple[int, ...]:
    """Check a sample shape is of `kind` ("image", "sequence" or "any")."""
    if kind not in SAMPLE_KINDS:
        raise ValueError(f"accepts={kind!r}; a model accepts one of {SAMPLE_KINDS}")
    if kind != "any" and len(shape) != _RANKS[kind]:
        raise ShapeMismatch(model_name, kind, tuple(shape))
    return tuple(int(d) for d in shape)


def describe_shape(shape: tuple[int, ...]) -> str:
    """A sample shape in words: rows of features, windows of steps, or images."""
    if len(shape) == 1:
        return f"rows of {shape[0]} features"
    if len(shape) == 2:
        return f"windows of {shape[0]} steps x {shape[1]} channels"
    if len(shape) == 3:
        return f"{shape[0]}x{shape[1]} images with {shape[2]} channel(s)"
    return f"samples of shape {tuple(shape)}"
