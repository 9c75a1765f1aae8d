"""What a finished trial scored on the validation split, and how its run ended.

val_loss is the lowest validation loss training saw (run.json's
best_val_loss: the epoch the best checkpoint holds). val_auroc and val_aupr
score the validation split with that checkpoint through adx's own scoring
(`tasks.assess.score_split`, the scores train and evaluate compute) and rank
them with `evaluation.metrics.ranking_metrics`; the test split is never read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from anomaly_cli import runs
from anomaly_cli.data.base import ANOMALY, Splits
from anomaly_cli.errors import AdxUserError
from anomaly_cli.tuning.space import LABEL_OBJECTIVES

# Objective -> the key of ranking_metrics it reads (AUPR with anomalies positive).
_RANKING_KEYS = {"val_auroc": "auroc", "val_aupr": "aupr_out"}


def check_val_anomalies(splits: Splits, objective: str) -> None:
    """A label objective needs both classes in val: one line when it has no anomalies."""
    if objective in LABEL_OBJECTIVES and not (splits.val.labels == ANOMALY).any():
        raise AdxUserError(
            f"{objective} is measured on the validation split, which holds no anomalies "
            f"({splits.val.counts()}); use tune.objective=val_loss or data with anomalies"
        )


def measure(objective: str, splits: Splits, cfg: DictConfig, run_dir: Path) -> float:
    """The objective of the finished train run in `run_dir` (NaN when it has none)."""
    if objective == "val_loss":
        loss = run_info(run_dir).get("best_val_loss")
        return float(loss) if loss is not None else math.nan
    return validation_ranking(splits, cfg, run_dir)[_RANKING_KEYS[objective]]


def validation_ranking(splits: Splits, cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """AUROC and AUPR of the run's best checkpoint on the validation split."""
    from anomaly_cli.evaluation.metrics import ranking_metrics
    from anomaly_cli.models.loading import load_checkpoint
    from anomaly_cli.scoring.scorer import ScoringOptions
    from anomaly_cli.tasks.assess import score_split

    model = load_checkpoint(run_dir / runs.CHECKPOINT, remedy=f"rerun the trial in {run_dir}")
    if cfg.model.get("score") is not None:  # as train scores its best checkpoint
        model.set_score(str(cfg.model.score))
    options = ScoringOptions.from_config(cfg.get("scoring"))
    scores = score_split(model, splits.val, int(cfg.trainer.batch_size), options)
    return ranking_metrics(splits.val.labels, scores.score)


def run_info(run_dir: Path) -> dict[str, Any]:
    """The trial's run.json ({} before it finished)."""
    return runs.optional_json_object(run_dir / runs.RUN_INFO)
