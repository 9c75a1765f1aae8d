"""tf.data pipelines for training and scoring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from anomaly_cli.data.base import Split
from anomaly_cli.models.windows import random_crop

# Seed of the validation crops (model.window_size): any fixed number will do.
_VALIDATION_CROPS = 7


def training_batches(
    split: Split,
    batch_size: int,
    seed: int,
    first_epoch: int,
    epochs: int,
    augment: Callable[[Any, Any], Any] | None = None,
    window: int | None = None,
) -> tf.data.Dataset:
    """(x, x) batches for epochs first_epoch..epochs-1, back to back.

    Each epoch's order is shuffled with seed + epoch, and augmentation draws
    from stateless seeds (seed, epoch, position), so an epoch does not depend
    on how many epochs ran before in this process: a resumed run sees the
    same batches as one that was never interrupted. `window`: one random
    window x window crop of each image after augmentation (model.window_size),
    from a stream of its own folded out of the same seeds.
    """
    samples = split.dataset()
    buffer = max(1, min(len(split), 10_000))

    def transform(x: Any, sample_seed: Any) -> Any:
        if augment is not None:
            x = augment(x, sample_seed)
        if window is not None:
            x = random_crop(x, window, tf.random.experimental.stateless_fold_in(sample_seed, 1))
        return x

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        shuffled = samples.shuffle(buffer, seed=seed + epoch)
        if augment is not None or window is not None:
            shuffled = shuffled.enumerate().map(
                lambda i, x: transform(x, tf.stack([seed + epoch, i])),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        return shuffled.batch(batch_size)

    batches = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    return batches.map(lambda x: (x, x)).prefetch(tf.data.AUTOTUNE)


def validation_batches(split: Split, batch_size: int, window: int | None = None) -> tf.data.Dataset:
    """(x, x) batches; with `window`, one crop of each image at a position fixed by
    its index, the same every epoch, so validation losses stay comparable."""
    samples = split.dataset()
    if window is not None:
        samples = samples.enumerate().map(
            lambda i, x: random_crop(
                x, window, tf.stack([tf.constant(_VALIDATION_CROPS, tf.int64), i])
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return samples.batch(batch_size).map(lambda x: (x, x)).prefetch(tf.data.AUTOTUNE)


def scoring_batches(split: Split, batch_size: int) -> tf.data.Dataset:
    """x batches in id order, for scoring."""
    return split.dataset().batch(batch_size).prefetch(tf.data.AUTOTUNE)
