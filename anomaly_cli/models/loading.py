"""Build a detector from its config, or load one from a .keras checkpoint."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

import anomaly_cli.models as models_package
from anomaly_cli.models.base import AnomalyModel, ShapeMismatch

# Keys of a model config that describe it rather than parameterise it.
_META_KEYS = ("_target_", "name")


def build_model(
    model_cfg: DictConfig, sample_shape: tuple[int, ...], dataset_name: str | None = None
) -> AnomalyModel:
    """The model cfg describes, for samples of `sample_shape` from `dataset_name`."""
    from hydra.utils import get_class

    params: dict[str, Any] = {
        k: v
        for k, v in OmegaConf.to_container(model_cfg, resolve=True).items()
        if k not in _META_KEYS
    }
    try:
        model = get_class(model_cfg._target_)(sample_shape=tuple(sample_shape), **params)
    except ShapeMismatch as mismatch:
        name = str(model_cfg.get("name") or mismatch.model_name)
        raise mismatch.naming(name, dataset_name) from None
    # One call on zeros creates the variables and records the build shape,
    # which a .keras file needs to rebuild the model on load.
    model(np.zeros((1, *sample_shape), dtype="float32"))
    return model


def load_checkpoint(path: str | Path, compile: bool = False) -> AnomalyModel:
    """Load any adx model; each model module registers its class on import.

    compile=True also restores the optimizer and its state, to go on training.
    """
    import keras

    for module in pkgutil.iter_modules(models_package.__path__):
        importlib.import_module(f"{models_package.__name__}.{module.name}")
    return keras.saving.load_model(str(path), compile=compile)
