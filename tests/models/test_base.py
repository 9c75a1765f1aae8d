"""The model base: one declaration per setting, what a model accepts, the hint
that names what fits, and no reconstruction placeholders outside that family."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from anomaly_cli.models.base import (
    SAMPLE_KINDS,
    AnomalyModel,
    ReconstructionModel,
    batch_inputs,
    models_by_kind,
)
from anomaly_cli.models.deep_svdd import DeepSVDD
from anomaly_cli.models.ganomaly import GANomaly
from tests.models.configs import MODEL_NAMES, model_config

META_KEYS = {"_target_", "name"}


def model_class(name: str) -> type[AnomalyModel]:
    module, _, attribute = model_config(name)["_target_"].rpartition(".")
    return getattr(importlib.import_module(module), attribute)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_yaml_lists_exactly_the_models_declared_settings(name: str):
    cls = model_class(name)
    assert set(model_config(name)) - META_KEYS == set(cls.hyperparameters)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_yaml_default_is_the_declared_default(name: str):
    """So a model built in Python without a config is the YAML's model."""
    cfg = model_config(name)
    cls = model_class(name)
    if name == "beta_vae":  # vae's class, with the one setting beta_vae changes
        assert {k for k, spec in cls.hyperparameters.items() if spec.default != cfg[k]} == {"beta"}
        return
    for key, spec in cls.hyperparameters.items():
        default = cls.score_kinds[0] if key == "score" and spec.default is None else spec.default
        assert cfg[key] == default, key


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_model_says_what_it_accepts_and_scores(name: str):
    cls = model_class(name)
    assert cls.accepts in SAMPLE_KINDS and cls.model_name
    assert cls.score_kinds and model_config(name)["score"] in cls.score_kinds


def test_models_by_kind_comes_from_the_yamls():
    by_kind = models_by_kind()
    assert sorted(n for names in by_kind.values() for n in names) == MODEL_NAMES
    for kind, names in by_kind.items():
        assert all(model_class(n).accepts == kind for n in names)


def test_detectors_with_their_own_objective_have_no_reconstruction_placeholders():
    for cls in (DeepSVDD, GANomaly):
        assert not issubclass(cls, ReconstructionModel)
        assert "loss" not in cls.hyperparameters
        assert "reconstruct" not in vars(DeepSVDD)
    assert DeepSVDD.score_kinds == ("latent_distance",)


def test_a_setting_the_model_does_not_declare_is_named():
    with pytest.raises(Exception, match=r"model\.rep_dim=3 is not a setting of model=dense_ae"):
        model_class("dense_ae")((4,), rep_dim=3)


def test_batch_inputs_takes_x_from_any_batch_form():
    x = np.zeros((2, 3))
    assert batch_inputs(x) is x
    assert batch_inputs((x,)) is x and batch_inputs((x, None)) is x and batch_inputs([x, 1, 2]) is x
