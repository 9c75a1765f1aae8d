"""The plots a run draws under plots/, chosen by name in `report.plots`.

A plot is one function, `name(assessment) -> Figure`, registered with
`@plot("<file under the run folder>", needs=(...))` in one of the family
modules here (curves, images, uncertainty); its name is what `report.plots`
lists (configs/report/default.yaml). It gets the whole `Assessment` and only
draws: the writer saves and closes the figure. A plot whose needs the run
cannot meet (image plots of a table, MC dropout plots without it) is skipped
with one info line. matplotlib is imported only when a plot is drawn, so the
config check below stays cheap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomaly_cli.checks import is_integer
from anomaly_cli.errors import AdxUserError
from anomaly_cli.reporting.plots.curves import loss, pr, roc, score_histogram
from anomaly_cli.reporting.plots.images import (
    difference_maps,
    extremes,
    heatmaps,
    reconstructions,
    saliency,
)
from anomaly_cli.reporting.plots.registry import PLOT_FILES, PLOT_NEEDS, needs_of, plot
from anomaly_cli.reporting.plots.registry import save as _save
from anomaly_cli.reporting.plots.uncertainty import reliability, uncertainty
from anomaly_cli.reporting.sample_view import DEFAULT_SAMPLES

if TYPE_CHECKING:
    from anomaly_cli.reporting.assessment import Assessment

__all__ = [
    "PLOT_FILES",
    "PLOT_NEEDS",
    "check_plots",
    "difference_maps",
    "draw",
    "extremes",
    "heatmaps",
    "loss",
    "needs_of",
    "plot",
    "pr",
    "reconstructions",
    "reliability",
    "roc",
    "saliency",
    "samples_per_group",
    "score_histogram",
    "uncertainty",
]

log = logging.getLogger("adx")


def check_plots(report: Any) -> None:
    """`report.plots` is a list of registered plot names (runs made before it existed: None),
    and `report.samples` a positive count."""
    if report is None:
        return
    names = report.get("plots")
    if names is None or isinstance(names, str) or not hasattr(names, "__iter__"):
        raise AdxUserError(
            f"report.plots={names} must be a list of plot names, e.g. report.plots=[roc] "
            "(or [] for none)"
        )
    for name in names:
        if name not in PLOT_FILES:
            raise AdxUserError(
                f"report.plots names an unknown plot '{name}'; choose from: {', '.join(PLOT_FILES)}"
            )
    samples_per_group(report)


def samples_per_group(report: Any) -> int:
    """`report.samples`: images per group in the image plots (runs made before it: the default)."""
    value = DEFAULT_SAMPLES if report is None else report.get("samples", DEFAULT_SAMPLES)
    if not is_integer(value) or int(value) < 1:
        raise AdxUserError(
            f"report.samples={value} must be a whole number of images of at least 1, "
            f"e.g. report.samples={DEFAULT_SAMPLES}"
        )
    return int(value)


def draw(name: str, assessment: Assessment, run_dir: Path) -> Path | None:
    """Draw plot `name` of `assessment` and save it in `run_dir`; returns the file, or
    None when the run lacks what the plot needs (said in one info line)."""
    reason = assessment.lacks(PLOT_NEEDS.get(name, ()))
    if reason is not None:
        log.info("plot %s skipped: %s", name, reason)
        return None
    # Looked up by name now rather than kept as a function object when registered,
    # so a wrapper put on this module's attribute (tests/faults.py) is the one called.
    figure = globals()[name](assessment)
    path = run_dir / PLOT_FILES[name]
    _save(figure, path)
    return path
