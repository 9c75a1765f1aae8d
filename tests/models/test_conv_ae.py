"""The conv autoencoder: shapes, the fixed decoder widths, save/load, shape errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.loading import build_model, load_checkpoint

CFG = OmegaConf.create(
    {
        "_target_": "anomaly_cli.models.conv_ae.ConvAutoencoder",
        "name": "conv_ae",
        "num_hidden_layers": 3,
        "filters": 8,
        "units": [32],
        "latent_dim": 4,
        "loss": "mse",
        "score": "mse",
    }
)


def images(n: int = 5, shape: tuple[int, ...] = (16, 16, 3)) -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(n, *shape)).astype("float32")


def test_filters_double_in_the_encoder_and_halve_in_the_decoder():
    model = build_model(CFG, (16, 16, 3))
    enc = [layer.filters for layer in model.encoder.layers if hasattr(layer, "filters")]
    dec = [layer.filters for layer in model.decoder.layers if hasattr(layer, "filters")]
    assert enc == [8, 16, 32]
    assert dec == [32, 16, 8, 3]  # mirror, then back to the input's channels
    assert model.decoder.layers[1].target_shape == (2, 2, 32)


def test_reconstruction_score_and_map_shapes():
    model = build_model(CFG, (16, 16, 3))
    x = images()
    assert model(x).shape == x.shape
    scores, maps = model.score(x, batch_size=2), model.anomaly_map(x, batch_size=2)
    assert scores.shape == (5,) and maps.shape == (5, 16, 16)
    recon = np.asarray(model(x))
    assert np.allclose(scores, ((x - recon) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    assert np.allclose(maps.mean(axis=(1, 2)), scores, rtol=1e-5)


def test_mae_score_is_mean_absolute_error():
    model = build_model(OmegaConf.merge(CFG, {"score": "mae"}), (16, 16, 1))
    x = images(shape=(16, 16, 1))
    recon = np.asarray(model(x))
    assert np.allclose(model.score(x), np.abs(x - recon).mean(axis=(1, 2, 3)), rtol=1e-5)


def test_save_and_load_reproduce_scores_exactly(tmp_path: Path):
    model = build_model(OmegaConf.merge(CFG, {"score": "mae"}), (8, 8, 1))
    path = tmp_path / "best.keras"
    model.save(path)
    loaded = load_checkpoint(path)
    x = images(shape=(8, 8, 1))
    assert type(loaded).__name__ == "ConvAutoencoder" and loaded.score_name == "mae"
    assert np.array_equal(model.score(x), loaded.score(x))


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            (17,),
            "model=conv_ae needs images .* gives rows of 17 features; "
            ".* any sample: deep_svdd, dense_ae, dual_ae",
        ),
        ((12, 12, 1), "divisible by 8; the dataset gives 12x12"),
    ],
)
def test_wrong_input_shapes_say_what_fits(shape: tuple[int, ...], message: str):
    with pytest.raises(AdxUserError, match=message):
        build_model(CFG, shape)


def test_wrong_shape_names_the_dataset_when_built_for_one():
    with pytest.raises(
        AdxUserError, match=r"^model=conv_ae needs images .*; dataset=tabular gives"
    ):
        build_model(CFG, (17,), dataset_name="tabular")


def test_unknown_score_is_a_user_error():
    with pytest.raises(AdxUserError, match=r"model\.score=l3"):
        build_model(OmegaConf.merge(CFG, {"score": "l3"}), (8, 8, 1))
