"""Saliency |d score / d x| (seed 002, Eq. 35): the differentiable score is the score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anomaly_cli import runs
from anomaly_cli.scoring.reconstruction import ERRORS, reconstruction_error


@pytest.mark.parametrize("kind", ERRORS)
def test_the_tensorflow_error_equals_the_numpy_score(kind: str):
    from anomaly_cli.models.base import error_tensor

    rng = np.random.default_rng(0)
    x = rng.random((3, 4, 4, 2)).astype(np.float32)
    reconstruction = rng.random((3, 4, 4, 2)).astype(np.float32)
    got = np.asarray(error_tensor(x, reconstruction, kind, 0.25))
    np.testing.assert_allclose(got, reconstruction_error(x, reconstruction, kind, 0.25), rtol=1e-5)


def test_the_gradient_matches_finite_differences_of_the_score(tiny_run: Path):
    from anomaly_cli.models.loading import load_checkpoint

    model = load_checkpoint(tiny_run / runs.CHECKPOINT, remedy="retrain")
    x = np.random.default_rng(1).random((2, *model.sample_shape)).astype(np.float32)
    gradient = model.score_gradient(x)
    assert gradient.shape == x.shape and np.all(gradient >= 0)
    # The largest entry of each sample, by central differences of the score itself.
    step = 1e-2
    for sample in range(2):
        where = np.unravel_index(np.argmax(gradient[sample]), x.shape[1:])
        up, down = x[sample : sample + 1].copy(), x[sample : sample + 1].copy()
        up[(0, *where)] += step
        down[(0, *where)] -= step
        change = (model.score_batch(up)[0] - model.score_batch(down)[0]) / (2 * step)
        assert abs(change) == pytest.approx(gradient[(sample, *where)], rel=0.05)


@pytest.mark.parametrize(
    ("name", "score"),
    [("deep_svdd", "latent_distance"), ("ganomaly", "latent_distance"), ("ganomaly", "mse")],
)
def test_models_scored_off_the_reconstruction_have_the_gradient_of_their_own_score(
    name: str, score: str
):
    """Deep SVDD and GANomaly: finite differences of score_batch, on an untrained model
    whose centre is moved off zero so the distance has a gradient."""
    from anomaly_cli.models.loading import build_model
    from tests.models.configs import model_config

    cfg = model_config(name)
    model = build_model(cfg, (16, 16, 1))
    model.set_score(score)
    if name == "deep_svdd":
        model.centre.assign(np.full(model.centre.shape, 0.5, np.float32))
    x = np.random.default_rng(2).random((2, 16, 16, 1)).astype(np.float32)
    gradient = model.score_gradient(x)
    assert gradient is not None and gradient.shape == x.shape and gradient.max() > 0
    step = 1e-2
    where = np.unravel_index(np.argmax(gradient[0]), x.shape[1:])
    up, down = x[:1].copy(), x[:1].copy()
    up[(0, *where)] += step
    down[(0, *where)] -= step
    change = (model.score_batch(up)[0] - model.score_batch(down)[0]) / (2 * step)
    assert abs(change) == pytest.approx(gradient[(0, *where)], rel=0.05)
