"""Deep SVDD: bias-free encoder, centre away from 0, hand-computed scores and radius,
throw-away pretraining decoder, planted image and row anomalies, save/load, bad settings."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.deep_svdd import DeepSVDD
from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.scoring.scorer import all_layers
from anomaly_cli.training.seeding import apply_seed
from tests.models.planted import correlated_rows, fit_briefly, planted_images, planted_rows

CFG = OmegaConf.load(Path(__file__).resolve().parents[2] / "configs/model/deep_svdd.yaml")
SMALL_IMAGES = OmegaConf.merge(CFG, {"filters": [8, 16], "latent_dim": 16})
SOFT = OmegaConf.merge(CFG, {"objective": "soft_boundary"})


def batches(x: np.ndarray, batch_size: int = 32) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(x).batch(batch_size)


def by_hand(model: DeepSVDD, x: np.ndarray) -> np.ndarray:
    """Squared distances of the encoder's outputs to c, in NumPy."""
    latents = np.asarray(model.encoder(x, training=False), dtype=np.float64)
    return ((latents - np.asarray(model.centre, dtype=np.float64)) ** 2).sum(axis=1)


def test_every_setting_is_in_the_yaml():
    # No `loss` setting: the objective is Deep SVDD's own; sample_shape comes from the data.
    assert set(DeepSVDD.hyperparameters) == set(CFG) - {"_target_", "name"}
    assert "loss" not in DeepSVDD.hyperparameters


@pytest.mark.parametrize("shape", [(16, 16, 1), (17,), (32, 2)])
def test_encoder_has_no_bias_terms_and_uses_leaky_relu(shape: tuple[int, ...]):
    model = build_model(SMALL_IMAGES, shape)
    assert {w.name for w in model.encoder.trainable_weights} == {"kernel"}
    assert {w.name for w in model.encoder.weights} == {"kernel", "moving_mean", "moving_variance"}
    layers = model.encoder.layers
    norms = [lyr for lyr in layers if isinstance(lyr, keras.layers.BatchNormalization)]
    assert norms and all(not n.center and not n.scale and n.momentum == 0.9 for n in norms)
    weighted = [lyr for lyr in layers if lyr.weights and lyr not in norms]
    assert all(not lyr.use_bias for lyr in weighted)
    hidden = [lyr.activation.__name__ for lyr in weighted[:-1]]
    assert hidden and set(hidden) == {"leaky_relu"}
    assert weighted[-1].name == "latent" and weighted[-1].units == 16
    kinds = {type(lyr).__name__ for lyr in weighted}
    assert kinds == ({"Conv2D", "Dense"} if len(shape) == 3 else {"Dense"})
    # c and R are saved state, not trained by gradient.
    assert {w.name for w in model.non_trainable_weights} >= {"centre", "radius"}
    trainable = model.trainable_weights
    assert trainable and all(w.name not in ("centre", "radius") for w in trainable)


@pytest.mark.parametrize("eps", [0.1, 0.5])
def test_centre_components_near_zero_are_pushed_to_plus_minus_eps(eps: float):
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(200, 3))
    noise -= noise.mean(axis=0)
    # Column means 0 (exactly), 0.05, -0.03 and 1.0; an identity encoder passes them on.
    x = np.c_[np.zeros(200), noise + np.array([0.05, -0.03, 1.0])].astype("float32")
    cfg = OmegaConf.merge(CFG, {"units": [], "latent_dim": 4, "batch_norm": False, "eps": eps})
    model = build_model(cfg, (4,))
    model.encoder.get_layer("latent").kernel.assign(np.eye(4, dtype="float32"))
    model.prepare_training(batches(x))
    centre = np.asarray(model.centre)
    assert np.allclose(centre, [eps, eps, -eps, 1.0], atol=1e-6)
    assert np.all(np.abs(centre) >= eps - 1e-7)
    assert float(model.radius) == 0.0


@pytest.mark.parametrize("objective", ["one_class", "soft_boundary"])
def test_scores_are_squared_distances_to_the_centre(objective: str):
    apply_seed(1, deterministic=True)
    train = correlated_rows(128, 17, seed=1)
    cfg = OmegaConf.merge(CFG, {"objective": objective, "warmup_epochs": 1, "nu": 0.2})
    model = build_model(cfg, (17,))
    fit_briefly(model, train, epochs=2)
    test = correlated_rows(20, 17, seed=2, anomalous=True)
    radius = float(model.radius)
    expected = by_hand(model, test) - (radius**2 if objective == "soft_boundary" else 0.0)
    assert (radius > 0) == (objective == "soft_boundary")
    assert not np.allclose(np.asarray(model.centre), 0)
    scores = model.score(test, batch_size=8)
    assert scores.shape == (20,) and scores.dtype == np.float64
    assert np.allclose(scores, expected, rtol=1e-6, atol=1e-9)


def test_radius_stays_zero_in_warm_up_then_is_the_one_minus_nu_quantile():
    apply_seed(2, deterministic=True)
    train = correlated_rows(160, 17, seed=3)
    cfg = OmegaConf.merge(SOFT, {"warmup_epochs": 2, "nu": 0.2, "units": [16]})
    model = build_model(cfg, (17,))
    samples = batches(train)
    model.compile_for_training(keras.optimizers.Adam(1e-3))
    model.prepare_training(samples)
    radii: list[float] = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: radii.append(float(model.radius))
    )
    model.fit(
        batches(train).map(lambda b: (b, b)),
        epochs=4,
        callbacks=[*model.training_callbacks(samples), record],
        shuffle=False,
        verbose=0,
    )
    # Epoch 1 trains with R = 0; from the end of epoch 2 on R follows the quantile.
    assert len(radii) == 4 and radii[0] == 0.0 and all(r > 0 for r in radii[1:])
    distances = np.sqrt(by_hand(model, train))
    assert float(model.radius) == pytest.approx(np.quantile(distances, 0.8), rel=1e-6)
    assert np.mean(distances > float(model.radius)) == pytest.approx(0.2, abs=1 / len(train))


def test_no_warm_up_sets_the_radius_before_the_first_epoch():
    train = correlated_rows(100, 17, seed=4)
    model = build_model(OmegaConf.merge(SOFT, {"warmup_epochs": 0, "nu": 0.5}), (17,))
    model.prepare_training(batches(train))
    median = np.median(np.sqrt(by_hand(model, train)))
    assert float(model.radius) == pytest.approx(median, rel=1e-6)


@pytest.mark.parametrize(
    ("objective", "warmup_epochs", "first"),
    [("soft_boundary", 5, 6), ("soft_boundary", 0, 1), ("one_class", 5, 1)],
)
def test_checkpoints_count_from_the_first_epoch_with_a_radius(
    objective: str, warmup_epochs: int, first: int
):
    cfg = OmegaConf.merge(CFG, {"objective": objective, "warmup_epochs": warmup_epochs})
    model = build_model(cfg, (17,))
    assert model.first_checkpoint_epoch == first
    assert len(model.training_callbacks(batches(np.zeros((4, 17), "float32")))) == (
        objective == "soft_boundary"
    )


def weight_paths(model: keras.Model) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of a model's variables (paths hold numbered layer names)."""
    return [(w.name, tuple(w.shape)) for w in model.weights]


@pytest.mark.parametrize("shape", [(16, 16, 1), (17,)])
def test_pretraining_trains_the_encoder_and_leaves_no_decoder_behind(
    shape: tuple[int, ...], tmp_path: Path
):
    x = np.random.default_rng(0).uniform(size=(64, *shape)).astype("float32")
    # Rows get one hidden Dense layer; images none after their conv layers.
    units = [16] if len(shape) == 1 else []
    cfg = OmegaConf.merge(CFG, {"filters": [4, 8], "units": units, "latent_dim": 8})

    def prepared(pretrain_epochs: int) -> DeepSVDD:
        apply_seed(5, deterministic=True)
        model = build_model(OmegaConf.merge(cfg, {"pretrain_epochs": pretrain_epochs}), shape)
        model.compile_for_training(keras.optimizers.Adam(1e-2))
        model.prepare_training(batches(x, 16))
        return model

    plain, pretrained = prepared(0), prepared(2)
    assert weight_paths(pretrained) == weight_paths(plain)
    # Same seed, so the same initial weights: only pretraining can make them differ.
    kernel = plain.encoder.get_layer("latent").kernel
    assert not np.allclose(pretrained.encoder.get_layer("latent").kernel, kernel)
    if len(shape) == 1:
        # The pretraining shuffle is seeded: a second run gives the same centre, bit for bit.
        assert np.array_equal(np.asarray(prepared(2).centre), np.asarray(pretrained.centre))

    pretrained.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        assert "decoder" not in archive.read("config.json").decode()
    loaded = load_checkpoint(tmp_path / "m.keras")
    assert weight_paths(loaded) == weight_paths(plain)
    layer_names = [lyr.name for lyr in all_layers(loaded) if lyr is not loaded]
    assert layer_names and not any("decoder" in name for name in layer_names)
    assert np.array_equal(loaded.score(x), pretrained.score(x))


def test_planted_image_anomalies_score_higher():
    apply_seed(0, deterministic=True)
    train, test, labels = planted_images(n_train=300, size=16)
    model = build_model(SMALL_IMAGES, train.shape[1:])
    fit_briefly(model, train, epochs=8)
    scores = model.score(test)
    assert scores.shape == (len(test),)
    assert roc_auc_score(labels, scores) >= 0.85


def test_planted_row_anomalies_score_higher():
    apply_seed(0, deterministic=True)
    train, test, labels = planted_rows()
    model = build_model(OmegaConf.merge(CFG, {"latent_dim": 16}), train.shape[1:])
    fit_briefly(model, train, epochs=10)
    assert roc_auc_score(labels, model.score(test)) >= 0.85


def test_save_and_load_reproduce_centre_radius_and_scores_exactly(tmp_path: Path):
    apply_seed(3, deterministic=True)
    train = correlated_rows(128, 17, seed=5)
    model = build_model(OmegaConf.merge(SOFT, {"warmup_epochs": 1}), (17,))
    fit_briefly(model, train, epochs=2)
    model.save(tmp_path / "m.keras")
    loaded = load_checkpoint(tmp_path / "m.keras")
    assert type(loaded) is DeepSVDD and loaded.objective == "soft_boundary"
    assert float(loaded.radius) == float(model.radius) > 0
    assert np.array_equal(np.asarray(loaded.centre), np.asarray(model.centre))
    x = correlated_rows(30, 17, seed=6, anomalous=True)
    assert np.array_equal(loaded.score(x), model.score(x))


def test_scores_whole_samples_and_refuses_anomaly_maps():
    model = build_model(SMALL_IMAGES, (16, 16, 1))
    x = np.random.default_rng(0).uniform(size=(5, 16, 16, 1)).astype("float32")
    assert model(x).shape == (5, 16)
    assert model.score(x, batch_size=2).shape == (5,)
    assert not model.produces_maps
    with pytest.raises(AdxUserError, match="deep_svdd scores whole samples"):
        model.anomaly_map(x)


@pytest.mark.parametrize(
    ("change", "shape", "message"),
    [
        ({"objective": "hard"}, (17,), r"model\.objective=hard; choose one of: one_class"),
        ({"nu": 0.0}, (17,), r"model\.nu=0\.0 must lie in \(0, 1\]"),
        ({"eps": 0.0}, (17,), r"model\.eps=0\.0 must be positive"),
        ({"latent_dim": 0}, (17,), r"model\.latent_dim=0 must be >= 1"),
        ({"warmup_epochs": -1}, (17,), r"model\.warmup_epochs=-1 must be >= 0"),
        ({"filters": []}, (8, 8, 1), r"model\.filters=\[\] must be a non-empty list"),
        (
            {"score": "mse"},
            (17,),
            r"model\.score=mse is not supported; choose one of: latent_distance",
        ),
        # The mirrored decoder of pretraining needs sides that halve cleanly.
        ({"pretrain_epochs": 1}, (18, 18, 1), "divisible by 4; the dataset gives 18x18"),
    ],
)
def test_bad_settings_name_the_key(change: dict, shape: tuple[int, ...], message: str):
    with pytest.raises(AdxUserError, match=message):
        build_model(OmegaConf.merge(CFG, change), shape)


def test_odd_image_sides_are_fine_without_pretraining():
    model = build_model(OmegaConf.merge(SMALL_IMAGES, {"pretrain_epochs": 0}), (18, 18, 1))
    assert model.score(np.zeros((2, 18, 18, 1), "float32")).shape == (2,)
