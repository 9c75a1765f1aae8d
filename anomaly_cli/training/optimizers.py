"""Optimizers and learning-rate schedules from the `optimizer` config group.

`optimizer._target_` names a Keras optimizer class; adx's own keys (`name`,
`lr` and the schedule keys) are taken out and every other key is passed to it.

Schedules: `constant`; `cosine` (down to lr * min_lr_ratio over the run);
`exponential` (x decay_rate per epoch, smoothly); `step` (x decay_rate every
decay_epochs epochs, seed 001's "halved every 50 epochs" with decay_rate 0.5);
`plateau` (x decay_rate after decay_epochs epochs without improvement of the
monitored loss, never below lr * min_lr_ratio). The first four are Keras
schedules of the step count; `plateau` reacts to the losses, so it is a
callback whose counters are saved with the run's training state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from anomaly_cli.errors import AdxUserError, first_lines
from anomaly_cli.targets import resolve_target

if TYPE_CHECKING:
    from anomaly_cli.training.state import TrainingState

SCHEDULES = ("constant", "cosine", "exponential", "step", "plateau")
# Keys adx reads itself; the rest are the optimizer class's keyword arguments.
ADX_KEYS = ("_target_", "name", "lr", "schedule", "decay_rate", "decay_epochs", "min_lr_ratio")


def learning_rate(cfg: DictConfig, steps_per_epoch: int, epochs: int) -> Any:
    import keras

    lr = float(cfg.lr)
    schedule = cfg.schedule
    if schedule not in SCHEDULES:
        raise AdxUserError(
            f"optimizer.schedule={schedule} is unknown; choose one of: {', '.join(SCHEDULES)}"
        )
    if schedule in ("constant", "plateau"):  # plateau changes it from its callback
        return lr
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=max(1, steps_per_epoch * epochs), alpha=float(cfg.min_lr_ratio)
        )
    # exponential and step: one is the other with the steps counted in whole periods.
    period = int(cfg.decay_epochs) if schedule == "step" else 1
    return keras.optimizers.schedules.ExponentialDecay(
        lr,
        decay_steps=max(1, steps_per_epoch * period),
        decay_rate=float(cfg.decay_rate),
        staircase=schedule == "step",
    )


def schedule_callbacks(
    cfg: DictConfig, monitor: str, min_delta: float, state: TrainingState
) -> list[Any]:
    """The callbacks a schedule needs during fit (plateau's), ahead of the checkpointer."""
    if cfg.get("schedule") != "plateau":
        return []
    from anomaly_cli.training.callbacks import PlateauSchedule

    return [
        PlateauSchedule(
            state,
            monitor=monitor,
            factor=float(cfg.decay_rate),
            patience=int(cfg.decay_epochs),
            min_delta=min_delta,
            min_lr=float(cfg.lr) * float(cfg.get("min_lr_ratio") or 0.0),
        )
    ]


def optimizer_arguments(cfg: DictConfig) -> dict[str, Any]:
    """The keyword arguments `optimizer._target_` is called with, besides the rate."""
    values = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(values, dict)
    return {str(k): v for k, v in values.items() if k not in ADX_KEYS}


def build_optimizer(
    cfg: DictConfig, steps_per_epoch: int, epochs: int, plugins: Sequence[str] = ()
) -> Any:
    optimizer_class = resolve_target("optimizer", cfg.get("_target_"), plugins)
    arguments = optimizer_arguments(cfg)
    try:
        return optimizer_class(
            learning_rate=learning_rate(cfg, steps_per_epoch, epochs), **arguments
        )
    except (TypeError, ValueError) as error:
        settings = ", ".join(f"optimizer.{k}={v}" for k, v in arguments.items())
        raise AdxUserError(
            f"optimizer._target_={cfg.get('_target_')} refuses {settings or 'its settings'} "
            f"({first_lines(error)}); choose optimizer=adam|adamw|sgd, whose keys fit their class"
        ) from error
