"""Generated tables for the tabular source: 17 correlated features (seed 003's width).

Normal rows lie near a 3-dimensional subspace: a low-rank latent times a fixed
mixing matrix, plus a little noise, each feature with its own offset and
scale (so scaling matters). Anomalies draw every feature independently with
the normal rows' own mean and spread: each value looks ordinary on its own,
only the broken correlation gives them away.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

N_FEATURES = 17
FEATURES = [f"f{i:02d}" for i in range(N_FEATURES)]
# The structure (mixing, offsets, scales) is shared by every table drawn here,
# so a model trained on one table applies to another.
_STRUCTURE_SEED = 3


def _structure() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(_STRUCTURE_SEED)
    mixing = rng.normal(size=(3, N_FEATURES))
    offsets = rng.uniform(-50, 50, N_FEATURES)
    scales = 10.0 ** rng.uniform(-1, 2, N_FEATURES)
    return mixing, offsets, scales


def make_rows(n_normal: int, n_anomaly: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Rows in random order with a `label` column of "normal" / "anomaly";
    `shift` moves every raw value by that many of its feature's scale units."""
    mixing, offsets, scales = _structure()
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(n_normal, 3)) @ mixing
    normal += 0.05 * rng.normal(size=normal.shape)
    spread = np.sqrt((mixing**2).sum(axis=0))  # the normal rows' standard deviation
    anomaly = rng.normal(size=(n_anomaly, N_FEATURES)) * spread
    values = np.vstack([normal, anomaly]) * scales + offsets + shift * scales
    labels = np.array(["normal"] * n_normal + ["anomaly"] * n_anomaly)
    order = rng.permutation(len(labels))
    frame = pd.DataFrame(values[order], columns=FEATURES)
    frame["label"] = labels[order]
    return frame


def make_tabular_fixture(root: Path) -> dict[str, Path]:
    """rows.csv (to train on) and rows_new.csv (a fresh draw, for evaluate) in `root`,
    as the README's tabular commands expect."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {"train": root / "rows.csv", "new": root / "rows_new.csv"}
    make_rows(500, 100, seed=0).to_csv(paths["train"], index=False)
    make_rows(300, 60, seed=1).to_csv(paths["new"], index=False)
    return paths
