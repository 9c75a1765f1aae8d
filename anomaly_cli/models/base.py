"""The interface every detector implements.

`score(x)` returns one float per sample, higher = more anomalous;
`anomaly_map(x)` returns a per-pixel map for image models. Both accept a
NumPy array or a batched tf.data.Dataset and return NumPy arrays.

Models with state beyond their weights (a hypersphere centre, a warm-up
switch, the training set's mean latent) use the training hooks, which the
fit loop calls in this order: `prepare_training` once before the first
epoch, `training_callbacks` during fit (ahead of checkpointing), and
`finish_training` on the best checkpoint afterwards. Such state lives in
non-trainable weights, so it is saved in the .keras checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.scoring.reconstruction import (
    DEFAULT_TOP_K,
    ERRORS,
    LOSSES,
    error_map,
    reconstruction_error,
)

# The score of models that compare two latents, or a latent with a reference.
LATENT_DISTANCE = "latent_distance"


class AnomalyModel(keras.Model):
    """A keras.Model that can score samples. Subclasses define call() and layers."""

    # The values model.loss and model.score may take; models with their own
    # objective or score (Deep SVDD's distance) narrow or extend them.
    loss_kinds: tuple[str, ...] = LOSSES
    score_kinds: tuple[str, ...] = ERRORS

    def __init__(
        self, sample_shape: tuple[int, ...], loss: str = "mse", score: str = "mse", **kwargs: Any
    ):
        super().__init__(**kwargs)
        for key, value, allowed in (
            ("loss", loss, self.loss_kinds),
            ("score", score, self.score_kinds),
        ):
            if value not in allowed:
                raise AdxUserError(
                    f"model.{key}={value} is not supported; choose one of: {', '.join(allowed)}"
                )
        self.sample_shape = tuple(int(d) for d in sample_shape)
        self.loss_name = loss
        self.score_name = score
        # A scoring-time option (scoring.top_k), not part of the model's config.
        self.top_k = DEFAULT_TOP_K

    def set_score(self, score: str) -> None:
        """Score with another reduction (model.score=...) than the one trained with."""
        if score not in self.score_kinds:
            raise AdxUserError(
                f"model.score={score} is not supported by {type(self).__name__}; "
                f"choose one of: {', '.join(self.score_kinds)}"
            )
        self.score_name = score

    def compile_for_training(self, optimizer: keras.optimizers.Optimizer) -> None:
        self.compile(optimizer=optimizer, loss=self.loss_name)

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

    # Scoring.
    def reconstruct(self, x: Any) -> np.ndarray:
        return np.asarray(self.predict_on_batch(x))

    def score_batch(self, x: np.ndarray) -> np.ndarray:
        """One score per sample of one batch; by default the reconstruction error."""
        return reconstruction_error(x, self.reconstruct(x), self.score_name, self.top_k)

    # The error an anomaly map shows when the score has no per-pixel form
    # (a latent distance); otherwise maps show the error the score reduces.
    map_error = "mse"

    def map_batch(self, x: np.ndarray) -> np.ndarray:
        """Per-pixel anomaly map (N, H, W) of one batch of images."""
        kind = self.score_name if self.score_name in ERRORS else self.map_error
        return error_map(x, self.reconstruct(x), kind)

    @property
    def produces_maps(self) -> bool:
        return len(self.sample_shape) == 3

    def score(self, data: np.ndarray | tf.data.Dataset, batch_size: int = 256) -> np.ndarray:
        return self._per_batch(data, batch_size, self.score_batch)

    def anomaly_map(self, data: np.ndarray | tf.data.Dataset, batch_size: int = 256) -> np.ndarray:
        if not self.produces_maps:
            raise AdxUserError(
                f"{type(self).__name__} gives one score per sample, not per-pixel maps"
            )
        return self._per_batch(data, batch_size, self.map_batch)

    @staticmethod
    def _per_batch(
        data: np.ndarray | tf.data.Dataset, batch_size: int, fn: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        if isinstance(data, np.ndarray):
            batches = (data[i : i + batch_size] for i in range(0, len(data), batch_size))
        else:
            batches = (np.asarray(b) for b in data)
        parts = [fn(batch) for batch in batches]
        return np.concatenate(parts) if parts else np.empty((0,))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            sample_shape=list(self.sample_shape), loss=self.loss_name, score=self.score_name
        )
        return config


# What each kind of model takes, and which datasets and models give or take it.
_NEEDS = {
    "image": "images (height, width, channels)",
    "sequence": "windows (steps, channels)",
}
_FITS = {
    "image": "an image dataset (digits, synthetic, mnist, cifar10, folder, mvtec, npz, ...)",
    "sequence": "dataset=timeseries",
}
_FITS_ANY_SHAPE = "dense_ae, dual_ae, deep_svdd"


class ShapeMismatch(AdxUserError):
    """A model was given samples of the wrong kind; the message names what fits."""

    def __init__(
        self, model_name: str, kind: str, shape: tuple[int, ...], dataset: str | None = None
    ):
        self.model_name, self.kind, self.shape = model_name, kind, tuple(shape)
        source = f"dataset={dataset}" if dataset else "the dataset"
        super().__init__(
            f"model={model_name} needs {_NEEDS[kind]}; {source} gives {describe_shape(shape)}; "
            f"use {_FITS[kind]} or a model that takes any sample: {_FITS_ANY_SHAPE}"
        )

    def naming(self, model_name: str, dataset: str | None) -> ShapeMismatch:
        """The same mismatch, under the config's model name (beta_vae, not vae) and dataset."""
        return ShapeMismatch(model_name, self.kind, self.shape, dataset)


def require_shape(model_name: str, shape: tuple[int, ...], kind: str) -> tuple[int, ...]:
    """Check a sample shape is of `kind` ("image", "sequence" or "any")."""
    ranks = {"image": 3, "sequence": 2}
    if kind != "any" and len(shape) != ranks[kind]:
        raise ShapeMismatch(model_name, kind, shape)
    return tuple(int(d) for d in shape)


def require_image_shape(model_name: str, shape: tuple[int, ...]) -> tuple[int, int, int]:
    height, width, channels = require_shape(model_name, shape, "image")
    return height, width, channels


def describe_shape(shape: tuple[int, ...]) -> str:
    """A sample shape in words: rows of features, windows of steps, or images."""
    if len(shape) == 1:
        return f"rows of {shape[0]} features"
    if len(shape) == 2:
        return f"windows of {shape[0]} steps x {shape[1]} channels"
    if len(shape) == 3:
        return f"{shape[0]}x{shape[1]} images with {shape[2]} channel(s)"
    return f"samples of shape {tuple(shape)}"
