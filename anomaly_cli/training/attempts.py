"""Seed 002's multi-attempt training (Sec. 3.3.3): fresh models until one is good enough.

Attempt k trains a new model in `attempts/<k>/` with the run's own machinery
(fit_model: checkpoints, history, resume state), seeded with the run's seeds
shifted by 3 (k - 1). With anomalies in validation an attempt stops when the
smoothed TPR + TNR stops rising (training/detection.py), and its best epoch
is still the one with the lowest validation loss. Attempts stop once
`trainer.patience` attempts in a row beat no earlier one (on the best TPR +
TNR, or the validation loss), or after `trainer.attempts`. After every
attempt the best checkpoint of all so far (Eq. 28) is copied to the run's
checkpoints/best.keras, so an interrupted run always holds its best model.
`attempts.csv` gets a row when an attempt ends; a resumed run skips those.
"""

from __future__ import annotations

import copy
import logging
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from anomaly_cli import interrupts, runs
from anomaly_cli.data.base import Splits
from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import AnomalyModel
from anomaly_cli.tasks.lifecycle import DIVERGED, FINISHED
from anomaly_cli.training.fit import FitResult
from anomaly_cli.training.stable import (
    ATTEMPT_SEED_STRIDE,
    LibrarySeeds,
    ResolvedTrainer,
    attempt_count,
)

log = logging.getLogger("adx")

ATTEMPTS_CSV = "attempts.csv"
COLUMNS = (
    "attempt",
    "seed_numpy",
    "seed_tensorflow",
    "seed_python",
    "epochs",
    "best_epoch",
    "best_val_loss",
    "best_m",
    "stop_reason",
    "seconds",
    "status",
)


@dataclass(frozen=True)
class AttemptsOutcome:
    fit: FitResult  # the kept attempt's, with the seconds of all attempts
    best_attempt: int
    attempts_run: int
    stopped_because: str
    early_stopping: str  # "tpr+tnr" or "val_loss"

    def report(self) -> dict[str, Any]:
        return {
            "attempts_run": self.attempts_run,
            "best_attempt": self.best_attempt,
            "stopped_because": self.stopped_because,
            "early_stopping": self.early_stopping,
        }


def uses_detection_metric(splits: Splits) -> bool:
    """TPR + TNR needs both classes in validation, and labels allowed to guide training."""
    labels = splits.val.labels
    return splits.labels_guide_training and bool(np.any(labels == 1) and np.any(labels == 0))


def read_attempts(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / ATTEMPTS_CSV
    return pd.read_csv(path).to_dict("records") if path.is_file() else []


def train_attempts(
    build: Callable[[LibrarySeeds], AnomalyModel],
    splits: Splits,
    cfg: DictConfig,
    run_dir: Path,
    seeds: LibrarySeeds,
    callbacks: Sequence[Any] = (),
    fit_options: dict[str, Any] | None = None,
) -> AttemptsOutcome:
    """Up to trainer.attempts attempts; `build(seeds)` seeds and builds a fresh model."""
    limit = attempt_count(cfg.trainer) or 1
    patience = max(1, int(cfg.trainer.patience))
    detection = uses_detection_metric(splits)
    if not detection:
        log.info(
            "attempts stop on the validation loss, not TPR + TNR: validation has no anomalies "
            "(or the protocol keeps labels out of training)"
        )
    rows = read_attempts(run_dir)  # a resumed run's finished attempts
    while len(rows) < limit and not _no_better_for(rows, patience, detection):
        number = len(rows) + 1
        attempt_seeds = seeds.shifted((number - 1) * ATTEMPT_SEED_STRIDE)
        row = _run_attempt(
            number, attempt_seeds, build, splits, cfg, run_dir, detection, callbacks, fit_options
        )
        rows.append(row)
        with interrupts.held():
            runs.write_csv(run_dir / ATTEMPTS_CSV, pd.DataFrame(rows, columns=list(COLUMNS)))
            _keep_best(run_dir, rows)
        log.info(
            "attempt %d/%d: %s after %d epochs (best epoch %d, val loss %.6g, TPR + TNR %s)",
            number,
            limit,
            row["stop_reason"],
            row["epochs"],
            row["best_epoch"],
            row["best_val_loss"],
            _show(row["best_m"]),
        )
    # Again, for a run killed between an attempt's row and this copy.
    with interrupts.held():
        _keep_best(run_dir, rows)
    reason = (
        f"trainer.attempts={limit} done"
        if len(rows) >= limit
        else f"{patience} attempts in a row beat no earlier one"
    )
    best = _best_row(rows)
    if best is None:  # trainer.attempts >= 1 and no attempt was skipped: cannot happen
        raise AdxUserError(f"{run_dir / ATTEMPTS_CSV} lists no attempt; train again")
    fit = _fit_of(run_dir, best, rows)
    return AttemptsOutcome(
        fit=fit,
        best_attempt=int(best["attempt"]),
        attempts_run=len(rows),
        stopped_because=reason,
        early_stopping="tpr+tnr" if detection else "val_loss",
    )


def attempt_dir(run_dir: Path, number: int) -> Path:
    return run_dir / runs.ATTEMPTS_DIR / str(number)


def _run_attempt(
    number: int,
    seeds: LibrarySeeds,
    build: Callable[[LibrarySeeds], AnomalyModel],
    splits: Splits,
    cfg: DictConfig,
    run_dir: Path,
    detection: bool,
    callbacks: Sequence[Any],
    fit_options: dict[str, Any] | None,
) -> dict[str, Any]:
    from anomaly_cli.training.detection import DetectionStopping
    from anomaly_cli.training.fit import fit_model

    folder = attempt_dir(run_dir, number)
    folder.mkdir(parents=True, exist_ok=True)
    attempt_cfg = copy.deepcopy(cfg)
    attempt_cfg.trainer.seed = seeds.numpy  # also the per-epoch shuffle's seed
    if detection:  # the validation loss only picks the epoch kept; TPR + TNR stops
        attempt_cfg.trainer.patience = int(cfg.trainer.epochs)
    model = build(seeds)
    monitor = None
    if detection:
        monitor = DetectionStopping(
            folder,
            splits.val,
            int(cfg.trainer.batch_size),
            patience=int(cfg.trainer.patience),
            min_delta=float(cfg.trainer.min_delta),
            first_epoch=model.first_checkpoint_epoch,
        )
        _catch_up(folder, monitor)
    fit = fit_model(
        model,
        splits,
        attempt_cfg,
        folder,
        resume=(folder / runs.TRAINING_STATE).is_file(),
        callbacks=[*([monitor] if monitor else []), *callbacks],
        **(fit_options or {}),
    )
    stopped_by_detection = monitor is not None and monitor.should_stop()
    if stopped_by_detection:
        _mark_stopped(folder)
    diverged = fit.diverged_at is not None
    if diverged:
        stop_reason = f"diverged in epoch {fit.diverged_at}"
    elif stopped_by_detection:
        stop_reason = "TPR + TNR stopped rising"
    elif fit.one_pass:
        stop_reason = "fitted in one pass (no epochs)"
    elif fit.epochs_run < int(cfg.trainer.epochs):
        stop_reason = "validation loss stopped falling"
    else:
        stop_reason = f"trainer.epochs={cfg.trainer.epochs} done"
    row = {
        "attempt": number,
        "seed_numpy": seeds.numpy,
        "seed_tensorflow": seeds.tensorflow,
        "seed_python": seeds.python,
        "epochs": fit.epochs_run,
        "best_epoch": fit.best_epoch,
        "best_val_loss": fit.best_val_loss,
        "best_m": monitor.best_metric if monitor else math.nan,
        "stop_reason": stop_reason,
        "seconds": round(fit.train_seconds, 3),
        "status": DIVERGED if diverged else FINISHED,
    }
    return row


def _catch_up(folder: Path, monitor: Any) -> None:
    """On resume: forget scores of lost epochs, score an epoch saved but not yet scored,
    and close an attempt whose stop was decided but not yet recorded."""
    from anomaly_cli.models.loading import load_checkpoint
    from anomaly_cli.training.state import TrainingState

    state_file = folder / runs.TRAINING_STATE
    if not state_file.is_file():
        monitor.keep_epochs(0)
        return
    state = TrainingState.load(state_file)
    monitor.keep_epochs(state.epochs_done)
    if state.stopped or state.last_checkpoint is None:
        return
    if len(monitor.rows) < state.epochs_done:
        last = load_checkpoint(folder / runs.CHECKPOINT_DIR / state.last_checkpoint)
        monitor.observe(last, state.epochs_done)
    if monitor.should_stop():
        _mark_stopped(folder)


def _mark_stopped(folder: Path) -> None:
    """The attempt's state.json says it is over, so a resume does not train it on."""
    from anomaly_cli.training.state import TrainingState

    state_file = folder / runs.TRAINING_STATE
    if state_file.is_file():
        state = TrainingState.load(state_file)
        if not state.stopped:
            state.stopped = True
            state.save(state_file)


def _quality(row: dict[str, Any], detection: bool) -> float:
    """Higher is better: the best TPR + TNR, or minus the lowest validation loss."""
    value = float(row["best_m"]) if detection else -float(row["best_val_loss"])
    return value if math.isfinite(value) else -math.inf


def _no_better_for(rows: list[dict[str, Any]], patience: int, detection: bool) -> bool:
    """Whether the last `patience` attempts each failed to beat every attempt before it."""
    if len(rows) <= patience:
        return False
    best = max(_quality(r, detection) for r in rows[:-patience])
    return all(_quality(r, detection) <= best for r in rows[-patience:])


def _best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Eq. 28: the attempt whose best epoch has the lowest validation loss (first on ties).

    When every attempt diverged before a finite epoch, the first one: fit_model
    kept its starting model, assessed as a diverged run's is.
    """
    candidates = [r for r in rows if math.isfinite(float(r["best_val_loss"]))]
    return min(
        candidates, key=lambda r: float(r["best_val_loss"]), default=rows[0] if rows else None
    )


def _keep_best(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Copy the best attempt's checkpoint and history into the run's own places."""
    best = _best_row(rows)
    if best is None:
        return
    source = attempt_dir(run_dir, int(best["attempt"]))
    if not (source / runs.CHECKPOINT).is_file():
        return
    (run_dir / runs.CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
    for name in (runs.CHECKPOINT, runs.HISTORY):
        if (source / name).is_file():
            with runs.atomic_path(run_dir / name) as tmp:
                shutil.copyfile(source / name, tmp)


def _fit_of(run_dir: Path, best: dict[str, Any], rows: list[dict[str, Any]]) -> FitResult:
    """The kept attempt as a FitResult; its train time is every attempt's together."""
    from anomaly_cli.training.state import TrainingState

    state = TrainingState.load(attempt_dir(run_dir, int(best["attempt"])) / runs.TRAINING_STATE)
    return FitResult(
        epochs_run=state.epochs_done,
        best_epoch=state.best_epoch,
        best_val_loss=state.best,
        train_seconds=float(sum(float(r["seconds"]) for r in rows)),
        resumed_at_epoch=0,
        # The kept attempt's: the run is `diverged` when its model stopped at a NaN loss.
        diverged_at=state.diverged_at,
    )


def _show(value: Any) -> str:
    return "n/a" if not math.isfinite(float(value)) else f"{float(value):.4f}"


def build_seeded(
    cfg: DictConfig, splits: Splits, plugins: list[str], devices: Any, seeds: LibrarySeeds
) -> AnomalyModel:
    """A fresh model of cfg.model, its weights drawn after seeding with `seeds`."""
    from anomaly_cli.models.loading import build_model
    from anomaly_cli.training.seeding import apply_library_seeds

    apply_library_seeds(**seeds.to_dict(), deterministic=bool(cfg.trainer.deterministic))
    with devices.scope():
        return build_model(cfg.model, splits.input_shape, cfg.dataset.name, plugins)


def stable_report(used: ResolvedTrainer, attempts: AttemptsOutcome | None) -> dict[str, Any]:
    """run.json's record of what the data decided (nothing for a plain trainer)."""
    report: dict[str, Any] = {}
    if used.adapted:
        report["trainer_resolved"] = used.report()
    if attempts is not None:
        report["attempts"] = attempts.report()
    return report
