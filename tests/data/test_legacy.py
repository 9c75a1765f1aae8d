"""Dataset configs written before the renames map onto today's names."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from omegaconf import OmegaConf

from anomaly_cli.config_dir import config_dir
from anomaly_cli.data.legacy import RETIRED, RETIRED_VALUES, upgrade
from tests.conftest import compose_config

DATASETS = sorted(p.stem for p in (config_dir() / "dataset").glob("*.yaml"))


def test_npz_labels_become_classes_and_the_trainer_seed_becomes_the_data_seed():
    old = {
        "_target_": "anomaly_cli.data.npz.load",
        "name": "npz",
        "normal_label": [0, 2],
        "anomaly_labels": [1],
        "preprocess": {"image_size": 32},
    }
    new = upgrade(old, trainer_seed=7)
    assert new == {
        "_target_": "anomaly_cli.data.npz.load",
        "name": "npz",
        "normal_class": [0, 2],
        "anomaly_classes": [1],
        "preprocess": {"image_size": 32},
        "seed": 7,
    }


def test_label_column_is_a_class_column_in_tables_and_an_anomaly_flag_in_series():
    table = upgrade({"_target_": "anomaly_cli.data.tabular.load", "label_column": "y"}, 1)
    series = upgrade(
        {
            "_target_": "anomaly_cli.data.timeseries.load",
            "label_column": "flag",
            "missing": "interpolate",
        },
        1,
    )
    assert table == {"_target_": "anomaly_cli.data.tabular.load", "class_column": "y", "seed": 1}
    assert series == {
        "_target_": "anomaly_cli.data.timeseries.load",
        "anomaly_column": "flag",
        "missing": "impute",
        "seed": 1,
    }


@pytest.mark.parametrize("source", ["digits", "synthetic"])
def test_a_top_level_image_size_moves_under_preprocess(source: str):
    old = {"_target_": f"anomaly_cli.data.{source}.load", "image_size": 8, "seed": 3}
    assert upgrade(old, trainer_seed=555) == {
        "_target_": f"anomaly_cli.data.{source}.load",
        "preprocess": {"image_size": 8},
        "seed": 3,  # a data seed already there is kept
    }


def test_a_new_name_given_next_to_the_old_one_wins():
    old = {"_target_": "anomaly_cli.data.npz.load", "normal_label": 0, "normal_class": 1}
    assert upgrade(old, trainer_seed=None) == {
        "_target_": "anomaly_cli.data.npz.load",
        "normal_class": 1,
    }


def test_the_input_is_left_untouched():
    old = {"_target_": "anomaly_cli.data.digits.load", "image_size": 8, "preprocess": {}}
    before = copy.deepcopy(old)
    upgrade(old, trainer_seed=1)
    assert old == before


def test_a_plugin_source_keeps_its_own_label_column():
    old = {"_target_": "my_plugin.data.load", "label_column": "y", "seed": 0}
    assert upgrade(old, trainer_seed=1) == old


@pytest.fixture(scope="module", params=DATASETS)
def composed(request: pytest.FixtureRequest) -> dict:
    """dataset=<name> as a run's config.yaml holds it (presets merged with their base)."""
    cfg = compose_config("train", f"dataset={request.param}")
    return OmegaConf.to_container(cfg.dataset, resolve=True)


def test_todays_configs_come_back_unchanged(composed: dict):
    assert upgrade(composed, trainer_seed=1) == composed


def test_no_dataset_config_uses_a_retired_key_or_value(composed: dict):
    cfg = OmegaConf.create(composed)
    for dotted in RETIRED:
        assert OmegaConf.select(cfg, dotted.removeprefix("dataset.")) is None, dotted
    for dotted, renames in RETIRED_VALUES.items():
        assert OmegaConf.select(cfg, dotted.removeprefix("dataset.")) not in renames, dotted
    assert composed["seed"] == 555  # the data seed, as trainer.seed's default was


def test_every_rename_is_listed():
    assert RETIRED == {
        "dataset.normal_label": "dataset.normal_class",
        "dataset.anomaly_labels": "dataset.anomaly_classes",
        "dataset.label_column": "dataset.class_column or dataset.anomaly_column",
        "dataset.image_size": "dataset.preprocess.image_size",
    }
    assert RETIRED_VALUES == {"dataset.missing": {"interpolate": "impute"}}


def _old_run_dataset(tmp_path) -> dict:
    """A timeseries dataset section as a run trained before the renames saved it."""
    from tests.data.fixtures_timeseries import make_timeseries_csv

    return {
        "_target_": "anomaly_cli.data.timeseries.load",
        "name": "timeseries",
        "path": str(make_timeseries_csv(tmp_path)),
        "value_columns": None,
        "time_column": "time",
        "label_column": "label",
        "intervals": None,
        "intervals_path": None,
        "missing": "interpolate",
        "window": 16,
        "stride": 8,
        "split": {"train": 0.6, "val": 0.2, "test": 0.2},
    }


def test_an_upgraded_old_config_rebuilds_the_same_data_as_todays(tmp_path):
    from anomaly_cli.data.loader import load_splits

    old = _old_run_dataset(tmp_path)
    today = compose_config(
        "train",
        "dataset=timeseries",
        f"dataset.path={old['path']}",
        "dataset.time_column=time",
        "dataset.anomaly_column=label",
        "dataset.window=16",
    )
    rebuilt = load_splits(OmegaConf.create(upgrade(old, trainer_seed=555)))
    fresh = load_splits(today.dataset, today.protocol)
    for name in ("train", "val", "test"):
        a, b = getattr(rebuilt, name), getattr(fresh, name)
        assert list(a.ids) == list(b.ids)
        np.testing.assert_array_equal(a.x, b.x)
    assert rebuilt.transform == fresh.transform


def test_an_old_digits_run_gets_its_trainer_seed_as_the_data_seed():
    from anomaly_cli.data.loader import load_splits

    old = OmegaConf.to_container(compose_config("train", "dataset=digits").dataset)
    old.pop("seed")
    old["image_size"] = old.pop("preprocess")["image_size"]
    rebuilt = load_splits(OmegaConf.create(upgrade(old, trainer_seed=7)))
    today = compose_config("train", "dataset=digits", "dataset.seed=7")
    assert list(rebuilt.test.ids) == list(load_splits(today.dataset, today.protocol).test.ids)
