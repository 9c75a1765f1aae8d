"""The plots a run draws under plots/, chosen by name in `report.plots`.

A plot is one function here, `name(assessment) -> Figure`, registered with
`@plot("<file under the run folder>")`; its name is what `report.plots` lists
(configs/report/default.yaml). It gets the whole `Assessment` (scores,
labels, threshold, metrics, ROC/PR points, anomaly maps) and only draws:
the writer saves and closes the figure. matplotlib is imported only when a
plot is drawn, so the config check below stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from anomaly_cli import runs
from anomaly_cli.errors import AdxUserError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from anomaly_cli.reporting.assessment import Assessment

Draw = TypeVar("Draw", bound=Callable[..., Any])

# Plot name -> the file it is saved to, relative to the run folder.
PLOT_FILES: dict[str, str] = {}


def plot(file_name: str) -> Callable[[Draw], Draw]:
    """Register the decorated function as the plot of its own name, saved to `file_name`."""

    def register(draw_function: Draw) -> Draw:
        PLOT_FILES[draw_function.__name__] = file_name
        return draw_function

    return register


def check_plots(report: Any) -> None:
    """`report.plots` is a list of registered plot names (runs made before it existed: None)."""
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


def draw(name: str, assessment: Assessment, run_dir: Path) -> Path:
    """Draw plot `name` of `assessment` and save it in `run_dir`; returns the file."""
    # Looked up by name now rather than kept as a function object when registered,
    # so a wrapper put on this module's attribute (tests/faults.py) is the one called.
    figure = globals()[name](assessment)
    path = run_dir / PLOT_FILES[name]
    _save(figure, path)
    return path


@plot(runs.ROC_PLOT)
def roc(assessment: Assessment) -> Figure:
    """ROC curve with AUROC in the legend and the threshold's operating point."""
    metrics, points = assessment.metrics, assessment.roc
    fig, ax = _pyplot().subplots(figsize=(5, 5))
    ax.plot(points["fpr"], points["tpr"], lw=2, label=f"ROC (AUROC = {metrics['auroc']:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.scatter([metrics["fpr"]], [metrics["recall"]], color="red", zorder=3, label="threshold")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="False positive rate",
        ylabel="True positive rate",
        title=assessment.title,
    )
    ax.legend(loc="lower right")
    ax.grid(True, alpha=0.3)
    return fig


@plot(runs.HIST_PLOT)
def score_histogram(assessment: Assessment) -> Figure:
    """Score densities of normal and anomalous test samples, with the threshold line."""
    scores, labels = assessment.scores.score, assessment.labels
    threshold = assessment.threshold.value
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(scores, bins=40)
    # Densities, not counts: test sets often hold far more anomalies than
    # normal samples (digits: 36 vs 808), which would flatten one class.
    for label, name in ((0, "normal"), (1, "anomaly")):
        chosen = scores[labels == label]
        ax.hist(chosen, bins=bins, alpha=0.6, density=True, label=f"{name} (n={len(chosen)})")
    ax.axvline(threshold, color="red", ls="--", label=f"threshold {threshold:.4g}")
    ax.set(xlabel="anomaly score", ylabel="density", title=assessment.title)
    ax.legend()
    return fig


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on CI or clusters
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: Path) -> None:
    try:
        fig.tight_layout()
        with runs.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        _pyplot().close(fig)
