"""Build a detector from its config, or load one from a .keras checkpoint."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

import anomaly_cli.models as models_package
from anomaly_cli.errors import first_lines
from anomaly_cli.models.base import AnomalyModel, ShapeMismatch
from anomaly_cli.runs import DamagedFile, check_keras_archive
from anomaly_cli.targets import resolve_target

# Keys of a model config that describe it rather than parameterise it.
_META_KEYS = ("_target_", "name")


def build_model(
    model_cfg: DictConfig,
    sample_shape: tuple[int, ...],
    dataset_name: str | None = None,
    plugins: Sequence[str] = (),
) -> AnomalyModel:
    """The model cfg describes, for samples of `sample_shape` from `dataset_name`."""
    params: dict[str, Any] = {
        k: v
        for k, v in OmegaConf.to_container(model_cfg, resolve=True).items()
        if k not in _META_KEYS
    }
    model_class = resolve_target("model", model_cfg.get("_target_"), plugins)
    try:
        model = model_class(sample_shape=tuple(sample_shape), **params)
    except ShapeMismatch as mismatch:
        name = str(model_cfg.get("name") or mismatch.model_name)
        raise mismatch.naming(name, dataset_name) from None
    # One call on zeros creates the variables and records the build shape,
    # which a .keras file needs to rebuild the model on load.
    model(np.zeros((1, *model.network_shape), dtype="float32"))
    return model


def load_checkpoint(path: str | Path, compile: bool = False, remedy: str = "") -> AnomalyModel:
    """Load any adx model; each model module registers its class on import.

    compile=True also restores the optimizer and its state, to go on training.
    safe_mode refuses archives that would run code (Lambda layers) on load. A
    file that is damaged or is not an adx model is a DamagedFile naming it and
    `remedy` (what the user can still do).
    """
    import keras

    remedy = remedy or "train the model again"
    check_keras_archive(Path(path), remedy)
    for module in pkgutil.iter_modules(models_package.__path__):
        importlib.import_module(f"{models_package.__name__}.{module.name}")
    try:
        model = keras.saving.load_model(str(path), compile=compile, safe_mode=True)
    except Exception as error:  # Keras raises anything from TypeError to OSError here
        raise DamagedFile(
            f"{path} cannot be loaded as an adx model ({first_lines(error)[:160]}); {remedy}"
        ) from error
    if not isinstance(model, AnomalyModel):
        raise DamagedFile(f"{path} holds a {type(model).__name__}, not an adx model; {remedy}")
    return model
