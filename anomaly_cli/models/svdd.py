"""Deep SVDD maths shared by deep_svdd and iaead (seed 001, sec. 2.3; Ruff et al. 2018).

The hypersphere has centre c and radius R in latent space. One-class loss:
mean squared distance to c. Soft-boundary loss: R^2 + 1/nu * mean(max(0, d^2 - R^2)),
where nu bounds the fraction of training samples left outside the sphere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from keras import ops

OBJECTIVES = ("one_class", "soft_boundary")


def initial_centre(latents: np.ndarray, eps: float) -> np.ndarray:
    """Mean latent, with components closer than eps to 0 pushed to +-eps.

    A centre component at 0 lets a bias-free network reach it trivially by
    zeroing the weights that feed it, the hypersphere collapse Ruff et al. warn of.
    """
    centre = np.asarray(latents, dtype=np.float64).mean(axis=0)
    near_zero = np.abs(centre) < eps
    centre[near_zero & (centre < 0)] = -eps
    centre[near_zero & (centre >= 0)] = eps
    return centre.astype(np.float32)


def squared_distances(latents: Any, centre: Any) -> Any:
    """Squared Euclidean distance of each latent to the centre (keras ops)."""
    return ops.sum(ops.square(latents - centre), axis=-1)


def radius_quantile(sq_distances: Any, nu: float) -> float:
    """R such that a fraction nu of the samples lies outside: the (1-nu) quantile
    of the distances (not of the squared distances; the two differ in value, not rank)."""
    return float(np.quantile(np.sqrt(np.asarray(sq_distances, dtype=np.float64)), 1 - nu))


def batch_radius(sq_distances: Any, nu: float) -> Any:
    """The (1 - nu) quantile of the distances (square roots of `sq_distances`),
    interpolated linearly as np.quantile does; a tensor op, usable in train_step."""
    dist = ops.sort(ops.sqrt(ops.maximum(sq_distances, 0.0)))
    last = ops.shape(dist)[0] - 1
    position = (1.0 - nu) * ops.cast(last, dist.dtype)
    below = ops.floor(position)
    above = ops.minimum(below + 1.0, ops.cast(last, dist.dtype))
    low = ops.take(dist, ops.cast(below, "int32"))
    high = ops.take(dist, ops.cast(above, "int32"))
    return low + (position - below) * (high - low)


def svdd_loss(sq_distances: Any, radius: Any, nu: float, objective: str) -> Any:
    if objective == "soft_boundary":
        outside = ops.maximum(sq_distances - ops.square(radius), 0.0)
        return ops.square(radius) + ops.mean(outside) / nu
    return ops.mean(sq_distances)


def encode_all(encoder: Any, samples: tf.data.Dataset) -> np.ndarray:
    """The latent of every sample in `samples` (x-only batches), inference mode."""
    parts = [np.asarray(encoder(batch, training=False)) for batch in samples]
    return np.concatenate(parts) if parts else np.empty((0,))
