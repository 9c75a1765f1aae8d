"""The writing stage: an assessment's files in a run folder, then the plots report.plots lists.

The files (scores.csv, roc.csv, pr.csv, threshold.json, metrics.json/.csv/.txt,
pixel_metrics.json, the source's own reports) come first and the plots last:
an interrupt while drawing leaves every number on disk. A listed plot the run
cannot draw (image plots of a table) is skipped by `plots.draw` with one info line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from anomaly_cli import runs
from anomaly_cli.evaluation.thresholds import predict
from anomaly_cli.reporting import plots, tables
from anomaly_cli.reporting.assessment import Assessment
from anomaly_cli.tasks.lifecycle import set_stage


def write_artifacts(run_dir: Path, assessment: Assessment, plot_names: Sequence[str]) -> None:
    """Every file of `assessment` in `run_dir`, and the plots named in `plot_names`, in order."""
    write_files(run_dir, assessment)
    if plot_names:
        set_stage("drawing plots")
    for name in plot_names:
        plots.draw(name, assessment, run_dir)


def write_files(run_dir: Path, assessment: Assessment) -> None:
    scores = assessment.scores
    frame = pd.DataFrame(
        {
            "id": assessment.ids,
            "label": assessment.labels,
            **scores.columns(),
            "prediction": predict(scores.score, assessment.threshold.value),
        }
    )
    runs.write_csv(run_dir / runs.SCORES, frame)
    runs.write_csv(run_dir / runs.ROC, assessment.roc)
    runs.write_csv(run_dir / runs.PR, assessment.pr)
    runs.write_json(run_dir / runs.THRESHOLD, assessment.judgement.threshold_record())
    runs.write_json(run_dir / runs.METRICS_JSON, assessment.metrics)
    runs.write_csv(run_dir / runs.METRICS_CSV, tables.metrics_frame(assessment.metrics))
    runs.write_text(run_dir / runs.METRICS_TXT, assessment.table + "\n")
    for name, report in assessment.source_reports.items():
        runs.write_csv(run_dir / name, report)
    if assessment.pixel_metrics is not None:
        runs.write_json(run_dir / runs.PIXEL_METRICS, assessment.pixel_metrics)
