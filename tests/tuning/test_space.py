"""tune.space read into dimensions, and trial values written back as overrides."""

from __future__ import annotations

import pytest

from anomaly_cli.errors import AdxUserError
from anomaly_cli.tuning.space import as_overrides, read_space, trial_config
from tests.conftest import compose_config


def test_every_kind_of_range_is_read_in_order():
    cfg = compose_config(
        "tune",
        "tune.space={optimizer.lr: {log: [1e-4, 1e-2]}, model.latent_dim: {choice: [8, 16]}, "
        "trainer.batch_size: {int: [8, 64]}, model.units: {choice: [[64], [128, 64]]}}",
    )
    dims = read_space(cfg.tune)
    assert [(d.key, d.kind) for d in dims] == [
        ("optimizer.lr", "log"),
        ("model.latent_dim", "choice"),
        ("trainer.batch_size", "int"),
        ("model.units", "choice"),
    ]
    assert dims[0].values == (1e-4, 1e-2)
    assert dims[1].scalar_choices and not dims[3].scalar_choices


def test_values_written_as_overrides_compose_back_to_the_same_config():
    values = {"optimizer.lr": 0.00012345678901234, "model.latent_dim": 16, "model.units": [128, 64]}
    cfg = compose_config("train", *as_overrides(values))
    assert cfg.optimizer.lr == values["optimizer.lr"]
    assert cfg.model.latent_dim == 16
    assert list(cfg.model.units) == [128, 64]
    trial = trial_config(compose_config("tune"), values)
    assert trial.model == cfg.model and trial.optimizer == cfg.optimizer
    assert "tune" not in trial and trial.task_name == "train"


@pytest.mark.parametrize(
    "spec",
    ["{model.latent_dim: [8, 16]}", "{model.latent_dim: {range: [8, 16]}}",
     "{optimizer.lr: {log: [0.01, 0.001]}}", "{optimizer.lr: {log: [0, 0.1]}}",
     "{model.latent_dim: {int: [8.5, 16]}}", "{model.latent_dim: {choice: [8, 8]}}"],
)  # fmt: skip
def test_a_malformed_range_is_refused(spec: str):
    with pytest.raises(AdxUserError, match=r"tune\.space"):
        read_space(compose_config("tune", f"tune.space={spec}").tune)
