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
import pandas as pd
from omegaconf import DictConfig

from anomaly_cli import runs
from anomaly_cli.data.base import Split, Splits
from anomaly_cli.errors import AdxUserError, first_lines
from anomaly_cli.evaluation.calibration import calibrate
from anomaly_cli.evaluation.judge import judge
from anomaly_cli.evaluation.pixel import pixel_metrics
from anomaly_cli.reporting import plots
from anomaly_cli.reporting.artifacts import write_artifacts
from anomaly_cli.reporting.assessment import Assessment
from anomaly_cli.reporting.sample_view import IMAGE_NEEDS, build_view
from anomaly_cli.scoring.scorer import Scores, ScoringOptions, score_samples
from anomaly_cli.tasks.lifecycle import set_stage

log = logging.getLogger("adx")

# What runs configured before `report.plots` existed always drew.
PLOTS_BEFORE_REPORT_GROUP = ("roc", "score_histogram")
# Why the MC dropout plots and ECE are absent, as a skipped plot says it.
NO_MC_DROPOUT = "scores come from one pass (scoring.mc_dropout.samples < 2)"
NO_CALIBRATION = "val holds one class only, and a score -> probability map needs both to be fitted"


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
    set_stage("threshold and metrics")
    judgement = judge(cfg.threshold, val.score, splits.val.labels, test.score, splits.test.labels)
    maps, masks, pixel = None, None, None
    pixel_truth = anomaly_maps(model, splits.test, batch_size)
    if pixel_truth is not None:
        maps, masks = pixel_truth
        # Per defect class too, so a kind the model cannot see is not averaged away.
        pixel = pixel_metrics(
            maps, masks, splits.test.classes, splits.test.labels, scores=test.score
        )
        log.info("pixel AUROC %s over %d images", pixel["pixel_auroc"], pixel["images"])
    names = plot_names(cfg)
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
        **plot_inputs(model, splits, cfg, run_dir, names, (val, test)),
    )
    write_artifacts(run_dir, assessment, names)
    log.info(
        "threshold %.6g (%s); test AUROC %.4f",
        judgement.threshold.value,
        judgement.threshold.strategy,
        judgement.metrics["auroc"],
    )
    return assessment


def plot_inputs(
    model: Any,
    splits: Splits,
    cfg: DictConfig,
    run_dir: Path,
    names: list[str],
    scores: tuple[Scores, Scores],
) -> dict[str, Any]:
    """What the plots `names` draw from beyond scores and labels (Assessment's history,
    samples, calibration) and why any of it is absent; each part only when needed."""
    val, test = scores
    options = ScoringOptions.from_config(cfg.get("scoring"))
    needs = plots.needs_of(names)
    found: dict[str, Any] = {}
    missing: dict[str, str] = {}
    if options.monte_carlo:
        # ECE goes to metrics.json whether or not the reliability diagram is drawn.
        found["calibration"] = calibrate(
            val.score, splits.val.labels, test.score, splits.test.labels
        )
        if found["calibration"] is None:
            missing["calibration"] = NO_CALIBRATION
            log.info("no ECE: %s", NO_CALIBRATION)
    else:
        missing["mc_dropout"] = NO_MC_DROPOUT
    if "history" in needs:
        found["history"], reason = load_history(run_dir)
        if reason is not None:
            missing["history"] = reason
    try:
        found["samples"], absent = build_view(
            model,
            splits.test,
            tuple(splits.input_shape),
            test.score,
            needs,
            plots.samples_per_group(cfg.get("report")),
            model_name=str(cfg.model.name),
            top_k=options.top_k,
        )
    except AdxUserError:
        raise
    except Exception as error:  # the scores and metrics come first: a failed view costs plots
        reason = f"the sample images could not be prepared ({first_lines(error)[:160]})"
        log.warning("image plots skipped: %s", reason)
        found["samples"], absent = None, dict.fromkeys(IMAGE_NEEDS, reason)
    return {**found, "missing": {**missing, **absent}}


def load_history(run_dir: Path) -> tuple[pd.DataFrame | None, str | None]:
    """The run's history.csv (evaluate copies its source run's), or why there is none."""
    path = run_dir / runs.HISTORY
    if not path.is_file():
        return None, f"{runs.HISTORY} is not in the run folder (no training history)"
    try:
        history = pd.read_csv(path)
    except (OSError, ValueError) as error:  # a damaged history costs one plot, not the run
        return None, f"{path} cannot be read ({first_lines(error)[:120]})"
    if "epoch" not in history or history.empty:
        return None, f"{path} holds no epochs"
    return history, None


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
    set_stage("writing the report")
    runs.write_json(run_dir / runs.RUN_INFO, run_info())
    # Last, so it shows every file; a failure is a warning, never a lost run.
    from anomaly_cli.reporting.html import write_report_or_warn

    write_report_or_warn(run_dir, title=title)
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
