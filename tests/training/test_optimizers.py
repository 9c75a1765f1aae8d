"""`optimizer._target_` picks a Keras optimizer class; adx's own keys stay out of it."""

from __future__ import annotations

import keras
import pytest
from omegaconf import OmegaConf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.training.optimizers import build_optimizer, optimizer_arguments
from tests.conftest import compose_config


@pytest.mark.parametrize(
    ("group", "expected", "arguments"),
    [
        ("adam", keras.optimizers.Adam, {"beta_1": 0.9, "beta_2": 0.999}),
        ("adamw", keras.optimizers.AdamW, {"beta_1": 0.9, "beta_2": 0.999, "weight_decay": 1e-4}),
        ("sgd", keras.optimizers.SGD, {"momentum": 0.9, "nesterov": False}),
    ],
)
def test_each_group_builds_its_class_with_its_keys(group, expected, arguments) -> None:
    cfg = compose_config("train", f"optimizer={group}").optimizer
    assert optimizer_arguments(cfg) == arguments
    optimizer = build_optimizer(cfg, steps_per_epoch=10, epochs=2)
    assert type(optimizer) is expected
    assert float(optimizer.learning_rate) == pytest.approx(cfg.lr)
    for key, value in arguments.items():
        assert getattr(optimizer, key) == pytest.approx(value)


def test_any_keras_optimizer_class_and_a_schedule() -> None:
    cfg = compose_config(
        "train", "optimizer._target_=keras.optimizers.Nadam", "optimizer.schedule=cosine"
    ).optimizer
    optimizer = build_optimizer(cfg, steps_per_epoch=10, epochs=2)
    assert type(optimizer) is keras.optimizers.Nadam
    assert isinstance(optimizer._learning_rate, keras.optimizers.schedules.CosineDecay)


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("keras.optimizers.SGD", "refuses optimizer.beta_1=0.9"),
        ("keras.optimizers.Nope", "keras.optimizers defines no Nope"),
        ("keras.optimizers.schedules", "is not a Keras optimizer class"),
    ],
)
def test_a_class_that_does_not_fit_is_one_clear_error(target: str, fragment: str) -> None:
    cfg = OmegaConf.merge(compose_config("train").optimizer, {"_target_": target})
    with pytest.raises(AdxUserError, match=fragment):
        build_optimizer(cfg, steps_per_epoch=10, epochs=2)


def test_step_decay_multiplies_the_rate_every_decay_epochs() -> None:
    # Seed 001's recipe: halved every 50 epochs; here every 3 epochs of 10 steps.
    cfg = compose_config(
        "train", "optimizer.schedule=step", "optimizer.decay_rate=0.5", "optimizer.decay_epochs=3"
    ).optimizer
    rate = build_optimizer(cfg, steps_per_epoch=10, epochs=9)._learning_rate
    at = {step: float(rate(step)) for step in (0, 29, 30, 59, 60)}
    assert at == pytest.approx({0: 1e-3, 29: 1e-3, 30: 5e-4, 59: 5e-4, 60: 2.5e-4})


def test_plateau_keeps_a_plain_rate_and_adds_its_callback_ahead_of_the_checkpointer() -> None:
    from anomaly_cli.training.callbacks import PlateauSchedule
    from anomaly_cli.training.optimizers import schedule_callbacks
    from anomaly_cli.training.state import TrainingState

    cfg = compose_config(
        "train", "optimizer.schedule=plateau", "optimizer.min_lr_ratio=0.01"
    ).optimizer
    assert float(build_optimizer(cfg, steps_per_epoch=10, epochs=2).learning_rate) == (
        pytest.approx(1e-3)
    )
    (callback,) = schedule_callbacks(cfg, "val_loss", 0.0, TrainingState())
    assert isinstance(callback, PlateauSchedule)
    assert (callback.factor, callback.patience, callback.min_lr) == (0.95, 10, pytest.approx(1e-5))
    assert (
        schedule_callbacks(compose_config("train").optimizer, "val_loss", 0.0, TrainingState())
        == []
    )
