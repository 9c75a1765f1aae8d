"""PaDiM: the Gaussians it fits, planted defects found, maps, save/load."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.models.padim import COVARIANCE_EPSILON
from tests.models.test_backbone import padim_config, rotated_patch_images


def batches(x: np.ndarray, size: int = 16) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(x).batch(size)


@pytest.fixture(scope="module")
def fitted():
    """PaDiM on a random resnet50 (two levels), fitted on 60 striped 32 px images."""
    keras.utils.set_random_seed(0)
    train, test, labels, masks = rotated_patch_images()
    model = build_model(padim_config(), (32, 32, 1))
    assert model.fit_statistics(batches(train)) is model
    return model, train, test, labels, masks


def test_statistics_are_the_mean_and_regularised_covariance_per_position(fitted):
    model, train, *_ = fitted
    embedding = np.asarray(model(train), dtype=np.float64)
    flat = embedding.reshape(len(train), -1, embedding.shape[-1])  # (N, P, d)
    assert flat.shape[1:] == (64, 100)  # an 8x8 grid, model.feature_dim channels
    assert np.allclose(model.mean.numpy(), flat.mean(axis=0), rtol=1e-4, atol=1e-4)
    position = 27
    covariance = np.cov(flat[:, position], rowvar=False) + COVARIANCE_EPSILON * np.eye(100)
    product = model.inverse_covariance.numpy()[position] @ covariance
    assert np.allclose(product, np.eye(100), atol=1e-3)


def test_channels_are_a_sorted_subset_drawn_once():
    keras.utils.set_random_seed(0)
    model = build_model(padim_config(), (32, 32, 1))
    chosen = model.channels.numpy()
    assert len(chosen) == 100 and len(set(chosen)) == 100
    assert np.all(np.diff(chosen) > 0) and chosen.max() < 256 + 512


def test_detects_rotated_patches_that_keep_the_images_energy(fitted):
    model, _, test, labels, masks = fitted
    scores = model.score(test, batch_size=8)
    assert roc_auc_score(labels, scores) > 0.9  # 1.0 measured
    maps = model.anomaly_map(test, batch_size=8)
    assert maps.shape == (40, 32, 32)
    assert np.allclose(scores, maps.reshape(40, -1).max(axis=1))
    # Pixels of the turned square rank above the rest of the defect images.
    defective = labels == 1
    assert roc_auc_score(masks[defective].ravel(), maps[defective].ravel()) > 0.75


def test_scores_do_not_depend_on_the_batch_size(fitted):
    model, _, test, *_ = fitted
    assert np.allclose(model.score(test, batch_size=40), model.score(test, batch_size=3), rtol=1e-5)


def test_save_and_load_reproduce_scores_exactly(fitted, tmp_path: Path):
    model, _, test, *_ = fitted
    path = tmp_path / "best.keras"
    model.save(path)
    loaded = load_checkpoint(path)
    assert type(loaded).__name__ == "PaDiM" and loaded.feature_dim == 100
    assert np.array_equal(loaded.channels.numpy(), model.channels.numpy())
    assert np.array_equal(loaded.score(test, batch_size=8), model.score(test, batch_size=8))
    assert np.array_equal(loaded.anomaly_map(test[:4]), model.anomaly_map(test[:4]))


def test_more_channels_than_the_layers_have_is_refused():
    with pytest.raises(
        AdxUserError, match=r"^model\.feature_dim=900 is more than the 768 channels"
    ):
        build_model(padim_config(feature_dim=900), (32, 32, 1))
