"""VAE and beta-VAE: the ELBO's terms, deterministic and seeded scoring, save/load, errors."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.models.vae import VariationalAutoencoder
from anomaly_cli.scoring.reconstruction import error_map, reconstruction_error
from anomaly_cli.training.seeding import apply_seed
from tests.models.configs import model_config
from tests.models.planted import fit_briefly, planted_images

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"
SMALL = {"num_hidden_layers": 2, "filters": 8, "units": [32], "latent_dim": 4}
SHAPE = (16, 16, 1)


def config(name: str = "vae", **overrides: object) -> OmegaConf:
    return OmegaConf.merge(model_config(name), SMALL, overrides)


def images(n: int = 6, shape: tuple[int, ...] = SHAPE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype("float32")


def twin(model: VariationalAutoencoder, **overrides: object) -> VariationalAutoencoder:
    """A model with other settings and the same weights."""
    other = build_model(config(**{**SMALL, **overrides}), model.sample_shape)
    other.set_weights(model.get_weights())
    return other


def posterior(model: VariationalAutoencoder, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stats = np.asarray(model.encoder(x), dtype=np.float64)
    return stats[:, : model.latent_dim], stats[:, model.latent_dim :]


@pytest.fixture(scope="module")
def trained() -> VariationalAutoencoder:
    """A briefly trained VAE, so that log-variances are no longer near their start."""
    apply_seed(1, deterministic=True)
    train, _, _ = planted_images(n_train=96, seed=1)
    model = build_model(config(beta=0.01), SHAPE)
    fit_briefly(model, train, epochs=2)
    return model


def test_yamls_list_every_setting_and_differ_only_in_beta():
    vae, beta_vae = (model_config(n) for n in ("vae", "beta_vae"))
    arguments = set(VariationalAutoencoder.hyperparameters)
    assert arguments | {"_target_", "name"} == set(vae) == set(beta_vae)
    # beta_vae.yaml inherits vae.yaml and writes down only what differs.
    assert set(OmegaConf.load(CONFIGS / "beta_vae.yaml")) == {"defaults", "name", "beta"}
    assert vae._target_ == beta_vae._target_
    assert (vae.name, beta_vae.name) == ("vae", "beta_vae")
    assert (vae.beta, beta_vae.beta) == (1.0, 1e-4)  # beta-VAE: seed 000's beta
    assert {k for k in vae if vae[k] != beta_vae[k]} == {"name", "beta"}


@pytest.mark.parametrize("name", ["vae", "beta_vae"])
def test_planted_patches_score_higher(name: str):
    apply_seed(0, deterministic=True)
    train, test, labels = planted_images(n_train=300, n_test=120, n_anomalies=40)
    model = build_model(config(name), SHAPE)
    history = fit_briefly(model, train, epochs=8).history
    auroc = roc_auc_score(labels, model.score(test))
    print(f"{name}: AUROC {auroc:.4f}")
    assert auroc >= 0.85, f"{name}: AUROC {auroc:.3f}"
    # The epoch means keep the decomposition, since it is linear.
    loss, rec, kl = (np.array(history[k]) for k in ("loss", "reconstruction_loss", "kl_loss"))
    assert np.allclose(loss, rec + model.beta * kl, rtol=1e-5, atol=1e-7)
    assert loss[-1] < loss[0]


def test_kl_term_is_the_closed_form_and_its_share_of_loss_scales_with_beta(trained):
    x = images(16)
    mean, log_var = posterior(trained, x)
    kl_by_hand = (0.5 * (mean**2 + np.exp(log_var) - 1 - log_var).sum(axis=1)).mean()
    rec_by_hand = ((x - trained.reconstruct(x)) ** 2).mean()  # validation decodes the mean
    results = {}
    for beta in (1.0, 2.0):
        model = twin(trained, beta=beta)
        model.compile_for_training(keras.optimizers.SGD(0.0))
        results[beta] = model.evaluate(x, x, batch_size=len(x), verbose=0, return_dict=True)
    one, two = results[1.0], results[2.0]
    assert one["kl_loss"] > 1e-3
    assert one["kl_loss"] == pytest.approx(kl_by_hand, rel=1e-4)
    assert one["reconstruction_loss"] == pytest.approx(rec_by_hand, rel=1e-4)
    assert two["kl_loss"] == one["kl_loss"]
    assert two["reconstruction_loss"] == one["reconstruction_loss"]
    assert two["loss"] - two["reconstruction_loss"] == pytest.approx(2 * one["kl_loss"], rel=1e-4)
    assert one["loss"] - one["reconstruction_loss"] == pytest.approx(one["kl_loss"], rel=1e-4)


def test_training_samples_the_latent_and_validation_decodes_the_mean(trained):
    x = images(16)
    model = twin(trained, beta=3.0)
    model.compile_for_training(keras.optimizers.SGD(0.0))  # weights stay put
    train = model.train_on_batch(x, x, return_dict=True)
    test = model.evaluate(x, x, batch_size=len(x), verbose=0, return_dict=True)
    assert train["loss"] == pytest.approx(
        train["reconstruction_loss"] + 3.0 * train["kl_loss"], rel=1e-5
    )
    assert train["kl_loss"] == pytest.approx(test["kl_loss"], rel=1e-5)  # KL needs no sample
    assert train["reconstruction_loss"] != test["reconstruction_loss"]  # z was sampled
    assert not np.array_equal(np.asarray(model(x, training=True)), np.asarray(model(x)))


def test_decoded_mean_scoring_is_deterministic(trained):
    x = images(8)
    mean, _ = posterior(trained, x)
    by_hand = np.asarray(trained.decoder(mean.astype("float32")))
    first, second = trained.score(x), trained.score(x)
    assert np.array_equal(first, second)
    assert np.array_equal(trained.reconstruct(x), trained.reconstruct(x))
    assert np.allclose(trained.reconstruct(x), by_hand, atol=1e-6)
    assert np.allclose(first, reconstruction_error(x, by_hand, "mse"), rtol=1e-5)
    assert np.allclose(np.asarray(trained(x)), by_hand, atol=1e-6)  # inference decodes mu


def test_sampled_scores_are_seeded_reproducible_and_independent_of_the_batch(trained):
    x = images(10)
    sampled = twin(trained, n_samples=3, sample_seed=7)
    scores = sampled.score(x, batch_size=4)
    assert np.array_equal(scores, sampled.score(x, batch_size=4))
    assert np.array_equal(scores, twin(trained, n_samples=3, sample_seed=7).score(x, batch_size=4))
    # Every sample gets the same draws, so its score does not depend on its batch.
    assert np.allclose(scores[::-1], sampled.score(x[::-1], batch_size=10), rtol=1e-5)
    assert not np.allclose(scores, trained.score(x), rtol=1e-4)
    assert not np.allclose(scores, twin(trained, n_samples=3, sample_seed=8).score(x), rtol=1e-4)

    mean, log_var = posterior(trained, x)
    eps = np.random.default_rng(7).standard_normal((3, trained.latent_dim))
    decoded = [
        np.asarray(trained.decoder((mean + np.exp(0.5 * log_var) * e).astype("float32")))
        for e in eps
    ]
    by_hand = np.mean([reconstruction_error(x, d, "mse") for d in decoded], axis=0)
    assert np.allclose(scores, by_hand, rtol=1e-4)
    maps = np.mean([error_map(x, d, "mse") for d in decoded], axis=0)
    assert np.allclose(sampled.anomaly_map(x), maps, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("n_samples", [0, 2])
def test_score_reconstruction_and_map_shapes(trained, n_samples: int):
    model = twin(trained, n_samples=n_samples)
    x = images(5)
    assert model(x).shape == x.shape and model.reconstruct(x).shape == x.shape
    scores, maps = model.score(x, batch_size=2), model.anomaly_map(x, batch_size=2)
    assert scores.shape == (5,) and maps.shape == (5, 16, 16)
    assert np.allclose(maps.mean(axis=(1, 2)), scores, rtol=1e-5)


def test_save_and_load_reproduce_scores_exactly(trained, tmp_path: Path):
    model = twin(trained, n_samples=2, beta=0.5, score="mae")
    path = tmp_path / "best.keras"
    model.save(path)
    loaded = load_checkpoint(path)
    x = images(7, seed=3)
    assert isinstance(loaded, VariationalAutoencoder)
    assert (loaded.beta, loaded.n_samples, loaded.score_name) == (0.5, 2, "mae")
    assert np.array_equal(model.score(x), loaded.score(x))
    assert np.array_equal(model.anomaly_map(x), loaded.anomaly_map(x))

    # A resumed run loads the trained model with its optimizer and trains on.
    trained.save(path)
    resumed = load_checkpoint(path, compile=True)
    assert resumed.optimizer.iterations.numpy() == trained.optimizer.iterations.numpy() > 0
    history = resumed.fit(x, x, epochs=1, verbose=0).history
    assert set(history) == {"loss", "reconstruction_loss", "kl_loss"}


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((17,), r"^model=vae needs images .* gives rows of 17 features; .* dense_ae"),
        ((32, 2), r"^model=vae needs images .* gives windows of 32 steps x 2 channels"),
        ((10, 10, 1), "divisible by 4; the dataset gives 10x10"),
    ],
)
def test_wrong_input_shapes_say_what_fits(shape: tuple[int, ...], message: str):
    with pytest.raises(AdxUserError, match=message):
        build_model(config(), shape)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"beta": -1.0}, r"model\.beta=-1\.0 must be >= 0"),
        ({"n_samples": -2}, r"model\.n_samples=-2 must be >= 0"),
        ({"loss": "l2"}, r"model\.loss=l2 is not supported; choose one of: mse, mae, msle"),
        ({"score": "l3"}, r"model\.score=l3 is not supported"),
    ],
)
def test_bad_settings_are_user_errors(override: dict, message: str):
    with pytest.raises(AdxUserError, match=message):
        build_model(config("beta_vae", **override), SHAPE)
