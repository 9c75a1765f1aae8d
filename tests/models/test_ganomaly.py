"""GANomaly: planted-anomaly AUROC, the generator loss and score by hand, the
discriminator's re-initialisation, save/load and resume with both optimizers."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.ganomaly import GANomaly
from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.training.seeding import apply_seed
from tests.models.planted import fit_briefly, planted_images

YAML = Path(__file__).resolve().parents[2] / "configs" / "model" / "ganomaly.yaml"
CFG = OmegaConf.create(
    {
        "_target_": "anomaly_cli.models.ganomaly.GANomaly",
        "name": "ganomaly",
        "num_hidden_layers": 2,
        "filters": 8,
        "latent_dim": 16,
        "w_adv": 1.0,
        "w_con": 50.0,
        "w_enc": 1.0,
        "reset_threshold": 1e-5,
        "score": "latent_distance",
    }
)


def small(**changes: object) -> GANomaly:
    return build_model(OmegaConf.merge(CFG, changes), (16, 16, 1))


def images(n: int = 6, shape: tuple[int, ...] = (16, 16, 1), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype("float32")


def as64(t: object) -> np.ndarray:
    return np.asarray(t, dtype=np.float64)


@pytest.fixture(scope="module")
def trained() -> tuple[GANomaly, np.ndarray, np.ndarray]:
    apply_seed(0, deterministic=True)
    train, test, labels = planted_images()
    model = small()
    fit_briefly(model, train, epochs=10, learning_rate=2e-3)
    return model, test, labels


def test_planted_patches_have_larger_latent_distance(trained):
    model, test, labels = trained
    scores = model.score(test, batch_size=50)
    assert scores.shape == (len(test),)
    assert roc_auc_score(labels, scores) >= 0.85  # seeds 0-3 gave 0.91-0.97


def test_save_and_load_reproduce_scores_and_maps_exactly(trained, tmp_path: Path):
    model, test, _ = trained
    path = tmp_path / "best.keras"
    model.save(path)
    loaded = load_checkpoint(path)
    assert type(loaded) is GANomaly and loaded.score_name == "latent_distance"
    assert np.array_equal(model.score(test), loaded.score(test))
    assert np.array_equal(model.anomaly_map(test), loaded.anomaly_map(test))


def test_score_is_the_distance_between_the_two_latents_and_map_the_abs_error():
    model = small()
    x = images()
    z = as64(model.encoder(x, training=False))
    x_hat = model.decoder(z.astype("float32"), training=False)
    z_hat = as64(model.encoder2(x_hat, training=False))
    expected = np.sqrt(((z - z_hat) ** 2).sum(axis=1))
    scores = model.score(x, batch_size=4)
    assert scores.shape == (6,)
    assert np.allclose(scores, expected, rtol=1e-5)
    maps = model.anomaly_map(x, batch_size=4)
    assert maps.shape == (6, 16, 16)
    assert np.allclose(maps, np.abs(x - as64(x_hat))[..., 0], atol=1e-6)
    model.set_score("mse")
    assert np.allclose(model.score(x), ((x - as64(x_hat)) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)


def hand_parts(model: GANomaly, x: np.ndarray, training: bool) -> dict[str, float]:
    """The three generator losses, each sub-network called on its own."""
    z = model.encoder(x, training=training)
    x_hat = model.decoder(z, training=training)
    z_hat = model.encoder2(x_hat, training=training)
    f_real = as64(model.disc_features(x, training=training))
    f_fake = as64(model.disc_features(x_hat, training=training))
    return {
        "adv_loss": ((f_real - f_fake) ** 2).mean(),
        "con_loss": np.abs(x - as64(x_hat)).mean(),
        "enc_loss": ((as64(z) - as64(z_hat)) ** 2).mean(),
    }


def test_generator_loss_is_the_weighted_sum_of_its_parts():
    # Weights unlike the defaults and unlike each other, so a swapped or dropped one shows.
    w_adv, w_con, w_enc = 2.0, 7.0, 3.0
    apply_seed(1, deterministic=True)
    model = small(w_adv=w_adv, w_con=w_con, w_enc=w_enc)
    # A zero learning rate leaves the weights as they are, so the parts can be redone by hand.
    model.compile_for_training(keras.optimizers.SGD(0.0))
    x = images(8)
    logs = model.train_on_batch(x, x, return_dict=True)
    parts = hand_parts(model, x, training=True)
    for key, value in parts.items():
        assert logs[key] == pytest.approx(value, rel=1e-4), key
    total = w_adv * parts["adv_loss"] + w_con * parts["con_loss"] + w_enc * parts["enc_loss"]
    assert logs["loss"] == pytest.approx(total, rel=1e-4)
    assert parts["adv_loss"] > 0 and parts["con_loss"] > 0 and parts["enc_loss"] > 0
    # A working discriminator (loss far above reset_threshold) is kept.
    assert logs["d_resets"] == 0.0 and logs["d_loss"] > 0.1

    # Validation: the same parts in inference mode, the adversarial one left out of `loss`.
    val = model.test_on_batch(x, x, return_dict=True)
    parts = hand_parts(model, x, training=False)
    assert val["adv_loss"] == pytest.approx(parts["adv_loss"], rel=1e-4)
    assert val["loss"] == pytest.approx(
        w_con * parts["con_loss"] + w_enc * parts["enc_loss"], rel=1e-4
    )


def test_discriminator_is_reinitialised_when_its_loss_collapses():
    apply_seed(2, deterministic=True)
    x = images(8)
    # Any loss is below a huge threshold: every step ends with a fresh D.
    model = small(reset_threshold=1e9)
    model.compile_for_training(keras.optimizers.Adam(1e-2))
    before = [as64(v) for v in model.discriminator_variables]
    logs = model.train_on_batch(x, x, return_dict=True)
    assert logs["d_resets"] == 1.0
    bn = next(
        layer
        for layer in model.disc_features.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    assert np.array_equal(as64(bn.moving_mean), np.zeros(bn.moving_mean.shape))
    assert np.array_equal(as64(bn.moving_variance), np.ones(bn.moving_variance.shape))
    kernel = as64(model.disc_features.layers[0].kernel)
    assert not np.allclose(kernel, before[0])
    assert 0.01 < kernel.std() < 0.03  # N(0, 0.02), GANomaly's init
    assert np.array_equal(as64(model.disc_head.layers[-1].bias), [0.0])


def test_resume_restores_both_optimizers_and_keeps_training(tmp_path: Path):
    apply_seed(3, deterministic=True)
    train, _, _ = planted_images(n_train=64, n_test=8, n_anomalies=4)
    model = small(filters=4, latent_dim=4)
    # DCGAN's Adam: the discriminator's clone keeps its settings but not its state.
    model.compile_for_training(keras.optimizers.Adam(2e-4, beta_1=0.5))
    assert model.disc_optimizer is not model.optimizer
    assert type(model.disc_optimizer) is keras.optimizers.Adam
    assert model.disc_optimizer.beta_1 == 0.5
    assert float(model.disc_optimizer.learning_rate) == pytest.approx(2e-4)
    batches = tf.data.Dataset.from_tensor_slices(train).batch(32).map(lambda b: (b, b))
    model.fit(batches, epochs=1, verbose=0)
    path = tmp_path / "last.keras"
    model.save(path)

    resumed = load_checkpoint(path, compile=True)
    for name in ("optimizer", "disc_optimizer"):
        saved, restored = getattr(model, name), getattr(resumed, name)
        assert int(restored.iterations) == 2  # two steps of the epoch
        assert len(restored.variables) == len(saved.variables) > 1
        for a, b in zip(saved.variables, restored.variables, strict=True):
            assert np.array_equal(as64(a), as64(b)), name
    history = resumed.fit(batches, epochs=1, verbose=0).history
    assert history and all(np.isfinite(v[0]) for v in history.values())
    assert int(resumed.optimizer.iterations) == int(resumed.disc_optimizer.iterations) == 4


def test_yaml_lists_every_setting_and_builds_the_default_model():
    cfg = OmegaConf.load(YAML)
    # GANomaly's objective is its own: no `loss` setting, in the class or the YAML.
    assert set(GANomaly.hyperparameters) == set(cfg) - {"_target_", "name"}
    model = build_model(cfg, (8, 8, 1))
    config = model.get_config()
    for key in set(cfg) - {"_target_", "name"}:
        assert config[key] == cfg[key], key
    assert "loss" not in config and model.name == "ganomaly"


@pytest.mark.parametrize(
    ("shape", "changes", "message"),
    [
        ((32, 2), {}, r"model=ganomaly needs images .* gives windows of 32 steps"),
        ((14, 14, 1), {}, "num_hidden_layers=2 needs image sides divisible by 4; .* 14x14"),
        ((16, 16, 1), {"w_con": -1.0}, r"model\.w_con=-1\.0 must be >= 0"),
        ((16, 16, 1), {"reset_threshold": -1.0}, r"model\.reset_threshold=-1\.0 must be >= 0"),
        (
            (16, 16, 1),
            {"loss": "mse"},
            r"model\.loss=mse is not a setting of model=ganomaly; its settings are: filters",
        ),
        ((16, 16, 1), {"score": "distance"}, r"model\.score=distance .* latent_distance, mse"),
    ],
)
def test_wrong_shapes_and_settings_say_what_fits(shape, changes, message):
    with pytest.raises(AdxUserError, match=message):
        build_model(OmegaConf.merge(CFG, changes), shape)
