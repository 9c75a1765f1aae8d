"""model.loss / model.score = ssim, ms_ssim, gradient and the combined losses on the
reconstruction models: training, save/load, maps, saliency, resume, and the error
for samples that are not images."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.scoring.reconstruction import error_map, reconstruction_error
from tests.models.configs import model_config
from tests.models.planted import fit_briefly, planted_images

CONV_AE = {
    "num_hidden_layers": 2,
    "filters": 4,
    "units": [16],
    "latent_dim": 4,
}


def conv_ae(**settings: object):
    cfg = OmegaConf.merge(model_config("conv_ae"), CONV_AE, settings)
    return build_model(cfg, (16, 16, 1))


def test_conv_ae_trains_on_ssim_and_reloads_to_identical_scores_and_maps(tmp_path: Path):
    train, test, _ = planted_images(n_train=64, n_test=12, n_anomalies=4)
    model = conv_ae(loss="ssim", score="ssim")
    history = fit_briefly(model, train, epochs=2)
    losses = history.history["loss"]
    assert len(losses) == 2 and np.isfinite(losses).all()
    # The compiled loss is 1 - SSIM: within [0, 2], and what the NumPy score says.
    assert 0 < losses[-1] < 2
    recon = np.asarray(model(train[:32]))
    evaluated = model.evaluate(train[:32], train[:32], batch_size=32, verbose=0)
    assert evaluated == pytest.approx(
        reconstruction_error(train[:32], recon, "ssim").mean(), abs=1e-5
    )

    scores, maps = model.score(test, batch_size=5), model.anomaly_map(test, batch_size=5)
    assert scores.shape == (12,) and maps.shape == (12, 16, 16)
    np.testing.assert_allclose(maps, error_map(test, np.asarray(model(test)), "ssim"), atol=1e-6)

    path = tmp_path / "best.keras"
    model.save(path)
    loaded = load_checkpoint(path)
    assert (loaded.loss_name, loaded.score_name) == ("ssim", "ssim")
    assert np.array_equal(loaded.score(test, batch_size=5), scores)
    assert np.array_equal(loaded.anomaly_map(test, batch_size=5), maps)
    # A run resumes from a checkpoint loaded with its compiled loss.
    resumed = load_checkpoint(path, compile=True)
    resumed.fit(train, train, epochs=1, batch_size=32, verbose=0)


@pytest.mark.parametrize("score", ["ssim", "ms_ssim", "gradient", "mse_ssim", "mse_gradient"])
def test_every_structural_score_gives_scores_maps_and_a_saliency(score: str):
    model = conv_ae(score=score)
    x = planted_images(n_train=1, n_test=3, n_anomalies=1)[1]
    recon = np.asarray(model(x))
    np.testing.assert_allclose(model.score(x), reconstruction_error(x, recon, score), atol=1e-6)
    assert model.anomaly_map(x).shape == (3, 16, 16)
    saliency = model.score_gradient(x)
    assert saliency.shape == x.shape and np.isfinite(saliency).all() and saliency.sum() > 0


@pytest.mark.parametrize(("name", "loss"), [("vae", "mse_ssim"), ("iaead", "mse_gradient")])
def test_models_with_their_own_train_step_train_on_structural_losses(name: str, loss: str):
    settings = {"num_hidden_layers": 2, "filters": 4, "latent_dim": 4, "loss": loss}
    if name == "iaead":
        settings.update(warmup_epochs=0, score="mse_ssim")
    model = build_model(OmegaConf.merge(model_config(name), settings), (16, 16, 1))
    train = planted_images(n_train=32, n_test=4, n_anomalies=1)[0]
    history = fit_briefly(model, train, epochs=1, batch_size=16)
    reported = history.history["reconstruction_loss"][-1]
    assert np.isfinite(reported) and reported > 0
    # The reconstruction loss is the structural score of the same name (batch means
    # of equal batches, so the mean over all samples).
    recon = np.asarray(model(train))
    evaluated = model.evaluate(train, train, batch_size=16, verbose=0, return_dict=True)
    expected = reconstruction_error(train, recon, loss).mean()
    assert evaluated["reconstruction_loss"] == pytest.approx(expected, abs=1e-5)
    assert model.anomaly_map(train[:3]).shape == (3, 16, 16)


@pytest.mark.parametrize(
    ("name", "setting", "kind"),
    [
        ("dense_ae", "score", "ssim"),
        ("dense_ae", "loss", "ms_ssim"),
        ("dual_ae", "loss", "mse_ssim"),
    ],
)
def test_structural_kinds_on_rows_fail_when_the_model_is_built(name: str, setting: str, kind: str):
    cfg = OmegaConf.merge(model_config(name), {setting: kind})
    with pytest.raises(
        AdxUserError, match=rf"^model\.{setting}={kind} compares image .* use model\.{setting}=mse"
    ):
        build_model(cfg, (17,))
    build_model(cfg, (8, 8, 1))  # the same model on images is fine


def test_switching_a_row_model_to_a_structural_score_is_refused():
    model = build_model(model_config("dense_ae"), (17,))
    with pytest.raises(AdxUserError, match=r"^model\.score=gradient compares image"):
        model.set_score("gradient")
    assert model.score_name == "mae"


def test_window_models_do_not_offer_image_only_kinds():
    cfg = OmegaConf.merge(model_config("lstm_ae"), {"score": "ssim"})
    with pytest.raises(AdxUserError, match=r"model\.score=ssim is not supported"):
        build_model(cfg, (32, 2))


def test_structural_losses_are_registered_for_checkpoints():
    from anomaly_cli.models.structural_losses import training_loss

    for name in ("ssim", "ms_ssim", "mse_ssim", "mse_gradient"):
        loss = training_loss(name)
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert restored is loss
