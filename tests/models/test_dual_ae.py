"""The dual autoencoder: parameter counts of the ablation variants, layer widths,
MSLE training and L2 scoring, planted image anomalies, save/load, bad settings."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.layers import McDropout
from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.scoring.scorer import dropout_sampling
from anomaly_cli.training.seeding import apply_seed
from tests.models.planted import fit_briefly, planted_images

CFG = OmegaConf.load(Path(__file__).resolve().parents[2] / "configs/model/dual_ae.yaml")
SMALL = OmegaConf.merge(CFG, {"units": [8, 4], "decoder_units": [6]})


def dense_widths(model: keras.Model) -> list[int]:
    return [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def kinds(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize(
    ("encoders", "expected"),
    [
        # 4x4x1 samples, d = 16. One encoder: 16*8+8 + 8*4+4 = 172.
        # Decoder: (latent*6 + 6) + (6*16 + 16) with latent 8 (both) or 4 (one).
        ("both", 2 * 172 + (8 * 6 + 6) + 112),  # 510
        ("global", 172 + (4 * 6 + 6) + 112),  # 314
        ("local", 172 + (4 * 6 + 6) + 112),  # 314
    ],
)
def test_parameter_counts_of_the_dual_model_and_its_single_encoder_ablations(
    encoders: str, expected: int
):
    model = build_model(OmegaConf.merge(SMALL, {"encoders": encoders}), (4, 4, 1))
    assert model.count_params() == expected
    assert model.decoder.layers[0].kernel.shape == (8 if encoders == "both" else 4, 6)
    assert (model.global_encoder is None) == (encoders == "local")
    assert (model.local_encoder is None) == (encoders == "global")


def test_layer_widths_dropout_and_slope_follow_the_config():
    cfg = OmegaConf.merge(
        CFG,
        {
            "units": [16, 8, 4],
            "decoder_units": [8, 16],
            "dropout": 0.1,
            "local_dropout": [0.3, 0.2, 0.0],
            "leaky_relu_slope": 0.05,
        },
    )
    model = build_model(cfg, (4, 4, 3))
    # One rate: dropout after every hidden layer but the code (Table 2).
    assert " ".join(kinds(model.global_encoder)) == (
        "Flatten Dense LeakyReLU McDropout Dense LeakyReLU McDropout Dense LeakyReLU"
    )
    for encoder in (model.global_encoder, model.local_encoder):
        assert dense_widths(encoder) == [16, 8, 4]
    rates = [
        [layer.rate for layer in enc.layers if isinstance(layer, McDropout)]
        for enc in (model.global_encoder, model.local_encoder, model.decoder)
    ]
    assert rates == [[0.1, 0.1], [0.3, 0.2], [0.1, 0.1]]
    assert dense_widths(model.decoder) == [8, 16, 48]
    assert model.decoder.layers[0].kernel.shape == (8, 8)  # two 4-wide codes, concatenated
    assert model.decoder.layers[-2].activation.__name__ == "sigmoid"
    slopes = {
        float(layer.negative_slope)
        for sub in (model.global_encoder, model.local_encoder, model.decoder)
        for layer in sub.layers
        if isinstance(layer, keras.layers.LeakyReLU)
    }
    assert slopes == {0.05}


def test_defaults_are_the_papers_widths_loss_and_score():
    model = build_model(CFG, (8, 8, 1))
    assert dense_widths(model.global_encoder) == [2048, 1024, 512, 256]
    assert dense_widths(model.local_encoder) == [2048, 1024, 512, 256]
    assert dense_widths(model.decoder) == [512, 1024, 2048, 64]
    assert model.decoder.layers[0].kernel.shape == (512, 512)
    assert (model.loss_name, model.score_name) == ("msle", "l2")


def test_training_loss_is_msle_and_score_is_the_l2_norm():
    model = build_model(SMALL, (4, 4, 1))
    model.compile_for_training(keras.optimizers.Adam(1e-3))
    x = np.random.default_rng(0).uniform(size=(6, 4, 4, 1)).astype("float32")
    recon = np.asarray(model(x), dtype=np.float64)
    msle = np.mean((np.log1p(x) - np.log1p(recon)) ** 2)
    assert model.evaluate(x, x, verbose=0) == pytest.approx(msle, rel=1e-4)
    norms = np.sqrt(((x - recon) ** 2).sum(axis=(1, 2, 3)))
    assert np.allclose(model.score(x), norms, rtol=1e-5)


def test_any_sample_shape_is_reconstructed_in_its_shape():
    x_img = np.random.default_rng(1).uniform(size=(5, 16, 16, 1)).astype("float32")
    model = build_model(SMALL, (16, 16, 1))
    assert model(x_img).shape == x_img.shape
    assert model.score(x_img, batch_size=2).shape == (5,)
    assert model.anomaly_map(x_img, batch_size=2).shape == (5, 16, 16)
    for shape in ((17,), (32, 2)):
        x = np.random.default_rng(2).uniform(size=(3, *shape)).astype("float32")
        other = build_model(SMALL, shape)
        assert other(x).shape == x.shape and other.score(x).shape == (3,)
        assert not other.produces_maps


def test_planted_image_anomalies_score_higher():
    apply_seed(2, deterministic=True)
    train, test, labels = planted_images(n_train=300, n_test=120, n_anomalies=40)
    cfg = OmegaConf.merge(CFG, {"units": [64, 16], "decoder_units": [64], "dropout": 0.05})
    model = build_model(cfg, train.shape[1:])
    fit_briefly(model, train, epochs=25, learning_rate=3e-3)
    assert roc_auc_score(labels, model.score(test)) >= 0.85


def test_save_and_load_reproduce_scores_exactly(tmp_path: Path):
    apply_seed(4, deterministic=True)
    train, test, _ = planted_images(n_train=64, n_test=10, n_anomalies=3, size=8)
    cfg = OmegaConf.merge(SMALL, {"encoders": "local", "local_dropout": [0.25, 0.0]})
    model = build_model(cfg, train.shape[1:])
    fit_briefly(model, train, epochs=2)
    model.save(tmp_path / "m.keras")
    loaded = load_checkpoint(tmp_path / "m.keras")
    assert type(loaded).__name__ == "DualAutoencoder" and loaded.global_encoder is None
    assert loaded.get_config()["local_dropout"] == [0.25, 0.0]
    assert np.array_equal(loaded.score(test), model.score(test))
    assert np.array_equal(loaded.anomaly_map(test), model.anomaly_map(test))


def test_monte_carlo_dropout_reaches_both_encoders_and_the_decoder():
    model = build_model(OmegaConf.merge(SMALL, {"dropout": 0.3}), (4, 4, 1))
    x = np.random.default_rng(3).uniform(size=(4, 4, 4, 1)).astype("float32")
    plain = model.score(x)
    with dropout_sampling(model) as active:
        # One hidden encoder layer each (the code has none) and one decoder layer.
        assert len(active) == 3
        first, second = model.score(x), model.score(x)
    assert not np.array_equal(first, second)
    assert np.array_equal(model.score(x), plain)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"encoders": "pixel"}, r"model\.encoders=pixel; choose one of: both, global, local"),
        ({"dropout": [0.1]}, r"model\.dropout=\[0\.1\] needs one rate per hidden layer \(2\)"),
        ({"local_dropout": 0.7, "dropout": 1.0}, r"model\.dropout=1\.0 rates must lie in"),
        ({"dropout": [0.1, 0.0]}, r"model\.decoder_dropout=null reuses model\.dropout"),
        ({"decoder_units": []}, r"model\.decoder_units=\[\] must be a non-empty list"),
        ({"leaky_relu_slope": 1.5}, r"model\.leaky_relu_slope=1\.5 must lie in \[0, 1\)"),
        ({"loss": "l2"}, r"model\.loss=l2"),
    ],
)
def test_bad_settings_name_the_key(change: dict, message: str):
    with pytest.raises(AdxUserError, match=message):
        build_model(OmegaConf.merge(SMALL, change), (4, 4, 1))
