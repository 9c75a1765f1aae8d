"""One name per config concept (docs/vocabulary.md), and 0.1 run configs in today's names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from anomaly_cli import __version__
from anomaly_cli.errors import AdxUserError
from anomaly_cli.vocabulary import CONCEPTS, RETIRED, second_names, upgrade_run_config
from tests.conftest import REPO, compose_config


def test_every_yaml_names_each_concept_one_way() -> None:
    assert second_names(REPO / "configs") == []


@pytest.mark.parametrize(
    ("file", "text", "fragment"),
    [
        ("model/m.yaml", "rep_dim: 8\n", "model.rep_dim is retired; use model.latent_dim"),
        ("model/m.yaml", "encoder_dim: 8\nlstm_units: [4]\n", "use model.units"),
        ("dataset/d.yaml", "preprocess:\n  image_side: 8\n", "use dataset.preprocess.image_size"),
        ("dataset/d.yaml", "missing: interpolate\n", "interpolate is retired; use impute"),
        ("dataset/d.yaml", "missing: drop\n", "the values of dataset.missing are impute | error"),
        (
            "experiment/e.yaml",
            "# @package _global_\nmodel:\n  depth: 3\n",
            "model.num_hidden_layers",
        ),
        ("model/m.yaml", "score: distance\n", "distance is retired; use latent_distance"),
        ("trainer/t.yaml", "max_epochs: 3\n", "use trainer.epochs"),
    ],
)
def test_a_second_name_is_found(tmp_path: Path, file: str, text: str, fragment: str) -> None:
    (tmp_path / file).parent.mkdir(parents=True)
    (tmp_path / file).write_text(text)
    problems = second_names(tmp_path)
    assert problems, text
    assert any(fragment in problem for problem in problems), problems


def test_the_vocabulary_page_lists_every_concept_and_retired_name() -> None:
    page = (REPO / "docs" / "vocabulary.md").read_text()
    assert CONCEPTS and RETIRED
    for concept in CONCEPTS:
        assert f"`{concept.key}`" in page, concept.key
    for old in RETIRED:
        assert f"`{old}`" in page, old


def test_every_concept_key_exists_in_a_composed_config() -> None:
    """A listed key no config holds would be a vocabulary of nothing."""
    per_group = {
        "dataset.class_column": ("dataset=tabular",),
        "dataset.anomaly_column": ("dataset=timeseries",),
        "dataset.missing": ("dataset=tabular",),
        "dataset.preprocess.image_size": ("dataset=digits",),
        "model.filters": ("model=conv_ae",),
        "model.units": ("model=dense_ae",),
        "model.num_hidden_layers": ("model=unet",),
        "model.loss": ("model=conv_ae",),
    }
    for concept in CONCEPTS:
        verb = "benchmark" if concept.key.startswith("benchmark.") else "train"
        cfg = compose_config(verb, *per_group.get(concept.key, ()))
        assert OmegaConf.select(cfg, concept.key, default="absent") != "absent", concept.key


def _old_run(tmp_path: Path, version: str = "0.1.0") -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"versions": {"adx": version}}))
    return run


def test_a_0_1_config_reads_in_todays_names(tmp_path: Path) -> None:
    old = OmegaConf.create(
        {
            "dataset": {
                "_target_": "anomaly_cli.data.npz.load",
                "normal_label": 0,
                "anomaly_labels": None,
            },
            "model": {"_target_": "x", "rep_dim": 32, "score": "distance", "dense_units": 0},
            "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
            "trainer": {"seed": 7},
        }
    )
    new = upgrade_run_config(old, _old_run(tmp_path))
    assert new.dataset.normal_class == 0 and "normal_label" not in new.dataset
    assert new.dataset.seed == 7  # the split of a 0.1 run came from trainer.seed
    assert new.model.latent_dim == 32 and new.model.score == "latent_distance"
    assert new.model.units == []
    assert new.optimizer._target_ == "keras.optimizers.SGD"


def test_todays_config_comes_back_unchanged(tmp_path: Path) -> None:
    cfg = compose_config("train", "optimizer=adamw", "model=deep_svdd")
    assert upgrade_run_config(cfg, tmp_path) is cfg


def test_a_config_that_cannot_be_mapped_names_the_version(tmp_path: Path) -> None:
    old = OmegaConf.create({"dataset": {"normal_label": 0}, "model": {"dense_units": "wide"}})
    with pytest.raises(AdxUserError) as caught:
        upgrade_run_config(old, _old_run(tmp_path, version="0.0.9"))
    message = str(caught.value)
    assert "written by adx 0.0.9" in message and f"this adx {__version__}" in message
    assert "\n" not in message


def test_resuming_a_0_1_run_is_refused_naming_its_version(tmp_path: Path) -> None:
    """Its data was drawn with trainer.seed; resumed today it could silently change."""
    from anomaly_cli.training.state import resumable_overrides

    run = _old_run(tmp_path)
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text("- trainer.seed=7\n")
    (run / ".hydra" / "config.yaml").write_text("resume: null\ntrainer:\n  seed: 7\n")
    with pytest.raises(AdxUserError) as caught:
        resumable_overrides(run)
    message = str(caught.value)
    assert "started by adx 0.1.0" in message and f"adx evaluate run={run}" in message
    # A run of today's adx (task_name in its config) passes this check.
    (run / ".hydra" / "config.yaml").write_text("resume: null\ntask_name: train\n")
    assert resumable_overrides(run) == ["trainer.seed=7"]
