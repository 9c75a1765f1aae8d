"""Time-ordered train, val and test parts of a series, and what each part needs.

No shuffling: the future must not leak into training. Each part is windowed
on its own, so no window crosses a cut; the clean protocol trains on normal
windows only, so it drops the anomalous train windows.
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from anomaly_cli.data.base import ANOMALY, CLEAN, NORMAL, TRANSDUCTIVE, UNSUPERVISED
from anomaly_cli.data.inputs import plain
from anomaly_cli.data.series.windows import Windows, sliding_windows
from anomaly_cli.errors import AdxUserError

PARTS = ("train", "val", "test")
# [begin, end) point range of each part.
Cuts = dict[str, tuple[int, int]]


def check_protocol(protocol: str) -> None:
    if protocol == TRANSDUCTIVE:
        raise AdxUserError(
            "protocol=transductive would score the training windows again; "
            "dataset=timeseries supports protocol=clean or protocol=unsupervised"
        )
    if protocol not in (CLEAN, UNSUPERVISED):
        raise AdxUserError(f"protocol={protocol} is unknown; choose clean or unsupervised")


def cut_points(n: int, fractions: DictConfig, window: int) -> Cuts:
    """[begin, end) point ranges of the consecutive train, val and test parts."""
    shares = np.array([float(fractions[k]) for k in PARTS])
    if np.any(shares <= 0):
        raise AdxUserError(
            f"dataset.split={plain(fractions)} must give train, val and test a positive fraction"
        )
    shares = shares / shares.sum()
    train_end = round(n * shares[0])
    val_end = train_end + round(n * shares[1])
    cuts = {"train": (0, train_end), "val": (train_end, val_end), "test": (val_end, n)}
    for name, (begin, end) in cuts.items():
        if end - begin < window:
            raise AdxUserError(
                f"the {name} part has {end - begin} points (dataset.split.{name}="
                f"{fractions[name]} of {n}), fewer than dataset.window={window}; "
                f"raise dataset.split.{name} or lower dataset.window"
            )
    return cuts


def part_windows(
    values: np.ndarray,
    labels: np.ndarray,
    cuts: Cuts,
    window: int,
    stride: int,
    protocol: str,
) -> tuple[dict[str, Windows], int]:
    """The windows of each part, and how many anomalous train windows the clean protocol
    dropped (it trains on normal windows only)."""
    parts = {name: sliding_windows(values, labels, window, stride, *cuts[name]) for name in PARTS}
    if protocol != CLEAN:
        return parts, 0
    keep = parts["train"].labels == NORMAL
    parts["train"] = parts["train"].select(keep)
    return parts, int(np.sum(~keep))


def check_parts(
    labels: dict[str, np.ndarray], cuts: Cuts, dropped: int, window: int, protocol: str
) -> None:
    """Clean train and val need a normal window (fit, threshold); test needs both kinds."""

    def where(name: str) -> str:
        begin, end = cuts[name]
        return f"the {name} part (points {begin}-{end - 1})"

    def count(name: str) -> str:
        return (
            f"{int(np.sum(labels[name] == NORMAL))} normal, {int(np.sum(labels[name]))} anomalous"
        )

    fix = "change dataset.split fractions or lower dataset.window"
    if protocol == CLEAN and not np.any(labels["train"] == NORMAL):
        raise AdxUserError(
            f"{where('train')} has no normal window of {window} points "
            f"({dropped} windows with anomalies dropped); {fix}"
        )
    if not np.any(labels["val"] == NORMAL):
        raise AdxUserError(
            f"{where('val')} has no normal window to fit the threshold on ({count('val')}); {fix}"
        )
    if not (np.any(labels["test"] == NORMAL) and np.any(labels["test"] == ANOMALY)):
        raise AdxUserError(
            f"{where('test')} needs normal and anomalous windows, it has {count('test')}; {fix}"
        )


def fit_rows(labels: np.ndarray, cuts: Cuts, protocol: str) -> np.ndarray:
    """The points the z-score is fitted on: the train part, only its normal points when the
    labels may be used (clean), so anomalies stay out of the statistics."""
    rows = np.arange(*cuts["train"])
    return rows[labels[rows] == NORMAL] if protocol == CLEAN else rows
