"""`adx train`: fit a detector, threshold it on validation, report on test."""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from anomaly_cli import __version__, runs
from anomaly_cli.checks import check_train_config
from anomaly_cli.config_dir import config_dir
from anomaly_cli.targets import plugin_list
from anomaly_cli.tasks import lifecycle
from anomaly_cli.tasks.common import (
    current_run_dir,
    log,
    run_cli_task,
    save_config,
)
from anomaly_cli.tasks.lifecycle import set_stage
from anomaly_cli.training.stable import attempt_count, resolve_trainer
from anomaly_cli.training.state import resumable_overrides
from anomaly_cli.training.threads import apply_threads, job_threads

# What `resume=` may change: how long to go on, how much to print, how often to save.
RESUMABLE_KEYS = (
    "trainer.epochs",
    "trainer.patience",
    "trainer.verbose",
    "trainer.checkpoint_every",
)


def rewrite_overrides(args: Sequence[str]) -> list[str]:
    """`resume=<dir>` becomes that run's own overrides plus its folder as run dir.

    Everything resume needs is checked here, before Hydra rewrites the
    folder's .hydra/ snapshot: a refused resume leaves the run untouched.
    """
    request = lifecycle.resume_request(args, RESUMABLE_KEYS, "run")
    if request is None:
        return list(args)
    run, extra = request
    own = resumable_overrides(run)
    lifecycle.check_not_running(run, f"resume={run}", "trained")
    return [*own, *extra, f"hydra.run.dir='{run}'", f"resume='{run}'"]


def train(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Train on cfg's dataset and model; returns the test metrics."""
    check_train_config(cfg)
    run_dir = Path(run_dir or current_run_dir())
    started = time.time()
    plugins = plugin_list(cfg.get("plugins"))
    threads = apply_threads(job_threads(cfg.trainer.get("threads")))  # before TF's first op
    if cfg.get("resume"):
        runs.remove_stale_temporaries(run_dir)
    from anomaly_cli.data.loader import data_report, load_splits

    set_stage("loading data")
    # Data first: its errors then reach the user before TensorFlow's start-up.
    splits = load_splits(cfg.dataset, cfg.protocol, plugins=plugins)
    # trainer.seed=dynamic and trainer.batch_size=auto become integers here, once (seed 002).
    cfg, trainer_used = resolve_trainer(cfg, len(splits.train))
    seed = int(cfg.trainer.seed)

    import keras
    import tensorflow as tf

    from anomaly_cli.logging_backends import open_logger
    from anomaly_cli.logging_backends.base import run_results
    from anomaly_cli.models.loading import load_checkpoint
    from anomaly_cli.tasks.assess import conclude_run
    from anomaly_cli.training.attempts import build_seeded, stable_report, train_attempts
    from anomaly_cli.training.devices import plan_devices
    from anomaly_cli.training.fit import fit_model

    set_stage("building the model")
    devices = plan_devices(cfg, plugins)
    # Seeded, then built: also what each of trainer=stable's attempts does.
    model = build_seeded(cfg, splits, plugins, devices, trainer_used.seeds)
    save_config(cfg, run_dir)
    runs.write_json(run_dir / runs.DATA_INFO, data_report(splits, cfg.dataset))
    if splits.transform is not None:
        runs.write_json(run_dir / runs.DATA_TRANSFORM, splits.transform)
    log.info("data %s (%s): %s", cfg.dataset.name, splits.protocol, splits.counts())
    # Opened once the config is saved: what the logger records names a run folder
    # that holds it. Told how the block ends, so a dead run is not shown as running.
    with open_logger(cfg, run_dir, resume=bool(cfg.get("resume"))) as logger:
        set_stage("training")
        attempts = None
        if attempt_count(cfg.trainer) is not None:
            attempts = train_attempts(
                lambda seeds: build_seeded(cfg, splits, plugins, devices, seeds),
                splits,
                cfg,
                run_dir,
                trainer_used.seeds,
                callbacks=logger.callbacks(),
                fit_options={"devices": devices},
            )
            fit = attempts.fit
        else:
            fit = fit_model(
                model,
                splits,
                cfg,
                run_dir,
                resume=bool(cfg.get("resume")),
                callbacks=logger.callbacks(),
                devices=devices,
            )
        log.info(
            "trained %d epochs in %.1f s (best epoch %d)",
            fit.epochs_run,
            fit.train_seconds,
            fit.best_epoch,
        )
        status = lifecycle.DIVERGED if fit.diverged_at else lifecycle.FINISHED
        if fit.diverged_at:
            lifecycle.record_outcome(
                status,
                diverged_at_epoch=fit.diverged_at,
                error=f"training diverged in epoch {fit.diverged_at}; assessed with "
                + (f"epoch {fit.best_epoch}" if fit.best_epoch else "the untrained model"),
            )
        # Score with the checkpoint itself, so `adx evaluate` starts from the same weights.
        set_stage("loading the checkpoint")
        best = load_checkpoint(
            run_dir / runs.CHECKPOINT, remedy=f"go on with: adx train resume={run_dir}"
        )
        best.set_score(model.score_name)
        metrics = conclude_run(
            best,
            splits,
            cfg,
            run_dir,
            subject=f"{cfg.model.name} on {cfg.dataset.name}",
            run_info=lambda: {
                "verb": "train",
                "status": status,
                "diverged_at_epoch": fit.diverged_at,
                "model": cfg.model.name,
                "dataset": cfg.dataset.name,
                "seed": seed,
                **stable_report(trainer_used, attempts),
                "threads": threads,
                "devices": devices.record(),
                "protocol": splits.protocol,
                "counts": splits.counts(),
                "epochs_run": fit.epochs_run,
                "resumed_at_epoch": fit.resumed_at_epoch if cfg.get("resume") else None,
                "best_epoch": fit.best_epoch,
                # null when no epoch finished with a finite loss (diverged in the first).
                "best_val_loss": fit.best_val_loss if math.isfinite(fit.best_val_loss) else None,
                "train_seconds": round(fit.train_seconds, 3),
                "checkpoint_seconds": round(fit.checkpoint_seconds, 3),
                "wall_seconds": round(time.time() - started, 3),
                "versions": {
                    "adx": __version__,
                    "tensorflow": tf.__version__,
                    "keras": keras.__version__,
                    "python": platform.python_version(),
                },
            },
        )
        logger.finish(run_results(best, splits, cfg, run_dir, fit.epochs_run))
    return metrics


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> None:
    run_cli_task(train, cfg, "train")
