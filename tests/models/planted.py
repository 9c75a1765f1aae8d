"""Planted-anomaly data for model tests, and a brief fit that calls a model's
training hooks in the same order as the real fit loop (training/fit.py)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from anomaly_cli.data.synthetic import make_images

Planted = tuple[np.ndarray, np.ndarray, np.ndarray]  # train normals, test samples, test labels


def planted_images(
    n_train: int = 300,
    n_test: int = 120,
    n_anomalies: int = 40,
    size: int = 16,
    channels: int = 1,
    patch: int = 4,
    seed: int = 0,
) -> Planted:
    """Soft blobs; anomalies carry a bright square patch (the synthetic dataset's images)."""
    train, _ = make_images(n_train, 0, size, channels, patch, seed)
    test, labels = make_images(n_test - n_anomalies, n_anomalies, size, channels, patch, seed + 1)
    return train, test, labels.astype(np.int64)


def correlated_rows(n: int, features: int, seed: int, anomalous: bool = False) -> np.ndarray:
    """Rows on a 3-dimensional linear manifold; anomalies leave it."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(99).normal(size=(3, features))
    rows = rng.normal(size=(n, 3)) @ mixing + 0.05 * rng.normal(size=(n, features))
    if anomalous:
        rows += rng.normal(scale=1.5, size=(n, features))
    return rows.astype("float32")


def planted_rows(
    n_train: int = 600, n_test: int = 130, n_anomalies: int = 30, features: int = 17, seed: int = 0
) -> Planted:
    train = correlated_rows(n_train, features, seed)
    test = np.concatenate(
        [
            correlated_rows(n_test - n_anomalies, features, seed + 1),
            correlated_rows(n_anomalies, features, seed + 2, anomalous=True),
        ]
    )
    labels = np.r_[np.zeros(n_test - n_anomalies), np.ones(n_anomalies)].astype(np.int64)
    return train, test, labels


def sine_windows(n: int, window: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """Sine waves of one period length, random phase and amplitude near 1, light noise."""
    t = np.arange(window)[None, :, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1, channels))
    amplitude = rng.uniform(0.8, 1.2, (n, 1, channels))
    waves = amplitude * np.sin(2 * np.pi * t / 16 + phase)
    return (waves + 0.05 * rng.normal(size=waves.shape)).astype("float32")


def planted_windows(
    n_train: int = 400,
    n_test: int = 120,
    n_anomalies: int = 40,
    window: int = 32,
    channels: int = 2,
    seed: int = 0,
) -> Planted:
    """Sine windows; anomalies hold a level shift of +-2 over a quarter of the window
    in one channel (a sensor stuck or jumping, the common time-series fault).

    Every window is then scaled to mean square 1: a shift adds energy, which even
    an untrained model (output near 0, score = energy) ranks at AUROC ~0.95; at
    equal energy an untrained one is at chance (0.45-0.59 measured)."""
    rng = np.random.default_rng(seed)
    train = sine_windows(n_train, window, channels, rng)
    test = sine_windows(n_test, window, channels, rng)
    labels = np.zeros(n_test, dtype=np.int64)
    labels[rng.choice(n_test, n_anomalies, replace=False)] = 1
    width = window // 4
    for i in np.flatnonzero(labels):
        start = rng.integers(0, window - width + 1)
        test[i, start : start + width, rng.integers(channels)] += rng.choice([-2.0, 2.0])
    return unit_rms(train), unit_rms(test), labels


def unit_rms(x: np.ndarray) -> np.ndarray:
    return (x / np.sqrt((x**2).mean(axis=(1, 2), keepdims=True))).astype("float32")


def fit_briefly(
    model: keras.Model,
    x: np.ndarray,
    epochs: int,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> keras.callbacks.History:
    """Compile, prepare_training, fit with the model's callbacks, finish_training."""
    samples = tf.data.Dataset.from_tensor_slices(x).batch(batch_size)
    model.compile_for_training(keras.optimizers.Adam(learning_rate))
    model.prepare_training(samples)
    batches = (
        tf.data.Dataset.from_tensor_slices(x)
        .shuffle(len(x), seed=seed)
        .batch(batch_size)
        .map(lambda b: (b, b))
    )
    history = model.fit(
        batches,
        epochs=epochs,
        callbacks=model.training_callbacks(samples),
        shuffle=False,  # the dataset is shuffled already
        verbose=0,
    )
    model.finish_training(samples)
    return history
