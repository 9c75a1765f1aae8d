"""Seeds and determinism: same config, same numbers on CPU."""

from __future__ import annotations

# TensorFlow cannot take a global seed of 0 together with an op seed that is a
# tensor (the per-epoch shuffle seed in data/pipeline.py): its get_seed then
# compares the tensor with 0 in Python and raises. Seed 0 therefore seeds
# TensorFlow's graph-level generator with this stand-in instead; Python,
# NumPy and Keras still get 0.
TF_STAND_IN_FOR_ZERO = 2**31 - 2  # TF reduces seeds modulo 2**31 - 1


def apply_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow (Keras' initialisers draw from these)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    if int(seed) == 0:
        tf.random.set_seed(TF_STAND_IN_FOR_ZERO)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def apply_library_seeds(
    numpy: int, tensorflow: int, python: int, deterministic: bool = True
) -> None:
    """Seed 002's Eq. 24: a seed of its own for NumPy, TensorFlow and Python's `random`.

    Keras' own generator follows the TensorFlow seed; with three equal seeds
    this is exactly `apply_seed`.
    """
    import random

    import numpy as np

    apply_seed(tensorflow, deterministic)
    np.random.seed(int(numpy))
    random.seed(int(python))
