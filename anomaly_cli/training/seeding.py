"""Seeds and determinism: same config, same numbers on CPU."""

from __future__ import annotations


def apply_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow (Keras' initialisers draw from these)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()
