"""Model configs as Hydra composes them (beta_vae.yaml inherits vae.yaml)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from tests.conftest import compose_config

MODEL_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"
MODEL_NAMES = sorted(path.stem for path in MODEL_CONFIGS.glob("*.yaml"))


@cache
def _composed(name: str) -> DictConfig:
    return compose_config("train", f"model={name}").model


def model_config(name: str) -> DictConfig:
    """configs/model/<name>.yaml with its defaults list applied; a fresh copy."""
    return OmegaConf.create(OmegaConf.to_container(_composed(name)))
