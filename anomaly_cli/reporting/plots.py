"""ROC curve and score histogram of a run's test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from anomaly_cli import runs


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on CI or clusters
    import matplotlib.pyplot as plt

    return plt


def roc_plot(
    path: Path, roc: pd.DataFrame, auroc: float, operating: tuple[float, float], title: str
) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(roc["fpr"], roc["tpr"], lw=2, label=f"ROC (AUROC = {auroc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.scatter([operating[0]], [operating[1]], color="red", zorder=3, label="threshold")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="False positive rate",
        ylabel="True positive rate",
        title=title,
    )
    ax.legend(loc="lower right")
    ax.grid(True, alpha=0.3)
    _save(fig, path)


def score_histogram(
    path: Path, scores: np.ndarray, labels: np.ndarray, threshold: float, title: str
) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(scores, bins=40)
    # Densities, not counts: test sets often hold far more anomalies than
    # normal samples (digits: 36 vs 808), which would flatten one class.
    for label, name in ((0, "normal"), (1, "anomaly")):
        chosen = scores[labels == label]
        ax.hist(chosen, bins=bins, alpha=0.6, density=True, label=f"{name} (n={len(chosen)})")
    ax.axvline(threshold, color="red", ls="--", label=f"threshold {threshold:.4g}")
    ax.set(xlabel="anomaly score", ylabel="density", title=title)
    ax.legend()
    _save(fig, path)


def _save(fig, path: Path) -> None:
    plt = _pyplot()
    fig.tight_layout()
    with runs.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
