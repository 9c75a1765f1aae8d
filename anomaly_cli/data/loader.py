"""Turn a `dataset` config into Splits by calling the source named in `_target_`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from omegaconf import DictConfig

from anomaly_cli.data.base import CLEAN, ArraySplit, LoadContext, Splits
from anomaly_cli.data.inputs import data_seed
from anomaly_cli.errors import AdxUserError
from anomaly_cli.targets import resolve_target


def load_splits(
    dataset_cfg: DictConfig,
    protocol_cfg: DictConfig | None = None,
    transform: dict[str, Any] | None = None,
    plugins: Sequence[str] = (),
) -> Splits:
    """The source's splits, checked to hold only finite numbers (in-memory sources).

    Every random choice about the data comes from `dataset.seed`, never from
    `trainer.seed`, so a new training seed keeps the same split.
    """
    ctx = LoadContext(
        seed=data_seed(dataset_cfg),
        protocol=str(protocol_cfg.name) if protocol_cfg is not None else CLEAN,
        contamination=float(protocol_cfg.get("contamination", 0.1)) if protocol_cfg else 0.1,
        transform=transform,
    )
    source = resolve_target("dataset", dataset_cfg.get("_target_"), plugins)
    splits = source(dataset_cfg, ctx)
    check_finite(splits, str(dataset_cfg.get("name")))
    return splits


def check_finite(splits: Splits, dataset: str) -> None:
    """NaN or infinite inputs make every loss NaN: refuse them before training.

    Streaming sources decode image files, which cannot hold them; in-memory
    arrays (npz, tabular, time series) can.
    """
    for name in ("train", "val", "test"):
        split = getattr(splits, name)
        if not isinstance(split, ArraySplit) or not len(split):
            continue
        bad = ~np.isfinite(split.x.reshape(len(split), -1)).all(axis=1)
        if bad.any():
            raise AdxUserError(
                f"dataset={dataset}: {int(bad.sum())} {name} sample(s) hold NaN or infinite "
                f"values (first: {split.ids[np.argmax(bad)]}); clean the data or drop those "
                "samples"
            )


def data_report(splits: Splits, dataset_cfg: DictConfig) -> dict[str, Any]:
    """data.json: source, protocol, counts per split and class, skipped files, preprocessing."""
    return {
        "dataset": str(dataset_cfg.name),
        "protocol": splits.protocol,
        "input_shape": list(splits.input_shape),
        "counts": splits.counts(),
        "class_counts": splits.class_counts(),
        "skipped_files": [],
        **splits.info,
    }
