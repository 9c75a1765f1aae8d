"""Turn a `dataset` config into Splits by calling the source named in `_target_`."""

from __future__ import annotations

from omegaconf import DictConfig

from anomaly_cli.data.base import Splits


def load_splits(dataset_cfg: DictConfig, seed: int) -> Splits:
    from hydra.utils import get_method

    return get_method(dataset_cfg._target_)(dataset_cfg, seed)
