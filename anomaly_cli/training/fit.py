"""Fit a detector on the train split, early-stopped on the validation normals."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from anomaly_cli import runs
from anomaly_cli.data.base import Splits
from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import AnomalyModel


@dataclass(frozen=True)
class FitResult:
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    train_seconds: float


def check_trainer(trainer: DictConfig) -> None:
    for key, lowest in (("epochs", 1), ("batch_size", 1), ("patience", 0)):
        if int(trainer[key]) < lowest:
            raise AdxUserError(f"trainer.{key}={trainer[key]} must be at least {lowest}")
    if float(trainer.min_delta) < 0:
        raise AdxUserError(f"trainer.min_delta={trainer.min_delta} must not be negative")


def fit_model(model: AnomalyModel, splits: Splits, cfg: DictConfig, run_dir: Path) -> FitResult:
    """Train `model`; the best weights end up in run_dir/checkpoints/best.keras.

    Validation loss is measured on the validation split's normal samples only:
    an autoencoder that got better at reconstructing the anomalies would lower
    a loss over all of them, which is the opposite of what we want.
    """
    import keras

    from anomaly_cli.data.pipeline import training_batches
    from anomaly_cli.training.callbacks import AtomicBestCheckpoint, HistoryCSV
    from anomaly_cli.training.optimizers import build_optimizer

    trainer = cfg.trainer
    check_trainer(trainer)
    batch_size, epochs = int(trainer.batch_size), int(trainer.epochs)
    steps = int(np.ceil(len(splits.train) / batch_size))
    model.compile_for_training(build_optimizer(cfg.optimizer, steps, epochs))

    val_normal = splits.val.normal_only()
    has_val = len(val_normal) > 0
    monitor = "val_loss" if has_val else "loss"
    checkpoint = AtomicBestCheckpoint(run_dir / runs.CHECKPOINT, monitor, float(trainer.min_delta))
    callbacks = [
        checkpoint,
        HistoryCSV(run_dir / runs.HISTORY),
        keras.callbacks.EarlyStopping(
            monitor=monitor,
            patience=int(trainer.patience),
            min_delta=float(trainer.min_delta),
            restore_best_weights=False,  # the checkpoint holds the best weights
        ),
    ]
    started = time.perf_counter()
    history = model.fit(
        training_batches(splits.train, batch_size, int(trainer.seed)),
        validation_data=(
            training_batches(val_normal, batch_size, int(trainer.seed), shuffle=False)
            if has_val
            else None
        ),
        epochs=epochs,
        callbacks=callbacks,
        verbose=int(trainer.verbose),
    )
    seconds = time.perf_counter() - started
    return FitResult(
        epochs_run=len(history.history.get("loss", [])),
        best_epoch=checkpoint.best_epoch + 1,
        best_val_loss=checkpoint.best,
        train_seconds=seconds,
    )
