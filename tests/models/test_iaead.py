"""IAEAD: the warm-up switch, the centre and radius, Eq. 9's latent-distance score,
reconstruction-error scoring, planted image anomalies, save/load, bad settings."""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models import svdd
from anomaly_cli.models.iaead import IAEAD
from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.scoring.reconstruction import reconstruction_error
from anomaly_cli.training.seeding import apply_seed
from tests.models.planted import fit_briefly, planted_images

CFG = OmegaConf.load(Path(__file__).resolve().parents[2] / "configs/model/iaead.yaml")
SMALL = OmegaConf.merge(
    CFG, {"num_hidden_layers": 2, "filters": 4, "latent_dim": 8, "warmup_epochs": 2}
)


def batches(x: np.ndarray, size: int = 32) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(x).batch(size)


@pytest.fixture(scope="module")
def trained() -> tuple[IAEAD, dict, np.ndarray, np.ndarray, np.ndarray]:
    """Planted images; two warm-up epochs, six with the SVDD term; finish_training done.
    One fit shared by the tests that need a trained model keeps the file fast."""
    apply_seed(0, deterministic=True)
    train, test, labels = planted_images(n_train=200, n_test=120, n_anomalies=40)
    model = build_model(OmegaConf.merge(SMALL, {"filters": 8, "latent_dim": 16}), (16, 16, 1))
    history = fit_briefly(model, train, epochs=8, learning_rate=3e-3)
    return model, history.history, train, test, labels


def test_svdd_term_is_exactly_zero_during_warm_up_and_on_after(trained):
    model, history, *_ = trained
    assert len(history["svdd_loss"]) == 8
    assert history["svdd_loss"][:2] == [0.0, 0.0]
    assert all(value > 0 for value in history["svdd_loss"][2:])
    assert history["loss"][:2] == history["reconstruction_loss"][:2]
    # The total is reconstruction + lambda * svdd, batch by batch, so also in the means.
    expected = np.add(history["reconstruction_loss"], 5e-5 * np.asarray(history["svdd_loss"]))
    assert np.allclose(history["loss"], expected, rtol=1e-5)
    assert model.svdd_started and float(model.radius.numpy()) > 0


def test_validation_reports_the_same_three_losses(trained):
    model, _, train, *_ = trained
    result = model.evaluate(train, train, batch_size=32, verbose=0, return_dict=True)
    assert set(result) == {"loss", "reconstruction_loss", "svdd_loss"}
    assert result["svdd_loss"] > 0
    assert result["loss"] == pytest.approx(
        result["reconstruction_loss"] + 5e-5 * result["svdd_loss"], rel=1e-5
    )


def test_warm_up_callback_sets_the_centre_to_the_pushed_mean_latent():
    apply_seed(3, deterministic=True)
    train, _, _ = planted_images(n_train=40, n_test=4, n_anomalies=1)
    model = build_model(OmegaConf.merge(SMALL, {"warmup_epochs": 1, "eps": 0.075}), (16, 16, 1))
    samples = batches(train)
    (callback,) = model.training_callbacks(samples)
    callback.set_model(model)
    callback.on_epoch_begin(0)
    assert not model.svdd_started and np.all(model.centre.numpy() == 0)
    callback.on_epoch_begin(1)
    latents = svdd.encode_all(model.encoder, samples)
    centre = model.centre.numpy()
    assert model.svdd_started
    assert np.all(np.abs(centre) >= 0.075)
    # Components the push left alone are the mean latent; the test needs both kinds.
    kept = np.abs(latents.mean(axis=0)) >= 0.075
    assert 0 < kept.sum() < len(centre)
    assert np.allclose(centre[kept], latents.mean(axis=0)[kept], rtol=1e-5)
    assert np.array_equal(centre, svdd.initial_centre(latents, 0.075))


def test_radius_is_the_batch_distance_quantile_after_each_step():
    apply_seed(5, deterministic=True)
    x = planted_images(n_train=32, n_test=4, n_anomalies=1)[0]
    model = build_model(OmegaConf.merge(SMALL, {"nu": 0.3}), (16, 16, 1))
    model.compile_for_training(keras.optimizers.Adam(1e-3))
    model.train_step((x, x))
    assert float(model.radius.numpy()) == 0.0  # warm-up: R stays put
    model.start_svdd(batches(x))
    # BatchNorm uses batch statistics in training, so these are the step's own latents.
    sq = svdd.squared_distances(model.encoder(x, training=True), model.centre).numpy()
    model.train_step((x, x))
    assert float(model.radius.numpy()) == pytest.approx(svdd.radius_quantile(sq, 0.3), rel=1e-5)


@pytest.mark.parametrize("nu", [1.0, 0.5, 0.3, 0.01])
def test_batch_radius_matches_numpy_quantile(nu: float):
    sq = np.random.default_rng(0).uniform(0, 9, size=13).astype("float32")
    assert float(svdd.batch_radius(sq, nu)) == pytest.approx(svdd.radius_quantile(sq, nu), rel=1e-6)


def test_latent_distance_is_the_distance_to_the_stored_mean_training_latent(trained):
    model, _, train, test, _ = trained
    mean = svdd.encode_all(model.encoder, batches(train)).astype(np.float64).mean(axis=0)
    assert np.allclose(model.mean_latent.numpy(), mean, rtol=1e-5, atol=1e-6)
    latents = np.asarray(model.encoder(test, training=False), dtype=np.float64)
    by_hand = np.linalg.norm(latents - model.mean_latent.numpy().astype(np.float64), axis=1)
    scores = model.score(test, batch_size=5)
    assert scores.shape == (len(test),) and scores.dtype == np.float64
    assert np.allclose(scores, by_hand, rtol=1e-6)
    # The score is the distance to the mean latent, not to the SVDD centre.
    centre = model.centre.numpy().astype(np.float64)
    assert not np.allclose(scores, np.linalg.norm(latents - centre, axis=1), rtol=1e-3)


def test_score_mse_gives_reconstruction_errors_and_maps_have_image_shape(trained):
    model, _, _, test, _ = trained
    reloaded = IAEAD.from_config(model.get_config())
    reloaded(test[:1])
    reloaded.set_weights(model.get_weights())
    reloaded.set_score("mse")
    recon = np.asarray(reloaded(test))
    assert np.allclose(reloaded.score(test), ((test - recon) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    assert np.allclose(reloaded.score(test), reconstruction_error(test, recon, "mse"), rtol=1e-6)
    maps = model.anomaly_map(test, batch_size=5)
    assert maps.shape == (len(test), 16, 16)
    assert np.allclose(maps.mean(axis=(1, 2)), reloaded.score(test), rtol=1e-5)


def test_planted_image_anomalies_score_higher(trained):
    model, _, _, test, labels = trained
    assert model.score_name == "latent_distance"
    assert roc_auc_score(labels, model.score(test)) >= 0.85


def test_save_and_load_after_finish_training_reproduce_scores_exactly(trained, tmp_path: Path):
    model, _, _, test, _ = trained
    model.save(tmp_path / "iaead.keras")
    loaded = load_checkpoint(tmp_path / "iaead.keras")
    assert type(loaded).__name__ == "IAEAD" and loaded.get_config() == model.get_config()
    for name in ("centre", "radius", "svdd_active", "mean_latent", "has_mean_latent"):
        assert np.array_equal(getattr(loaded, name).numpy(), getattr(model, name).numpy())
    assert np.array_equal(loaded.score(test), model.score(test))
    assert np.array_equal(loaded.anomaly_map(test), model.anomaly_map(test))


def test_scoring_before_finish_training_says_what_to_do():
    model = build_model(SMALL, (16, 16, 1))
    with pytest.raises(AdxUserError, match=r"no mean training latent .* model\.score=mse"):
        model.score(np.zeros((2, 16, 16, 1), dtype="float32"))


def test_a_run_that_ends_inside_warm_up_warns(caplog: pytest.LogCaptureFixture):
    x = planted_images(n_train=8, n_test=2, n_anomalies=1)[0]
    model = build_model(OmegaConf.merge(SMALL, {"warmup_epochs": 3}), (16, 16, 1))
    (callback,) = model.training_callbacks(batches(x))
    callback.set_model(model)
    with caplog.at_level(logging.WARNING, logger="adx"):
        for epoch in range(3):  # early stopping after epoch 3, before the term's epoch 4
            callback.on_epoch_begin(epoch)
        callback.on_train_end()
        model.finish_training(batches(x))
    assert not model.svdd_started and model.first_checkpoint_epoch == 4
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("training ended before the Deep SVDD term switched on" in m for m in messages)
    assert any("saved before the Deep SVDD term switched on" in m for m in messages)
    assert all("model.warmup_epochs=3" in m for m in messages) and len(messages) == 2


def test_zero_warm_up_starts_the_term_with_the_first_epoch(caplog: pytest.LogCaptureFixture):
    x = planted_images(n_train=8, n_test=2, n_anomalies=1)[0]
    model = build_model(OmegaConf.merge(SMALL, {"warmup_epochs": 0}), (16, 16, 1))
    (callback,) = model.training_callbacks(batches(x))
    callback.set_model(model)
    with caplog.at_level(logging.WARNING, logger="adx"):
        callback.on_epoch_begin(0)
        callback.on_train_end()
    assert model.svdd_started and not caplog.records
    assert model.first_checkpoint_epoch == 1


@pytest.mark.parametrize(
    ("change", "shape", "message"),
    [
        ({}, (17,), r"model=iaead needs images .* gives rows of 17 features"),
        ({}, (10, 10, 1), r"num_hidden_layers=2 needs image sides divisible by 4; .* 10x10"),
        ({"objective": "hard"}, (8, 8, 1), r"model\.objective=hard; choose one of"),
        ({"nu": 0.0}, (8, 8, 1), r"model\.nu=0\.0 must lie in \(0, 1\]"),
        ({"eps": 0.0}, (8, 8, 1), r"model\.eps=0\.0 must be positive"),
        ({"lambda_svdd": -1.0}, (8, 8, 1), r"model\.lambda_svdd=-1\.0 must be >= 0"),
        ({"warmup_epochs": -1}, (8, 8, 1), r"model\.warmup_epochs=-1 must be >= 0"),
        ({"latent_dim": 0}, (8, 8, 1), r"latent_dim=0 must be >= 1"),
        ({"score": "svdd"}, (8, 8, 1), r"model\.score=svdd .* latent_distance, mse"),
        ({"loss": "l2"}, (8, 8, 1), r"model\.loss=l2"),
    ],
)
def test_bad_settings_and_shapes_name_the_key(change: dict, shape: tuple, message: str):
    with pytest.raises(AdxUserError, match=message):
        build_model(OmegaConf.merge(SMALL, change), shape)
