"""Optimizers and learning-rate schedules from the `optimizer` config group.

`optimizer._target_` names a Keras optimizer class; adx's own keys (`name`,
`lr` and the schedule keys) are taken out and every other key is passed to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from anomaly_cli.errors import AdxUserError, first_lines
from anomaly_cli.targets import resolve_target

SCHEDULES = ("constant", "cosine", "exponential")
# Keys adx reads itself; the rest are the optimizer class's keyword arguments.
ADX_KEYS = ("_target_", "name", "lr", "schedule", "decay_rate", "min_lr_ratio")


def learning_rate(cfg: DictConfig, steps_per_epoch: int, epochs: int) -> Any:
    import keras

    lr = float(cfg.lr)
    if cfg.schedule == "constant":
        return lr
    if cfg.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=max(1, steps_per_epoch * epochs), alpha=float(cfg.min_lr_ratio)
        )
    if cfg.schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=max(1, steps_per_epoch), decay_rate=float(cfg.decay_rate)
        )
    raise AdxUserError(
        f"optimizer.schedule={cfg.schedule} is unknown; choose one of: {', '.join(SCHEDULES)}"
    )


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
