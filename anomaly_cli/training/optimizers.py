"""Optimizers and learning-rate schedules from the `optimizer` config group."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from anomaly_cli.errors import AdxUserError

NAMES = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "exponential")


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


def build_optimizer(cfg: DictConfig, steps_per_epoch: int, epochs: int) -> Any:
    import keras

    lr = learning_rate(cfg, steps_per_epoch, epochs)
    if cfg.name == "adam":
        return keras.optimizers.Adam(lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
    if cfg.name == "adamw":
        return keras.optimizers.AdamW(
            lr, weight_decay=cfg.weight_decay, beta_1=cfg.beta_1, beta_2=cfg.beta_2
        )
    if cfg.name == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    raise AdxUserError(f"optimizer.name={cfg.name} is unknown; choose adam, adamw or sgd")
