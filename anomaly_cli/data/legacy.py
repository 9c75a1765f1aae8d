"""Dataset configs written before the one-name-per-concept renames, in today's names.

A run folder keeps the config it was trained with. `upgrade` maps such a
`dataset` section to the current keys and values, so `adx evaluate` rebuilds
the old run's data exactly: same classes, same columns, same split (the data
seed was `trainer.seed` then, so a config without `dataset.seed` gets it).

`RETIRED` and `RETIRED_VALUES` list every rename, for the vocabulary doc and
the test that refuses a retired name in a YAML. Nothing here imports
TensorFlow or reads files.
"""

from __future__ import annotations

import copy
from typing import Any

# Dotted old key -> dotted new key. `label_column` meant two things: the class
# column of a table and the 0/1 anomaly flag of a time series.
RETIRED: dict[str, str] = {
    "dataset.normal_label": "dataset.normal_class",
    "dataset.anomaly_labels": "dataset.anomaly_classes",
    "dataset.label_column": "dataset.class_column or dataset.anomaly_column",
    "dataset.image_size": "dataset.preprocess.image_size",
}

# Dotted key -> {old value: new value}.
RETIRED_VALUES: dict[str, dict[str, str]] = {
    "dataset.missing": {"interpolate": "impute"},
}

# Where one old key became different new keys, the source decides (the module
# named by the config's `_target_`, e.g. anomaly_cli.data.tabular.load).
_LABEL_COLUMN_BY_SOURCE = {"tabular": "class_column", "timeseries": "anomaly_column"}
# Keys whose new name does not depend on the source.
_SAME_FOR_EVERY_SOURCE = {"normal_label": "normal_class", "anomaly_labels": "anomaly_classes"}


def upgrade(dataset_cfg: dict[str, Any], trainer_seed: int | None) -> dict[str, Any]:
    """`dataset_cfg` (a plain dict) with retired keys and values renamed; the input is untouched.

    A key that exists under both names keeps the new one (an override given
    in the new vocabulary wins over the old run's value). A config without
    `seed` takes `trainer_seed`, the seed that drew its data; None leaves it
    unset. A config already in today's names comes back equal.
    """
    cfg = copy.deepcopy(dataset_cfg)
    for old, new in _SAME_FOR_EVERY_SOURCE.items():
        _rename(cfg, old, new)
    label_column = _LABEL_COLUMN_BY_SOURCE.get(_source(cfg))
    if label_column is not None:
        _rename(cfg, "label_column", label_column)
    if "image_size" in cfg:
        size = cfg.pop("image_size")
        preprocess = cfg.get("preprocess")
        preprocess = dict(preprocess) if isinstance(preprocess, dict) else {}
        preprocess.setdefault("image_size", size)
        cfg["preprocess"] = preprocess
    for dotted, renames in RETIRED_VALUES.items():
        key = dotted.removeprefix("dataset.")
        value = cfg.get(key)
        if isinstance(value, str) and value in renames:
            cfg[key] = renames[value]
    if "seed" not in cfg and trainer_seed is not None:
        cfg["seed"] = trainer_seed
    return cfg


def _rename(cfg: dict[str, Any], old: str, new: str) -> None:
    if old in cfg:
        value = cfg.pop(old)
        cfg.setdefault(new, value)


def _source(cfg: dict[str, Any]) -> str:
    """The source module's short name: 'tabular' for anomaly_cli.data.tabular.load."""
    target = str(cfg.get("_target_") or "")
    parts = target.split(".")
    return parts[-2] if len(parts) >= 2 else ""
