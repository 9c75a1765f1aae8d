"""The benchmark grid: its cells, seeds, settings and refusals (no TensorFlow)."""

from __future__ import annotations

import pytest

from anomaly_cli.benchmarking.grid import (
    Cell,
    build_cells,
    job_arguments,
    refuse_sweeps,
    settings_of,
)
from anomaly_cli.errors import AdxUserError
from tests.conftest import compose_config


def _cells(*overrides: str) -> list[Cell]:
    cfg = compose_config("benchmark", *overrides)
    return build_cells(cfg, str(cfg.model.name))


def test_the_grid_is_models_x_classes_x_contamination_x_repeats_with_a_seed_per_repeat():
    cells = _cells(
        "protocol=unsupervised",
        "benchmark.models=[iaead,deep_svdd]",
        "benchmark.normal_classes=[3,5]",
        "benchmark.contamination=[0.05,0.25]",
        "benchmark.repeats=2",
        "trainer.seed=10",
    )
    assert len(cells) == 2 * 2 * 2 * 2
    assert {c.key for c in cells} == {
        (m, k, r, rep)
        for m in ("iaead", "deep_svdd")
        for k in ("3", "5")
        for r in ("0.05", "0.25")
        for rep in (0, 1)
    }
    assert {(c.repeat, c.trainer_seed, c.dataset_seed) for c in cells} == {
        (0, 10, 555),
        (1, 11, 556),
    }
    first = cells[0]
    assert first.name == "iaead_class-3_cont-0.05_rep-0"
    assert first.overrides(["trainer.epochs=2"]) == [
        "trainer.epochs=2",
        "model=iaead",
        "dataset.normal_class=3",
        "trainer.seed=10",
        "protocol.contamination=0.05",
        "dataset.seed=555",
    ]


def test_defaults_take_the_chosen_model_class_and_contamination():
    (cell,) = _cells("model=dense_ae", "dataset.normal_class=4")
    assert (cell.model, cell.normal_class, cell.contamination, cell.repeat) == (
        "dense_ae",
        "4",
        None,
        0,
    )
    assert "cont" not in cell.name


def test_all_classes_come_from_the_dataset_and_odd_names_are_quoted_for_hydra():
    cells = _cells("dataset=fashion_mnist", "benchmark.normal_classes=all")
    names = [c.normal_class for c in cells]
    assert len(names) == 10 and names[0] == "T-shirt/top" and names[-1] == "Ankle boot"
    assert "dataset.normal_class='T-shirt/top'" in cells[0].overrides([])
    assert "/" not in cells[0].name and " " not in cells[-1].name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("benchmark.normal_classes=all", "dataset=synthetic"), "does not list its classes"),
        (("benchmark.normal_classes=[0,12]",), "12, not a class of dataset=digits"),
        (("benchmark.models=[conv_ae,nope]",), "'nope', which is not a model"),
        (("benchmark.contamination=[0.1]",), "add protocol=unsupervised"),
        (("protocol=unsupervised", "benchmark.contamination=[0.1,1.5]"), "holds 1.5"),
        (("benchmark.repeats=0",), "benchmark.repeats=0 must be"),
        (("benchmark.models=[vae,vae]",), "names a model twice"),
    ],
)
def test_a_grid_that_cannot_run_is_refused_in_one_line(overrides: tuple[str, ...], message: str):
    with pytest.raises(AdxUserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _cells(*overrides)


def test_sweeps_are_refused_with_the_benchmark_key_to_use():
    with pytest.raises(AdxUserError, match=r"benchmark\.models=\[a,b\]"):
        refuse_sweeps(["model=vae,unet"])
    refuse_sweeps(["benchmark.models=[vae,unet]", "trainer.epochs=3"])  # a list is no sweep


def test_settings_name_what_changes_the_numbers_and_nothing_else():
    args = [
        "trainer.epochs=5",
        "model=vae",
        "dataset.normal_class=3",
        "benchmark.repeats=5",
        "trainer.verbose=0",
        "logger=none",
        "hydra/launcher=joblib",
        "trainer.seed=7",
        "dataset=mnist",
    ]
    assert settings_of(args) == ["dataset=mnist", "trainer.epochs=5", "trainer.seed=7"]
    assert job_arguments(args) == [
        "trainer.epochs=5",
        "trainer.verbose=0",
        "logger=none",
        "dataset=mnist",
    ]


def test_a_models_own_overrides_reach_its_cells_only_and_name_their_settings():
    cells = _cells(
        "benchmark.models=[conv_ae,deep_svdd]",
        "benchmark.model_overrides={deep_svdd:['optimizer=adam','optimizer.lr=0.0001']}",
    )
    conv, svdd = cells
    assert conv.extra == () and svdd.extra == ("optimizer=adam", "optimizer.lr=0.0001")
    assert svdd.overrides(["optimizer.lr=0.01"])[:3] == [
        "optimizer.lr=0.01",  # the command line wins over the model's own value
        "optimizer=adam",
        "model=deep_svdd",
    ]
    assert conv.settings(["trainer.epochs=2"]) == "trainer.epochs=2"
    assert svdd.settings(["trainer.epochs=2"]) == (
        "optimizer.lr=0.0001 optimizer=adam trainer.epochs=2"
    )
    with pytest.raises(AdxUserError, match="sets a key of the grid itself"):
        _cells("benchmark.model_overrides={conv_ae:['trainer.seed=3']}")
