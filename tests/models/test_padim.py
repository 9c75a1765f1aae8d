"""PaDiM: the Gaussians it fits and the channels it keeps (what it shares with
PatchCore is tested in test_feature_embedding.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models import padim
from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.models.padim import COVARIANCE_EPSILON
from anomaly_cli.training.seeding import apply_seed
from tests.models.conftest import batches
from tests.models.test_backbone import padim_config


def test_statistics_are_the_mean_and_regularised_covariance_per_position(fitted_padim):
    model, train, *_ = fitted_padim
    embedding = np.asarray(model(train), dtype=np.float64)
    flat = embedding.reshape(len(train), -1, embedding.shape[-1])  # (N, P, d)
    assert flat.shape[1:] == (64, 100)  # an 8x8 grid, model.feature_dim channels
    assert np.allclose(model.mean.numpy(), flat.mean(axis=0), rtol=1e-4, atol=1e-4)
    position = 27
    covariance = np.cov(flat[:, position], rowvar=False) + COVARIANCE_EPSILON * np.eye(100)
    product = model.inverse_covariance.numpy()[position] @ covariance
    assert np.allclose(product, np.eye(100), atol=1e-3)


def test_channels_are_a_sorted_subset_drawn_once():
    apply_seed(0, deterministic=False)  # seeding.py: TF cannot take a global seed of 0
    model = build_model(padim_config(), (32, 32, 1))
    chosen = model.channels.numpy()
    assert len(chosen) == 100 and len(set(chosen)) == 100
    assert np.all(np.diff(chosen) > 0) and chosen.max() < 256 + 512


def test_the_score_is_the_largest_value_of_the_smoothed_map(fitted_padim):
    model, _, test, *_ = fitted_padim
    maps = model.anomaly_map(test, batch_size=8)
    assert np.allclose(model.score(test, batch_size=8), maps.reshape(len(test), -1).max(axis=1))


def test_fits_in_place_and_reloads_its_channels(fitted_padim, tmp_path: Path):
    model, train, *_ = fitted_padim
    apply_seed(0, deterministic=False)  # seeding.py: TF cannot take a global seed of 0
    fresh = build_model(padim_config(), (32, 32, 1))  # the shared one stays as fitted
    assert fresh.fit_statistics(batches(train[:16])) is fresh
    model.save(tmp_path / "best.keras")
    loaded = load_checkpoint(tmp_path / "best.keras")
    assert type(loaded).__name__ == "PaDiM" and loaded.feature_dim == 100
    assert np.array_equal(loaded.channels.numpy(), model.channels.numpy())


def test_more_channels_than_the_layers_have_is_refused():
    with pytest.raises(
        AdxUserError, match=r"^model\.feature_dim=900 is more than the 768 channels"
    ):
        build_model(padim_config(feature_dim=900), (32, 32, 1))


def test_covariances_are_inverted_block_by_block_to_the_same_result(monkeypatch):
    rng = np.random.default_rng(0)
    flat = rng.normal(size=(30, 7, 5))  # (N, positions, d)
    shift = flat[:10].mean(axis=0)
    centred = flat - shift
    outer = np.matmul(centred.transpose(1, 2, 0), centred.transpose(1, 0, 2))
    offset = centred.sum(axis=0) / len(flat)
    monkeypatch.setattr(padim, "INVERSION_BLOCK_BYTES", 3 * 8 * 5 * 5)  # 3 positions a block
    inverse = padim._inverse_covariances(outer, offset, len(flat))
    expected = [
        np.linalg.inv(np.cov(flat[:, p], rowvar=False) + COVARIANCE_EPSILON * np.eye(5))
        for p in range(7)
    ]
    assert inverse.dtype == np.float32
    assert np.allclose(inverse, np.stack(expected), rtol=1e-4, atol=1e-5)


def test_a_fit_beyond_the_memory_limit_is_refused_before_it_starts(monkeypatch):
    # 64 positions x 100 x 100 entries x 20 bytes = 12.8 MB at the fit's peak.
    monkeypatch.setattr(padim, "MAX_COVARIANCE_BYTES", 10 * 2**20)
    with pytest.raises(AdxUserError, match=r"^model.feature_dim=100 at a 8x8 grid needs 0.0 GiB"):
        build_model(padim_config(), (32, 32, 1))
