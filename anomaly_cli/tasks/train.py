"""`adx train`: fit a detector, threshold it on validation, report on test."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from anomaly_cli import __version__, runs
from anomaly_cli.config_dir import config_dir
from anomaly_cli.tasks.common import current_run_dir, log, run_cli_task, save_config


def train(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Train on cfg's dataset and model; returns the test metrics."""
    from anomaly_cli.data.loader import load_splits

    run_dir = Path(run_dir or current_run_dir())
    started = time.time()
    seed = int(cfg.trainer.seed)
    # Data first: its errors then reach the user before TensorFlow's start-up.
    splits = load_splits(cfg.dataset, seed)

    import keras
    import tensorflow as tf

    from anomaly_cli.models.loading import build_model, load_checkpoint
    from anomaly_cli.tasks.assess import assess
    from anomaly_cli.training.fit import fit_model
    from anomaly_cli.training.seeding import apply_seed

    apply_seed(seed, bool(cfg.trainer.deterministic))
    model = build_model(cfg.model, splits.input_shape)
    save_config(cfg, run_dir)
    log.info("data %s: %s", cfg.dataset.name, splits.counts())
    fit = fit_model(model, splits, cfg, run_dir)
    log.info(
        "trained %d epochs in %.1f s (best epoch %d)",
        fit.epochs_run,
        fit.train_seconds,
        fit.best_epoch,
    )
    # Score with the checkpoint itself, so `adx evaluate` starts from the same weights.
    best = load_checkpoint(run_dir / runs.CHECKPOINT)
    best.score_name = model.score_name
    result = assess(best, splits, cfg, run_dir, f"{cfg.model.name} on {cfg.dataset.name}")
    runs.write_json(
        run_dir / runs.RUN_INFO,
        {
            "verb": "train",
            "model": cfg.model.name,
            "dataset": cfg.dataset.name,
            "seed": seed,
            "counts": splits.counts(),
            "data": splits.info,
            "epochs_run": fit.epochs_run,
            "best_epoch": fit.best_epoch,
            "best_val_loss": fit.best_val_loss,
            "train_seconds": round(fit.train_seconds, 3),
            "wall_seconds": round(time.time() - started, 3),
            "versions": {
                "adx": __version__,
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
                "python": platform.python_version(),
            },
        },
    )
    runs.update_latest(run_dir, cfg.paths.output_dir)
    print(
        f"\nTest metrics ({cfg.model.name} on {cfg.dataset.name}, threshold "
        f"{result.threshold.value:.6g} by {result.threshold.strategy}):"
    )
    print(result.table)
    print(f"Run directory: {run_dir}")
    return result.metrics


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> None:
    run_cli_task(train, cfg)
