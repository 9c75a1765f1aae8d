"""The dense autoencoder: layer structure, planted row anomalies, save/load, bad settings."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.training.seeding import apply_seed
from tests.models.planted import correlated_rows

CFG = OmegaConf.load(Path(__file__).resolve().parents[2] / "configs/model/dense_ae.yaml")


def test_layers_mirror_and_take_batch_norm_and_dropout_per_layer():
    cfg = OmegaConf.merge(CFG, {"units": [16, 8], "dropout": [0.3, 0.0]})
    model = build_model(cfg, (17,))
    kinds = [type(layer).__name__ for layer in model.encoder.layers]
    block = ["Dense", "BatchNormalization"]
    assert kinds == ["Flatten", *block, "McDropout", *block, "Dense"]
    decoder_widths = [layer.units for layer in model.decoder.layers if hasattr(layer, "units")]
    assert decoder_widths == [8, 16, 17]
    assert model.decoder.layers[-2].activation.__name__ == "linear"


def test_windows_are_flattened_and_reshaped_back():
    model = build_model(CFG, (32, 2))
    x = np.zeros((3, 32, 2), "float32")
    assert model(x).shape == (3, 32, 2) and model.score(x).shape == (3,)


def test_planted_row_anomalies_score_higher():
    apply_seed(3, deterministic=True)
    train = correlated_rows(600, 17, seed=1)
    model = build_model(OmegaConf.merge(CFG, {"units": [32, 16], "latent_dim": 3}), (17,))
    model.compile_for_training(keras.optimizers.Adam(3e-3))
    model.fit(train, train, epochs=40, batch_size=64, verbose=0)
    test = np.concatenate([correlated_rows(100, 17, 2), correlated_rows(30, 17, 3, True)])
    labels = np.r_[np.zeros(100), np.ones(30)]
    assert roc_auc_score(labels, model.score(test)) >= 0.85


def test_save_and_load_reproduce_scores_exactly(tmp_path: Path):
    model = build_model(OmegaConf.merge(CFG, {"dropout": 0.2}), (17,))
    x = correlated_rows(20, 17, seed=4)
    model.save(tmp_path / "m.keras")
    loaded = load_checkpoint(tmp_path / "m.keras")
    assert np.array_equal(loaded.score(x), model.score(x))
    assert loaded.get_config()["dropout"] == [0.2, 0.2]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dropout": [0.1]}, "needs one rate per hidden layer"),
        ({"dropout": 1.0}, "must lie in"),
        ({"activation": "swish"}, "model.activation=swish; choose one of"),
        ({"latent_dim": 0}, "must be >= 1"),
    ],
)
def test_bad_settings_name_the_key(change: dict, message: str):
    with pytest.raises(AdxUserError, match=message):
        build_model(OmegaConf.merge(CFG, change), (17,))
