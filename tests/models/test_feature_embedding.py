"""What PaDiM and PatchCore share: planted defects found, maps of the image's
size, scores independent of the batch size, and save/load to identical scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anomaly_cli.models.loading import load_checkpoint
from tests.models.conftest import FittedDetector


@pytest.fixture(params=["padim", "patchcore"])
def fitted(request: pytest.FixtureRequest) -> FittedDetector:
    return request.getfixturevalue(f"fitted_{request.param}")


def test_detects_rotated_patches_that_keep_the_images_energy(fitted: FittedDetector):
    model, _, test, labels, masks = fitted
    scores = model.score(test, batch_size=8)
    assert roc_auc_score(labels, scores) > 0.9  # 1.0 measured for both
    maps = model.anomaly_map(test, batch_size=8)
    assert maps.shape == (40, 32, 32)
    # Pixels of the turned square rank above the rest of the defect images.
    defective = labels == 1
    assert roc_auc_score(masks[defective].ravel(), maps[defective].ravel()) > 0.75


def test_scores_do_not_depend_on_the_batch_size(fitted: FittedDetector):
    model, _, test, *_ = fitted
    assert np.allclose(model.score(test, batch_size=40), model.score(test, batch_size=3), rtol=1e-5)


def test_save_and_load_reproduce_scores_exactly(fitted: FittedDetector, tmp_path: Path):
    model, _, test, *_ = fitted
    model.save(tmp_path / "best.keras")
    loaded = load_checkpoint(tmp_path / "best.keras")
    assert type(loaded) is type(model)
    weights, reloaded = model.get_weights(), loaded.get_weights()
    assert len(reloaded) == len(weights) > 0
    assert all(np.array_equal(a, b) for a, b in zip(reloaded, weights, strict=True))
    assert np.array_equal(loaded.score(test, batch_size=8), model.score(test, batch_size=8))
    assert np.array_equal(loaded.anomaly_map(test[:4]), model.anomaly_map(test[:4]))
