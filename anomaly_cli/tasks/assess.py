"""Score val and test, fit the threshold on val, measure test, write the artifacts.

Shared by `train` and `evaluate`, so both write exactly the same files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from anomaly_cli import runs
from anomaly_cli.data.base import Splits
from anomaly_cli.errors import AdxUserError
from anomaly_cli.evaluation.metrics import compute_metrics, pr_points, roc_points
from anomaly_cli.evaluation.pixel import pixel_metrics
from anomaly_cli.evaluation.thresholds import Threshold, fit_threshold, predict
from anomaly_cli.reporting import plots, tables
from anomaly_cli.scoring.scorer import Scores, ScoringOptions, score_samples
from anomaly_cli.tasks.lifecycle import set_stage

log = logging.getLogger("adx")


@dataclass(frozen=True)
class Assessment:
    metrics: dict[str, Any]
    threshold: Threshold
    table: str


def assess(model: Any, splits: Splits, cfg: DictConfig, run_dir: Path, title: str) -> Assessment:
    from anomaly_cli.data.pipeline import scoring_batches

    batch_size = int(cfg.trainer.batch_size)
    options = ScoringOptions.from_config(cfg.get("scoring"))
    val = score_samples(model, scoring_batches(splits.val, batch_size), options)
    test = score_samples(model, scoring_batches(splits.test, batch_size), options)
    check_finite_scores({"val": val.score, "test": test.score}, cfg)
    test_scores = test.score
    threshold = fit_threshold(cfg.threshold, val.score, splits.val.labels)
    labels = splits.test.labels
    metrics = compute_metrics(labels, test_scores, threshold.value)
    table = tables.metrics_table(metrics)
    write_artifacts(run_dir, splits, test, threshold, metrics, table, title)
    if splits.reports is not None:
        for name, frame in splits.reports(test_scores).items():
            runs.write_csv(run_dir / name, frame)
    masks = splits.test.mask_dataset()
    if masks is not None and not model.produces_maps:
        log.info("no pixel metrics: %s gives no per-pixel maps", type(model).__name__)
    elif masks is not None:
        maps = model.anomaly_map(scoring_batches(splits.test, batch_size))
        truth = np.stack(list(masks.as_numpy_iterator()))
        pixel = pixel_metrics(maps, truth)
        runs.write_json(run_dir / runs.PIXEL_METRICS, pixel)
        log.info("pixel AUROC %s over %d images", pixel["pixel_auroc"], pixel["images"])
    log.info(
        "threshold %.6g (%s); test AUROC %.4f",
        threshold.value,
        threshold.strategy,
        metrics["auroc"],
    )
    return Assessment(metrics=metrics, threshold=threshold, table=table)


def check_finite_scores(scores: dict[str, np.ndarray], cfg: DictConfig) -> None:
    """NaN or infinite scores cannot be thresholded or ranked; say why they arise."""
    for name, values in scores.items():
        bad = int(np.sum(~np.isfinite(values)))
        if bad:
            raise AdxUserError(
                f"model={cfg.model.name} gives {bad} of {len(values)} {name} samples a score "
                "that is not a finite number (its weights or the data hold extreme values); "
                f"train again with a lower optimizer.lr (now {cfg.optimizer.lr}) or another "
                "model.score"
            )


def print_report(subject: str, result: Assessment, run_dir: Path) -> None:
    """The closing lines of train and evaluate: the test metrics in seed 000's table."""
    threshold = result.threshold
    print(f"\nTest metrics ({subject}, threshold {threshold.value:.6g} by {threshold.strategy}):")
    print(result.table)
    print(f"Run directory: {run_dir}")


def write_artifacts(
    run_dir: Path,
    splits: Splits,
    test: Scores,
    threshold: Threshold,
    metrics: dict[str, Any],
    table: str,
    title: str,
) -> None:
    labels, test_scores = splits.test.labels, test.score
    scores = pd.DataFrame(
        {
            "id": splits.test.ids,
            "label": labels,
            **test.columns(),
            "prediction": predict(test_scores, threshold.value),
        }
    )
    runs.write_csv(run_dir / runs.SCORES, scores)
    roc = roc_points(labels, test_scores)
    runs.write_csv(run_dir / runs.ROC, roc)
    runs.write_csv(run_dir / runs.PR, pr_points(labels, test_scores))
    runs.write_json(
        run_dir / runs.THRESHOLD,
        {**threshold.to_dict(), "fitted_on": "val", "val_counts": splits.val.counts()},
    )
    runs.write_json(run_dir / runs.METRICS_JSON, metrics)
    runs.write_csv(run_dir / runs.METRICS_CSV, tables.metrics_frame(metrics))
    runs.write_text(run_dir / runs.METRICS_TXT, table + "\n")
    set_stage("drawing plots")
    plots.roc_plot(
        run_dir / runs.ROC_PLOT, roc, metrics["auroc"], (metrics["fpr"], metrics["recall"]), title
    )
    plots.score_histogram(run_dir / runs.HIST_PLOT, test_scores, labels, threshold.value, title)
