"""Model settings retired by the one-vocabulary renames, and how old configs upgrade.

Runs trained before the renames hold .keras checkpoints (and config.yaml files)
whose model config uses the old names. `upgrade` maps such a config to today's
names; every model's `from_config` runs it, so old checkpoints still load.

`RETIRED` lists every renamed key (dotted, old -> new), `RETIRED_VALUES`
every renamed value (key -> {old value: new value}) and `RETIRED_PLACEHOLDERS`
the values that are dropped with their key, for the vocabulary docs and the
test that keeps YAMLs on one name per concept.

Pure Python, no TensorFlow: the CLI may import it to explain a retired key.
"""

from __future__ import annotations

from typing import Any

RETIRED: dict[str, str] = {
    # The latent size is latent_dim everywhere.
    "model.rep_dim": "model.latent_dim",
    # Conv widths are filters: an int is the first width, doubled per layer;
    # a list gives each layer's width.
    "model.num_filters": "model.filters",
    "model.conv_filters": "model.filters",
    "model.base_filters": "model.filters",
    # Dense and recurrent hidden widths are units, a list with one width per layer.
    "model.hidden_units": "model.units",
    "model.encoder_units": "model.units",
    "model.dense_units": "model.units",
    # The number of conv stages is num_hidden_layers.
    "model.depth": "model.num_hidden_layers",
}

RETIRED_VALUES: dict[str, dict[Any, Any]] = {
    # The latent-distance score has one name (deep_svdd called it distance); the
    # largest value of the map is max (draem called it map_max).
    "model.score": {"distance": "latent_distance", "map_max": "max"},
}

# Settings dropped with their old values: deep_svdd and ganomaly carried a `loss`
# whose one value stood for their own objective, only to satisfy the old base class.
RETIRED_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "model.loss": ("svdd", "ganomaly"),
}

# Old values whose form changed with the key: dense_units was one width (0: none),
# units is a list of widths.
RESHAPED: dict[str, str] = {
    "model.dense_units": "N becomes [N] and 0 becomes []",
}

# deep_svdd had both hidden_units (the Dense encoder of rows and windows) and
# dense_units (a Dense layer after the conv stack of images); both are units now,
# used by whichever encoder the samples get. These were the old defaults.
_DEEP_SVDD_OLD_DEFAULTS = {"dense_units": 0, "hidden_units": [64, 32]}


def _as_units(dense_units: Any) -> list[int]:
    return [int(dense_units)] if dense_units else []


def upgrade(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """The model config with every retired key and value replaced by today's.

    Takes a model config as a plain dict: a Hydra `model` node or the config
    Keras saved in a checkpoint (which also holds `sample_shape`). Keys in use
    today are left alone, so upgrading twice changes nothing.
    """
    cfg = dict(model_cfg)
    if "dense_units" in cfg and "hidden_units" in cfg:
        # deep_svdd: which of the two old widths the samples used depends on their
        # kind; a checkpoint knows it, a run's YAML only if one was changed.
        dense, hidden = cfg.pop("dense_units"), list(cfg.pop("hidden_units"))
        shape = cfg.get("sample_shape")
        if shape is not None:
            cfg["units"] = _as_units(dense) if len(shape) == 3 else hidden
        elif {"dense_units": dense, "hidden_units": hidden} == _DEEP_SVDD_OLD_DEFAULTS:
            cfg["units"] = None
        else:
            cfg["units"] = _as_units(dense) if dense else hidden
    for dotted_old, dotted_new in RETIRED.items():
        old, new = dotted_old.removeprefix("model."), dotted_new.removeprefix("model.")
        if old in cfg:
            value = cfg.pop(old)
            # A config that somehow holds both keeps today's.
            cfg.setdefault(new, _as_units(value) if old == "dense_units" else value)
    for dotted_key, placeholders in RETIRED_PLACEHOLDERS.items():
        key = dotted_key.removeprefix("model.")
        if cfg.get(key) in placeholders:
            del cfg[key]
    for dotted_key, renames in RETIRED_VALUES.items():
        key = dotted_key.removeprefix("model.")
        value = cfg.get(key)
        if isinstance(value, str) and value in renames:
            cfg[key] = renames[value]
    return cfg
