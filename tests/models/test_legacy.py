"""Checkpoints and configs written before the renames still load, under today's names."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from anomaly_cli.models.legacy import RETIRED, RETIRED_VALUES, upgrade
from anomaly_cli.models.loading import build_model, load_checkpoint
from tests.models.configs import MODEL_NAMES, model_config


def test_upgrade_renames_every_retired_key():
    old = {
        "rep_dim": 8,
        "num_filters": 16,
        "base_filters": 16,
        "conv_filters": [4, 8],
        "encoder_units": [8, 4],
        "depth": 2,
    }
    for key, value in old.items():
        new = RETIRED[f"model.{key}"].removeprefix("model.")
        assert upgrade({key: value, "loss": "mse"}) == {new: value, "loss": "mse"}


@pytest.mark.parametrize(("dense_units", "units"), [(256, [256]), (0, [])])
def test_upgrade_turns_one_dense_width_into_a_list(dense_units: int, units: list[int]):
    assert upgrade({"dense_units": dense_units, "latent_dim": 4}) == {
        "units": units,
        "latent_dim": 4,
    }


def test_upgrade_drops_the_loss_placeholders_of_models_with_their_own_objective():
    assert upgrade({"loss": "svdd", "nu": 0.1}) == {"nu": 0.1}
    assert upgrade({"loss": "ganomaly", "w_adv": 1.0}) == {"w_adv": 1.0}
    assert upgrade({"loss": "mse"}) == {"loss": "mse"}


def test_upgrade_renames_the_latent_distance_score_and_keeps_todays_config():
    assert upgrade({"score": "distance"}) == {"score": "latent_distance"}
    assert RETIRED_VALUES["model.score"] == {"distance": "latent_distance", "map_max": "max"}
    for name in MODEL_NAMES:
        today = dict(model_config(name))
        assert upgrade(today) == today, name


@pytest.mark.parametrize(
    ("shape", "units"), [((8, 8, 1), [16]), ((17,), [12, 6])], ids=["images", "rows"]
)
def test_upgrade_picks_deep_svdds_units_by_the_checkpoints_sample_kind(shape, units):
    old = {"sample_shape": list(shape), "dense_units": 16, "hidden_units": [12, 6]}
    assert upgrade(old) == {"sample_shape": list(shape), "units": units}
    # A run's YAML (no sample shape) with the old defaults keeps the per-kind default.
    assert upgrade({"dense_units": 0, "hidden_units": [64, 32]}) == {"units": None}


def test_retired_names_appear_in_no_model_yaml():
    old_keys = {key.removeprefix("model.") for key in RETIRED}
    for name in MODEL_NAMES:
        assert not old_keys & set(model_config(name)), name
        assert model_config(name)["score"] not in RETIRED_VALUES["model.score"]


def _rewrite_config(path: Path, rename: dict[str, object], drop: tuple[str, ...]) -> None:
    """Turn a checkpoint into one written before the renames: old keys, old values."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    saved = json.loads(files["config.json"])
    config = saved["config"]
    for key in drop:
        config.pop(key)
    config.update(rename)
    files["config.json"] = json.dumps(saved).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    ("name", "shape", "changes", "old", "drop"),
    [
        (
            "conv_ae",
            (8, 8, 1),
            {"filters": 4, "units": [16], "latent_dim": 4},
            {"num_filters": 4, "dense_units": 16},
            ("filters", "units"),
        ),
        (
            "deep_svdd",
            (8, 8, 1),
            {"filters": [4, 8], "units": [], "latent_dim": 4},
            {"conv_filters": [4, 8], "dense_units": 0, "hidden_units": [64, 32], "rep_dim": 4}
            | {"score": "distance", "loss": "svdd"},
            ("filters", "units", "latent_dim"),
        ),
        (
            "deep_svdd",
            (9,),
            {"units": [8], "latent_dim": 4},
            {"hidden_units": [8], "dense_units": 0, "rep_dim": 4, "conv_filters": [32, 64]}
            | {"score": "distance", "loss": "svdd"},
            ("filters", "units", "latent_dim"),
        ),
        (
            "ganomaly",
            (8, 8, 1),
            {"num_hidden_layers": 2, "filters": 4, "latent_dim": 4},
            {"num_filters": 4, "loss": "ganomaly"},
            ("filters",),
        ),
        (
            "unet",
            (8, 8, 1),
            {"num_hidden_layers": 2, "filters": 4},
            {"depth": 2, "base_filters": 4},
            ("num_hidden_layers", "filters"),
        ),
        (
            "dual_ae",
            (9,),
            {"units": [8, 4], "decoder_units": [8]},
            {"encoder_units": [8, 4]},
            ("units",),
        ),
    ],
)
def test_a_checkpoint_saved_with_the_old_names_loads_and_scores_the_same(
    name, shape, changes, old, drop, tmp_path: Path
):
    model = build_model(OmegaConf.merge(model_config(name), changes), shape)
    path = tmp_path / "old.keras"
    model.save(path)
    _rewrite_config(path, old, drop)
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))["config"]
    assert set(old) <= set(saved) and not set(drop) & set(saved)
    loaded = load_checkpoint(path)
    if name == "deep_svdd":
        assert saved["score"] == "distance" and loaded.score_name == "latent_distance"
    x = np.random.default_rng(0).uniform(size=(5, *shape)).astype("float32")
    assert type(loaded) is type(model)
    assert np.array_equal(loaded.score(x), model.score(x))
    for key in drop:
        assert loaded.get_config()[key] == model.get_config()[key], key
