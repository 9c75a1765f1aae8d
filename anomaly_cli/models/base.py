"""The interface every detector implements.

`score(x)` returns one float per sample, higher = more anomalous;
`anomaly_map(x)` returns a per-pixel map for image models. Both accept a
NumPy array or a batched tf.data.Dataset and return NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.scoring.reconstruction import ERRORS, error_map, reconstruction_error


class AnomalyModel(keras.Model):
    """A keras.Model that can score samples. Subclasses define call() and layers."""

    def __init__(
        self, sample_shape: tuple[int, ...], loss: str = "mse", score: str = "mse", **kwargs: Any
    ):
        super().__init__(**kwargs)
        for key, value in (("loss", loss), ("score", score)):
            if value not in ERRORS:
                raise AdxUserError(
                    f"model.{key}={value} is not supported; choose one of: {', '.join(ERRORS)}"
                )
        self.sample_shape = tuple(int(d) for d in sample_shape)
        self.loss_name = loss
        self.score_name = score

    def compile_for_training(self, optimizer: keras.optimizers.Optimizer) -> None:
        self.compile(optimizer=optimizer, loss=self.loss_name)

    def reconstruct(self, x: Any) -> np.ndarray:
        return np.asarray(self.predict_on_batch(x))

    def score(self, data: np.ndarray | tf.data.Dataset, batch_size: int = 256) -> np.ndarray:
        return self._per_batch(
            data,
            batch_size,
            lambda x: reconstruction_error(x, self.reconstruct(x), self.score_name),
        )

    def anomaly_map(self, data: np.ndarray | tf.data.Dataset, batch_size: int = 256) -> np.ndarray:
        return self._per_batch(
            data, batch_size, lambda x: error_map(x, self.reconstruct(x), self.score_name)
        )

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


def require_image_shape(model_name: str, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Image models need (height, width, channels); say so for rows or sequences."""
    if len(shape) != 3:
        raise AdxUserError(
            f"model={model_name} needs images (height, width, channels); the dataset gives "
            f"{describe_shape(shape)}; use an image dataset or model=dense_ae"
        )
    return int(shape[0]), int(shape[1]), int(shape[2])


def describe_shape(shape: tuple[int, ...]) -> str:
    """A sample shape in words: rows of features, windows of steps, or images."""
    if len(shape) == 1:
        return f"rows of {shape[0]} features"
    if len(shape) == 2:
        return f"windows of {shape[0]} steps x {shape[1]} channels"
    if len(shape) == 3:
        return f"{shape[0]}x{shape[1]} images with {shape[2]} channel(s)"
    return f"samples of shape {tuple(shape)}"
