"""The sequence autoencoders lstm_ae and conv1d_ae: layer structure, shapes, per-step
maps, planted window anomalies, save/load, divisibility and shape errors."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf
from sklearn.metrics import roc_auc_score

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.layers import McDropout
from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.scoring.scorer import all_layers
from anomaly_cli.training.seeding import apply_seed
from tests.models.planted import fit_briefly, planted_windows

CONFIGS = Path(__file__).resolve().parents[2] / "configs/model"
# Small widths keep the file fast; one LSTM layer each way traces in half the time.
LSTM = OmegaConf.merge(OmegaConf.load(CONFIGS / "lstm_ae.yaml"), {"units": [8]})
CONV = OmegaConf.merge(
    OmegaConf.load(CONFIGS / "conv1d_ae.yaml"), {"filters": [8, 16], "latent_dim": 8}
)
MODELS = {"lstm_ae": LSTM, "conv1d_ae": CONV}


def windows(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def kinds(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def test_lstm_stack_mirrors_its_units_around_the_repeated_code():
    stacked = OmegaConf.merge(LSTM, {"units": [16, 8]})
    model = build_model(OmegaConf.merge(stacked, {"latent_dim": 4, "dropout": 0.2}), (12, 3))
    assert kinds(model.encoder) == ["LSTM", "McDropout", "LSTM", "Dense"]
    assert [layer.units for layer in model.encoder.layers if hasattr(layer, "units")] == [16, 8, 4]
    assert model.encoder.layers[0].return_sequences and not model.encoder.layers[2].return_sequences
    assert kinds(model.decoder) == [
        "RepeatVector", "LSTM", "McDropout", "LSTM", "McDropout", "TimeDistributed"
    ]  # fmt: skip
    assert model.decoder.layers[0].n == 12
    assert [model.decoder.layers[i].units for i in (1, 3)] == [8, 16]
    out = model.decoder.layers[-1].layer
    assert out.units == 3 and out.activation.__name__ == "linear"
    assert {layer.rate for layer in all_layers(model) if isinstance(layer, McDropout)} == {0.2}
    # Without latent_dim the last LSTM's output is the code.
    plain = build_model(stacked, (12, 3))
    assert plain.encoder.output_shape == (None, 8) and "Dense" not in kinds(plain.encoder)


def test_conv_stack_shortens_by_the_strides_and_mirrors_its_filters():
    cfg = OmegaConf.merge(CONV, {"kernel_size": 3, "strides": 2, "dropout": 0.1})
    model = build_model(cfg, (16, 2))
    assert kinds(model.encoder) == ["Conv1D", "McDropout", "Conv1D", "Flatten", "Dense"]
    assert [layer.filters for layer in model.encoder.layers if hasattr(layer, "filters")] == [8, 16]
    assert model.encoder.output_shape == (None, 8)
    assert model.decoder.layers[1].target_shape == (4, 16)  # 16 steps / 2 / 2
    convs = [layer for layer in model.decoder.layers if hasattr(layer, "filters")]
    assert [type(c).__name__ for c in convs] == ["Conv1DTranspose", "Conv1DTranspose", "Conv1D"]
    assert [c.filters for c in convs] == [16, 8, 2]
    assert convs[-1].activation.__name__ == "linear"
    # latent_dim=null keeps the shortened feature map as the code.
    wide = build_model(OmegaConf.merge(CONV, {"latent_dim": None, "strides": 4}), (32, 2))
    assert wide.encoder.output_shape == (None, 2, 16)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape", [(8, 1), (16, 3), (32, 5)])
def test_reconstruction_has_the_input_shape_and_scores_one_per_window(
    name: str, shape: tuple[int, int]
):
    model = build_model(MODELS[name], shape, dataset_name="timeseries")
    x = windows(5, shape)
    recon = np.asarray(model(x))
    assert recon.shape == x.shape
    scores = model.score(x, batch_size=2)
    assert scores.shape == (5,)
    assert np.allclose(scores, ((x - recon) ** 2).mean(axis=(1, 2)), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_anomaly_map_is_the_per_step_error_and_no_pixel_maps_are_claimed(name: str):
    model = build_model(OmegaConf.merge(MODELS[name], {"score": "mae"}), (16, 3))
    x = windows(4, (16, 3), seed=1)
    recon = np.asarray(model(x), dtype=np.float64)
    assert not model.produces_maps
    steps = model.anomaly_map(x, batch_size=3)
    assert steps.shape == (4, 16)
    assert np.allclose(steps, np.abs(x - recon).mean(axis=2), rtol=1e-5)
    model.set_score("l2")  # l2's per-step value is the norm over channels
    assert np.allclose(model.anomaly_map(x), np.sqrt(((x - recon) ** 2).sum(axis=2)), rtol=1e-5)


@pytest.mark.parametrize(
    ("name", "cfg", "epochs", "seed"),
    [
        ("lstm_ae", {"units": [32]}, 10, 0),
        ("conv1d_ae", {}, 10, 1),
    ],
)
def test_planted_window_anomalies_score_higher(name: str, cfg: dict, epochs: int, seed: int):
    apply_seed(seed, deterministic=True)
    train, test, labels = planted_windows(n_train=200, n_test=120, n_anomalies=40, window=16)
    assert np.allclose((test**2).mean(axis=(1, 2)), 1.0, atol=1e-5)
    model = build_model(OmegaConf.merge(MODELS[name], cfg), train.shape[1:])
    fit_briefly(model, train, epochs=epochs, learning_rate=1e-2)
    assert roc_auc_score(labels, model.score(test)) >= 0.85


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_and_load_reproduce_scores_exactly(name: str, tmp_path: Path):
    apply_seed(4, deterministic=True)
    train, test, _ = planted_windows(n_train=64, n_test=10, n_anomalies=3, window=8)
    cfg = OmegaConf.merge(MODELS[name], {"latent_dim": 3, "dropout": 0.25, "score": "l2"})
    model = build_model(cfg, train.shape[1:])
    fit_briefly(model, train, epochs=1)
    model.save(tmp_path / "m.keras")
    loaded = load_checkpoint(tmp_path / "m.keras")
    assert type(loaded) is type(model)
    assert loaded.get_config()["dropout"] == 0.25 and loaded.score_name == "l2"
    assert np.array_equal(loaded.score(test), model.score(test))
    assert np.array_equal(loaded.anomaly_map(test), model.anomaly_map(test))


@pytest.mark.parametrize(
    ("change", "window", "message"),
    [
        ({}, 30, r"strides=2 and 2 conv layers .* divisible by 4; .* windows of 30 steps"),
        ({"strides": 3}, 16, r"divisible by 9; .* windows of 16 steps"),
        ({"filters": [4, 4, 4]}, 20, r"filters=\[4, 4, 4\]\) .* divisible by 8; .* 20 steps"),
    ],
)
def test_conv_windows_must_divide_by_the_stride_factor(change: dict, window: int, message: str):
    with pytest.raises(AdxUserError, match=message):
        build_model(OmegaConf.merge(CONV, change), (window, 2))


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(
    ("shape", "gives"), [((17,), "rows of 17 features"), ((16, 16, 1), "16x16 images")]
)
def test_rows_or_images_point_to_the_timeseries_dataset(
    name: str, shape: tuple[int, ...], gives: str
):
    with pytest.raises(AdxUserError, match=rf"model={name} needs windows \(steps, channels\)") as e:
        build_model(MODELS[name], shape, dataset_name="tabular")
    assert f"dataset=tabular gives {gives}" in str(e.value)
    assert "use a dataset of windows" in str(e.value)


@pytest.mark.parametrize(
    ("cfg", "change", "message"),
    [
        (LSTM, {"units": []}, r"model\.units=\[\] must be a non-empty list"),
        (LSTM, {"units": [8, 0]}, r"model\.units=\[8, 0\] must all be >= 1"),
        (LSTM, {"latent_dim": 0}, r"model\.latent_dim=0 must be >= 1, or null"),
        (LSTM, {"dropout": 1.0}, r"model\.dropout=1\.0 must lie in \[0, 1\)"),
        (LSTM, {"dropout": [0.1, 0.2]}, r"model\.dropout=\[0\.1, 0\.2\] must be one rate"),
        (LSTM, {"loss": "msle"}, r"model\.loss=msle is not supported; choose one of: mse, mae"),
        (CONV, {"score": "msle"}, r"model\.score=msle is not supported"),
        (CONV, {"activation": "swish"}, r"model\.activation=swish; choose one of"),
        (CONV, {"kernel_size": 0}, r"model\.kernel_size=0 must be >= 1"),
        (CONV, {"filters": [8, -1]}, r"model\.filters=\[8, -1\] must all be >= 1"),
    ],
)
def test_bad_settings_name_the_key(cfg: DictConfig, change: dict, message: str):
    with pytest.raises(AdxUserError, match=message):
        build_model(OmegaConf.merge(cfg, change), (16, 2))
