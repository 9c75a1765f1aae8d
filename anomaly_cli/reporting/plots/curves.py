"""Plots of every run, whatever its data: ROC, precision-recall, score histogram, loss curves."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly_cli import runs
from anomaly_cli.reporting.plots.registry import plot, pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from anomaly_cli.reporting.assessment import Assessment


@plot(runs.ROC_PLOT)
def roc(assessment: Assessment) -> Figure:
    """ROC curve with AUROC in the legend and the threshold's operating point."""
    metrics, points = assessment.metrics, assessment.roc
    fig, ax = pyplot().subplots(figsize=(5, 5))
    label = f"ROC (AUROC = {metrics['auroc']:.3f})"
    draw_roc(ax, [(points["fpr"], points["tpr"], label)], assessment.title)
    ax.scatter([metrics["fpr"]], [metrics["recall"]], color="red", zorder=3, label="threshold")
    ax.legend(loc="lower right")
    return fig


def draw_roc(ax: Any, curves: Iterable[tuple[Any, Any, str]], title: str) -> None:
    """ROC curves, each (fpr, tpr, legend label), and the chance line on `ax`: one
    look for a run's ROC plot and compare's plot of every run."""
    for fpr, tpr, label in curves:
        ax.plot(fpr, tpr, lw=2, label=label)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="False positive rate",
        ylabel="True positive rate",
        title=title,
    )
    ax.grid(True, alpha=0.3)


@plot(runs.HIST_PLOT)
def score_histogram(assessment: Assessment) -> Figure:
    """Score densities of normal and anomalous test samples, with the threshold line."""
    scores, labels = assessment.scores.score, assessment.labels
    threshold = assessment.threshold.value
    fig, ax = pyplot().subplots(figsize=(6, 4))
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


@plot(f"{runs.PLOTS_DIR}/pr.png")
def pr(assessment: Assessment) -> Figure:
    """Precision-recall curve (anomaly = positive) with AUPR in the legend, the share of
    anomalies as the chance line and the threshold's operating point."""
    metrics, points = assessment.metrics, assessment.pr
    share = float(np.mean(assessment.labels == 1)) if len(assessment.labels) else 0.0
    fig, ax = pyplot().subplots(figsize=(5, 5))
    # A step curve, as average precision (AUPR) sums it.
    ax.step(
        points["recall"],
        points["precision"],
        where="post",
        lw=2,
        label=f"PR (AUPR = {metrics['aupr_out']:.3f})",
    )
    ax.axhline(share, ls="--", color="grey", lw=1, label=f"chance ({share:.2f} anomalies)")
    ax.scatter(
        [metrics["recall"]], [metrics["precision"]], color="red", zorder=3, label="threshold"
    )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="Recall (anomalies found)",
        ylabel="Precision (alarms that are anomalies)",
        title=assessment.title,
    )
    ax.legend(loc="lower left")
    ax.grid(True, alpha=0.3)
    return fig


@plot(f"{runs.PLOTS_DIR}/loss.png", needs=("history",))
def loss(assessment: Assessment) -> Figure:
    """Training and validation loss per epoch (history.csv), the lowest val loss marked."""
    history = assessment.history
    assert history is not None  # draw() skips a plot whose needs are absent
    fig, ax = pyplot().subplots(figsize=(6, 4))
    for column, name in (("loss", "training"), ("val_loss", "validation")):
        if column in history:
            ax.plot(history["epoch"], history[column], marker="o", ms=3, label=f"{name} loss")
    if "val_loss" in history and history["val_loss"].notna().any():
        best = history.loc[history["val_loss"].idxmin()]
        ax.scatter(
            [best["epoch"]],
            [best["val_loss"]],
            color="red",
            zorder=3,
            label=f"lowest val loss (epoch {int(best['epoch'])})",
        )
    values = history[[c for c in ("loss", "val_loss") if c in history]].to_numpy(float)
    positive = values[np.isfinite(values)]
    # Losses that fall by orders of magnitude read better on a log axis.
    if positive.size and positive.min() > 0 and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel="loss", title=assessment.title)
    ax.legend()
    ax.grid(True, alpha=0.3)
    return fig
