"""Seeded, stratified splits of labelled samples into train / val / test."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from anomaly_cli.data.base import ANOMALY, NORMAL, ArraySplit, Splits
from anomaly_cli.errors import AdxUserError


def split_indices(
    labels: np.ndarray, fractions: Mapping[str, float], seed: int
) -> dict[str, np.ndarray]:
    """Indices of train / val / test.

    Normal samples are divided by `fractions` (train, val, test, normalised to
    sum to 1); anomalies never enter train and are divided between val and
    test in the val:test ratio. Each split is sorted so ids stay in source
    order; the same labels and seed give the same split on every machine.
    """
    weights = np.array([float(fractions[k]) for k in ("train", "val", "test")])
    if np.any(weights < 0) or weights.sum() <= 0 or weights[0] <= 0 or weights[2] <= 0:
        raise AdxUserError(
            f"dataset.split={dict(fractions)} must give train and test a positive fraction"
        )
    rng = np.random.default_rng(seed)
    normal = rng.permutation(np.flatnonzero(labels == NORMAL))
    anomaly = rng.permutation(np.flatnonzero(labels == ANOMALY))
    n_train, n_val = _cut(len(normal), weights / weights.sum())
    val_share = weights[1] / (weights[1] + weights[2])
    n_val_anomaly = round(len(anomaly) * val_share)
    parts = {
        "train": normal[:n_train],
        "val": np.concatenate([normal[n_train : n_train + n_val], anomaly[:n_val_anomaly]]),
        "test": np.concatenate([normal[n_train + n_val :], anomaly[n_val_anomaly:]]),
    }
    _check(parts, labels)
    return {name: np.sort(idx) for name, idx in parts.items()}


def _cut(n: int, shares: np.ndarray) -> tuple[int, int]:
    n_train = round(n * shares[0])
    n_val = round(n * shares[1])
    return n_train, min(n_val, n - n_train)


def _check(parts: dict[str, np.ndarray], labels: np.ndarray) -> None:
    def count(idx: np.ndarray) -> str:
        normal = int(np.sum(labels[idx] == NORMAL))
        return f"{normal} normal, {len(idx) - normal} anomalies"

    if len(parts["train"]) == 0:
        raise AdxUserError(
            f"the train split has no normal sample (train: {count(parts['train'])}); "
            "add normal data or raise dataset.split.train"
        )
    test_labels = labels[parts["test"]]
    if not (np.any(test_labels == NORMAL) and np.any(test_labels == ANOMALY)):
        raise AdxUserError(
            f"the test split needs normal and anomaly samples, it has {count(parts['test'])}; "
            "add data or raise dataset.split.test"
        )


def array_splits(
    x: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    fractions: Mapping[str, float],
    seed: int,
    info: dict | None = None,
) -> Splits:
    """Split in-memory samples; `x` holds one sample per row in model layout."""
    parts = split_indices(labels, fractions, seed)
    made = {
        name: ArraySplit(ids=ids[idx], labels=labels[idx], x=x[idx]) for name, idx in parts.items()
    }
    return Splits(**made, input_shape=tuple(int(d) for d in x.shape[1:]), info=info or {})
