"""Plots of runs scored with MC dropout (scoring.mc_dropout.samples >= 2): spread, calibration."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from anomaly_cli import runs
from anomaly_cli.reporting.plots.registry import plot, pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from anomaly_cli.reporting.assessment import Assessment


@plot(f"{runs.PLOTS_DIR}/uncertainty.png", needs=("mc_dropout",))
def uncertainty(assessment: Assessment) -> Figure:
    """Score mean against score std over the dropout passes, per class, with the
    threshold's boundary: score = mean + combine * std > threshold."""
    scores = assessment.scores
    assert scores.mean is not None and scores.std is not None  # needs mc_dropout
    fig, ax = pyplot().subplots(figsize=(6, 5))
    for label, name in ((0, "normal"), (1, "anomaly")):
        chosen = assessment.labels == label
        ax.scatter(
            scores.mean[chosen],
            scores.std[chosen],
            s=12,
            alpha=0.7,
            label=f"{name} (n={chosen.sum()})",
        )
    threshold = assessment.threshold.value
    combine = _combine(assessment)
    if combine > 0:
        means = np.linspace(float(scores.mean.min()), float(scores.mean.max()), 50)
        stds = (threshold - means) / combine
        keep = stds >= 0
        ax.plot(means[keep], stds[keep], color="red", ls="--", label="threshold boundary")
    else:
        ax.axvline(threshold, color="red", ls="--", label=f"threshold {threshold:.4g}")
    # The boundary runs far above the data where the mean is low: keep the data in view.
    ax.set_ylim(0.0, max(float(scores.std.max()) * 1.15, 1e-12))
    ax.set(
        xlabel="score mean over dropout passes",
        ylabel="score std over dropout passes",
        title=assessment.title,
    )
    ax.legend()
    ax.grid(True, alpha=0.3)
    return fig


@plot(f"{runs.PLOTS_DIR}/reliability.png", needs=("mc_dropout", "calibration"))
def reliability(assessment: Assessment) -> Figure:
    """Reliability diagram: per probability bin, the share of anomalies against the mean
    P(anomaly) (evaluation/calibration.py), with ECE; below, how many samples each bin holds."""
    calibration = assessment.calibration
    assert calibration is not None  # needs calibration
    bins = calibration.bins
    centres = (bins["lower"] + bins["upper"]) / 2
    width = float((bins["upper"] - bins["lower"]).iloc[0])
    fig, (top, bottom) = pyplot().subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    filled = bins["count"] > 0
    top.bar(
        centres[filled],
        bins["fraction_anomalous"][filled],
        width=width * 0.9,
        alpha=0.7,
        edgecolor="black",
        label="share of anomalies",
    )
    top.plot(
        bins["mean_probability"][filled],
        bins["fraction_anomalous"][filled],
        "o",
        color="black",
        label="at the bin's mean P",
    )
    top.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    top.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        ylabel="share of anomalies",
        title=f"{assessment.title}\nECE = {calibration.ece:.4f} ({calibration.method})",
    )
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(centres, bins["count"], width=width * 0.9, color="grey")
    bottom.set(xlabel="P(anomaly) from the score", ylabel="samples")
    return fig


def _combine(assessment: Assessment) -> float:
    """scoring.mc_dropout.combine, recovered from the scores: (score - mean) / std."""
    scores = assessment.scores
    spread = scores.std > 0
    if not spread.any():
        return 0.0
    return float(np.median((scores.score[spread] - scores.mean[spread]) / scores.std[spread]))
