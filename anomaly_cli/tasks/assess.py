"""Assessment in stages, and the ending that train and evaluate share.

The stages, each usable alone:

- `score_split`: model + split -> `Scores`; reads no labels, so a verb
  without them (predict) can call it alone;
- `judge` (evaluation/judge.py): scores + labels -> the threshold fitted on
  val and the test metrics; no files;
- `write_artifacts` (reporting/artifacts.py): the run's files, then the plots
  `report.plots` lists.

`assess` chains them for a labelled val and test split; `conclude_run` is what
train and evaluate do once their model is ready.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from anomaly_cli import runs
from anomaly_cli.data.base import Split, Splits
from anomaly_cli.errors import AdxUserError
from anomaly_cli.evaluation.judge import judge
from anomaly_cli.evaluation.pixel import pixel_metrics
from anomaly_cli.reporting.artifacts import write_artifacts
from anomaly_cli.reporting.assessment import Assessment
from anomaly_cli.scoring.scorer import Scores, ScoringOptions, score_samples
from anomaly_cli.tasks.lifecycle import set_stage

log = logging.getLogger("adx")

# What runs configured before `report.plots` existed always drew.
PLOTS_BEFORE_REPORT_GROUP = ("roc", "score_histogram")


def score_split(model: Any, split: Split, batch_size: int, options: ScoringOptions) -> Scores:
    """Scores of every sample of `split`, in id order, higher = more anomalous."""
    # score_samples is looked up in this module, where tests/faults.py injects
    # a Ctrl-C "while scoring".
    from anomaly_cli.data.pipeline import scoring_batches

    return score_samples(model, scoring_batches(split, batch_size), options)


def anomaly_maps(model: Any, split: Split, batch_size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-pixel maps of `split` and its ground-truth masks, where both can exist."""
    masks = split.mask_dataset()
    if masks is None:
        return None
    if not model.produces_maps:
        log.info("no pixel metrics: %s gives no per-pixel maps", type(model).__name__)
        return None
    from anomaly_cli.data.pipeline import scoring_batches

    maps = model.anomaly_map(scoring_batches(split, batch_size))
    return maps, np.stack(list(masks.as_numpy_iterator()))


def assess(model: Any, splits: Splits, cfg: DictConfig, run_dir: Path, title: str) -> Assessment:
    """Score val and test, fit the threshold on val, measure test, write the artifacts."""
    batch_size = int(cfg.trainer.batch_size)
    options = ScoringOptions.from_config(cfg.get("scoring"))
    val = score_split(model, splits.val, batch_size, options)
    test = score_split(model, splits.test, batch_size, options)
    check_finite_scores({"val": val.score, "test": test.score}, cfg)
    judgement = judge(cfg.threshold, val.score, splits.val.labels, test.score, splits.test.labels)
    maps, masks, pixel = None, None, None
    pixel_truth = anomaly_maps(model, splits.test, batch_size)
    if pixel_truth is not None:
        maps, masks = pixel_truth
        pixel = pixel_metrics(maps, masks)
        log.info("pixel AUROC %s over %d images", pixel["pixel_auroc"], pixel["images"])
    assessment = Assessment(
        title=title,
        ids=splits.test.ids,
        labels=splits.test.labels,
        scores=test,
        judgement=judgement,
        maps=maps,
        masks=masks,
        pixel_metrics=pixel,
        source_reports=splits.reports(test.score) if splits.reports is not None else {},
    )
    write_artifacts(run_dir, assessment, plot_names(cfg))
    log.info(
        "threshold %.6g (%s); test AUROC %.4f",
        judgement.threshold.value,
        judgement.threshold.strategy,
        judgement.metrics["auroc"],
    )
    return assessment


def plot_names(cfg: DictConfig) -> list[str]:
    report = cfg.get("report")
    return list(report.plots) if report is not None else list(PLOTS_BEFORE_REPORT_GROUP)


def conclude_run(
    model: Any,
    splits: Splits,
    cfg: DictConfig,
    run_dir: Path,
    *,
    subject: str,
    run_info: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Assess `model`, then record the run (run.json, `latest`) and print its metrics.

    `run_info` is called once the artifacts are written, so what it reports
    (e.g. train's wall time) covers the assessment too. Returns the test metrics.
    """
    set_stage("scoring")
    title = f"{cfg.model.name} on {cfg.dataset.name}"
    result = assess(model, splits, cfg, run_dir, title)
    # run.json and `latest` only after every artifact, so both mark a finished run.
    runs.write_json(run_dir / runs.RUN_INFO, run_info())
    runs.update_latest(run_dir, cfg.paths.output_dir)
    print_report(subject, result, run_dir)
    return result.metrics


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
