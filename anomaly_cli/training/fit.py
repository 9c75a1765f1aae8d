"""Fit a detector on the train split, early-stopped on the validation normals."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig

from anomaly_cli import interrupts, runs
from anomaly_cli.data.base import Splits
from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import AnomalyModel

if TYPE_CHECKING:
    from anomaly_cli.training.callbacks import RunCheckpointer
    from anomaly_cli.training.devices import DevicePlan

log = logging.getLogger("adx")


@dataclass(frozen=True)
class FitResult:
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    train_seconds: float
    resumed_at_epoch: int
    # Of train_seconds, the time spent writing checkpoints.
    checkpoint_seconds: float = 0.0
    # The epoch whose loss was not finite (training ended there), else None.
    diverged_at: int | None = None
    # Fitted in one pass (PaDiM, PatchCore): no epochs, nothing stopped it early.
    one_pass: bool = False


def fit_model(
    model: AnomalyModel,
    splits: Splits,
    cfg: DictConfig,
    run_dir: Path,
    resume: bool = False,
    callbacks: Sequence[Any] = (),
    devices: DevicePlan | None = None,
) -> FitResult:
    """Train `model` (or, with resume, the run's last checkpoint) on splits.train.

    The best weights end up in run_dir/checkpoints/best.keras. Validation loss
    is measured on the validation split's normal samples only: an autoencoder
    that got better at reconstructing the anomalies would lower a loss over all
    of them, which is the opposite of what we want. A run resumed before its
    first epoch finished (no state.json yet) starts from the beginning.
    `callbacks` (the logger's) come after the checkpointer: an epoch is saved
    before it is logged, and a logger only reads what Keras reports.
    `devices` (training/devices.py): the precision, XLA and strategy the model
    is compiled, or its last checkpoint loaded, with; None keeps Keras' defaults.
    A model that `fits_in_one_pass` gathers its statistics instead (_fit_in_one_pass).
    """
    from anomaly_cli.data.pipeline import scoring_batches, training_batches, validation_batches
    from anomaly_cli.models.loading import load_checkpoint
    from anomaly_cli.targets import plugin_list
    from anomaly_cli.training.callbacks import RunCheckpointer, progress
    from anomaly_cli.training.checkpoint_policy import checkpoint_interval
    from anomaly_cli.training.optimizers import build_optimizer, schedule_callbacks
    from anomaly_cli.training.state import TrainingState

    trainer = cfg.trainer  # checked with the rest of the config, before the data
    if model.fits_in_one_pass:  # PaDiM, PatchCore: statistics, no epochs
        return _fit_in_one_pass(model, splits, int(trainer.batch_size), run_dir, resume, devices)
    batch_size, epochs, seed = int(trainer.batch_size), int(trainer.epochs), int(trainer.seed)
    steps = math.ceil(len(splits.train) / batch_size)
    # The train split in a fixed order, for models that gather statistics of it.
    samples = scoring_batches(splits.train, batch_size)
    state_file = run_dir / runs.TRAINING_STATE
    state = TrainingState.load(state_file) if resume and state_file.is_file() else TrainingState()
    # Stopped early or diverged: no epoch follows, so the latest state is not loaded
    # (and may not exist: a run that stopped before its first save has none).
    ended = state.stopped or state.diverged_at is not None
    continuing = state.last_checkpoint is not None and not ended
    jit_compile = devices.jit_compile if devices else "auto"
    with devices.scope() if devices else contextlib.nullcontext():
        if continuing:
            model = load_checkpoint(
                run_dir / runs.CHECKPOINT_DIR / state.last_checkpoint, compile=True
            )
            if devices:  # a checkpoint keeps Keras' compile settings, not the plan's
                model.jit_compile = devices.jit_compile
        else:
            if not ended:  # no epoch was saved: start from the beginning
                state = TrainingState()
            model.compile_for_training(
                build_optimizer(cfg.optimizer, steps, epochs, plugin_list(cfg.get("plugins"))),
                jit_compile=jit_compile,
            )
    # Before prepare_training, which may pre-train for a while.
    first_counted = model.first_checkpoint_epoch
    if epochs < first_counted:
        raise AdxUserError(
            f"trainer.epochs={epochs} ends before the model's warm-up does (the first epoch "
            f"that counts is {first_counted}); set trainer.epochs >= {first_counted} or "
            "lower model.warmup_epochs"
        )
    if not continuing and not ended:
        model.prepare_training(samples)
    first_epoch = state.epochs_done
    # What is assessed if the loss turns NaN before any epoch became the best one.
    start_weights = None if (run_dir / runs.CHECKPOINT).is_file() else model.get_weights()

    # Unsupervised training must not see labels, so it stops on its own loss.
    val_normal = (
        splits.val.normal_only()
        if splits.labels_guide_training
        else splits.val.select(np.array([], dtype=np.int64))
    )
    monitor = "val_loss" if len(val_normal) else "loss"
    checkpointer = RunCheckpointer(
        run_dir,
        state,
        monitor=monitor,
        patience=int(trainer.patience),
        min_delta=float(trainer.min_delta),
        first_epoch=first_counted,
        every=checkpoint_interval(trainer.get("checkpoint_every")),
    )
    # Ahead of the checkpointer, which saves the state they keep.
    schedule = schedule_callbacks(cfg.optimizer, monitor, float(trainer.min_delta), state)
    verbose, lines = progress(trainer.get("verbose"), epochs, checkpointer)
    # Models built for patches (model.window_size) train on one random crop per image.
    window = getattr(model, "window_size", None)
    if not state.stopped and first_epoch < epochs:
        started = time.perf_counter()
        model.fit(
            training_batches(
                splits.train,
                batch_size,
                seed,
                first_epoch,
                epochs,
                augment=splits.augment,
                window=window,
            ),
            steps_per_epoch=steps,
            validation_data=(
                validation_batches(val_normal, batch_size, window) if len(val_normal) else None
            ),
            initial_epoch=first_epoch,
            epochs=epochs,
            callbacks=[
                *model.training_callbacks(samples),
                *schedule,
                checkpointer,
                *lines,
                *callbacks,
            ],
            shuffle=False,  # training_batches shuffles each epoch with its own seed
            verbose=verbose,
        )
        state.train_seconds += time.perf_counter() - started
        if state_file.is_file():  # written by the checkpointer once training ended
            state.save(state_file)
        if checkpointer.diverged_at is not None:
            _end_diverged(checkpointer, cfg, run_dir, start_weights, first_epoch)
    else:
        why = (
            f"it diverged in epoch {state.diverged_at}"
            if state.diverged_at
            else "it stopped early"
            if state.stopped
            else f"trainer.epochs={epochs} are done"
        )
        log.info("nothing to train: %s after %d epochs", why, state.epochs_done)
    if model.has_finish_training:
        _finish_best(run_dir / runs.CHECKPOINT, samples)
    return FitResult(
        epochs_run=state.epochs_done,
        best_epoch=state.best_epoch,
        best_val_loss=state.best,
        train_seconds=state.train_seconds,
        resumed_at_epoch=first_epoch,
        checkpoint_seconds=state.checkpoint_seconds,
        diverged_at=state.diverged_at,
    )


def _end_diverged(
    checkpointer: RunCheckpointer,
    cfg: DictConfig,
    run_dir: Path,
    start_weights: list[Any] | None,
    start_epoch: int,
) -> None:
    """Training stopped at a NaN or infinite loss: the best epoch so far is assessed,
    and the run's status says `diverged`. When no epoch became the best one (the loss
    exploded in the first, or during a warm-up), the model as it was when this
    training started is, so a sweep still gets every artifact of every job; its
    numbers are then those of an untrained model, and the warning says so."""
    epoch, state = checkpointer.diverged_at, checkpointer.state
    what = (
        f"training diverged: the loss was not a finite number in epoch {epoch}; lower "
        f"optimizer.lr (now {cfg.optimizer.lr}) or check the data for extreme values"
    )
    best = run_dir / runs.CHECKPOINT
    if best.is_file():
        kept = f"the best epoch before it ({state.best_epoch}) is assessed"
    else:
        assert start_weights is not None  # taken whenever there was no best checkpoint
        model = checkpointer.model
        model.set_weights(start_weights)
        with interrupts.held(), runs.atomic_path(best) as tmp:
            model.save(tmp)
        state.best_epoch = start_epoch
        started = "untrained" if start_epoch == 0 else "as this resumed training started"
        kept = (
            f"no epoch became a best one, so the model of epoch {start_epoch} ({started}) is "
            "assessed: its numbers are no trained detector's"
        )
    # Stopped for good: a resume would only diverge again at the same epoch.
    state.diverged_at, state.stopped = epoch, True
    state.save(run_dir / runs.TRAINING_STATE)
    log.warning("%s; %s", what, kept)


def _finish_best(path: Path, samples: Any) -> None:
    """Let the best checkpoint gather its post-training statistics, and save it again.

    Running it again (after a resume) gives the same result, so it needs no state.
    """
    from anomaly_cli.models.loading import load_checkpoint

    best = load_checkpoint(path)
    best.finish_training(samples)
    with interrupts.held(), runs.atomic_path(path) as tmp:
        best.save(tmp)


def _fit_in_one_pass(
    model: AnomalyModel,
    splits: Splits,
    batch_size: int,
    run_dir: Path,
    resume: bool,
    devices: DevicePlan | None,
) -> FitResult:
    """Fit a model that gathers statistics of the train split (`fits_in_one_pass`).

    One pass over the train split in a fixed order, recorded as one epoch: best
    epoch 1, a one-row history.csv whose `loss` is the mean score of the
    training images under the fitted statistics (there is no training loss;
    it is what the loss plot shows), and a state.json without a latest
    checkpoint: a pass is not resumed halfway, so a run stopped during it
    starts it again, and a resumed run whose pass finished has nothing to do.
    Trainer settings of epochs (epochs, patience, optimizer) do not apply.
    """
    import pandas as pd

    from anomaly_cli.data.pipeline import scoring_batches
    from anomaly_cli.training.state import TrainingState

    state_file, best = run_dir / runs.TRAINING_STATE, run_dir / runs.CHECKPOINT
    if resume and state_file.is_file() and best.is_file():
        state = TrainingState.load(state_file)
        if state.epochs_done >= 1:
            log.info("nothing to train: model=%s fitted its statistics already", model.model_name)
            return FitResult(
                epochs_run=state.epochs_done,
                best_epoch=state.best_epoch,
                best_val_loss=state.best,
                train_seconds=state.train_seconds,
                resumed_at_epoch=state.epochs_done,
                checkpoint_seconds=state.checkpoint_seconds,
                one_pass=True,
            )
    samples = scoring_batches(splits.train, batch_size)
    started = time.perf_counter()
    with devices.scope() if devices else contextlib.nullcontext():
        fitted = model.fit_statistics(samples)
        train_score = float(np.mean(fitted.score(samples, batch_size=batch_size)))
    fit_seconds = time.perf_counter() - started
    saving = time.perf_counter()
    with interrupts.held(), runs.atomic_path(best) as tmp:
        fitted.save(tmp)
    saved_seconds = time.perf_counter() - saving
    state = TrainingState(
        epochs_done=1,
        best=train_score,
        best_epoch=1,
        train_seconds=fit_seconds + saved_seconds,
        checkpoint_seconds=saved_seconds,
    )
    row = {"epoch": 1, "loss": train_score, "epoch_seconds": fit_seconds}
    with interrupts.held():
        runs.write_csv(run_dir / runs.HISTORY, pd.DataFrame([row]))
        state.save(state_file)
    log.info("fitted %s in one pass over %d images", model.model_name, len(splits.train))
    return FitResult(
        epochs_run=1,
        best_epoch=1,
        best_val_loss=train_score,
        train_seconds=state.train_seconds,
        resumed_at_epoch=0,
        checkpoint_seconds=saved_seconds,
        one_pass=True,
    )
