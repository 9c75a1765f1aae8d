"""tf.data pipelines for training and scoring."""

from __future__ import annotations

import tensorflow as tf

from anomaly_cli.data.base import Split


def training_batches(
    split: Split, batch_size: int, seed: int, shuffle: bool = True
) -> tf.data.Dataset:
    """(x, x) batches for autoencoder training, reshuffled each epoch with a fixed seed."""
    ds = split.dataset()
    if shuffle:
        ds = ds.shuffle(min(len(split), 10_000), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(lambda x: (x, x)).prefetch(tf.data.AUTOTUNE)


def scoring_batches(split: Split, batch_size: int) -> tf.data.Dataset:
    """x batches in id order, for scoring."""
    return split.dataset().batch(batch_size).prefetch(tf.data.AUTOTUNE)
