"""Fitted feature-embedding detectors shared by their test modules (fitted once a session)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from anomaly_cli.models.loading import build_model
from anomaly_cli.training.seeding import apply_seed
from tests.models.test_backbone import padim_config, patchcore_config, rotated_patch_images

FittedDetector = tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def batches(x: np.ndarray, size: int = 16) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(x).batch(size)


def fit_on_rotated_patches(config: Any) -> FittedDetector:
    """The model fitted on 60 striped 32 px images; it, the train and test images,
    the test labels and the defect masks."""
    apply_seed(0, deterministic=False)  # seeding.py: TF cannot take a global seed of 0
    train, test, labels, masks = rotated_patch_images()
    model = build_model(config, (32, 32, 1))
    return model.fit_statistics(batches(train)), train, test, labels, masks


@pytest.fixture(scope="session")
def fitted_padim() -> FittedDetector:
    """PaDiM on a random resnet50 (two levels); it fits in place."""
    return fit_on_rotated_patches(padim_config())


@pytest.fixture(scope="session")
def fitted_patchcore() -> FittedDetector:
    return fit_on_rotated_patches(patchcore_config())
