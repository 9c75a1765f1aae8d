"""Turn a `dataset` config into Splits by calling the source named in `_target_`."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from anomaly_cli.data.base import CLEAN, LoadContext, Splits


def load_splits(
    dataset_cfg: DictConfig,
    seed: int,
    protocol_cfg: DictConfig | None = None,
    transform: dict[str, Any] | None = None,
) -> Splits:
    from hydra.utils import get_method

    ctx = LoadContext(
        seed=seed,
        protocol=str(protocol_cfg.name) if protocol_cfg is not None else CLEAN,
        contamination=float(protocol_cfg.get("contamination", 0.1)) if protocol_cfg else 0.1,
        transform=transform,
    )
    return get_method(dataset_cfg._target_)(dataset_cfg, ctx)


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
