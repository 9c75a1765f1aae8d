"""`tune.*` read and checked without TensorFlow: the search space and the search settings.

preflight runs `check_tune_config` on the composed config before Hydra makes
a folder, so a bad space costs one line and nothing on disk. A trial's config
is the tune run's config with the trial's values set (`trial_config`): every
trial is then an ordinary `adx train` config, and `as_overrides` writes the
same values as the command line that rebuilds it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from anomaly_cli.errors import AdxUserError

ALGORITHMS = ("random", "bayesian", "hyperband")
# Objective -> direction. The label objectives score the validation split.
OBJECTIVES = {"val_loss": "min", "val_auroc": "max", "val_aupr": "max"}
LABEL_OBJECTIVES = ("val_auroc", "val_aupr")
SEARCHES = ("space", "batch_size")
# How a key's values are given: one of a list, or a range.
KINDS = ("choice", "int", "float", "log")
SEARCHED_GROUPS = ("model", "optimizer", "trainer")
# What `tune.space: null` searches: every model has a learning rate.
DEFAULT_SPACE = {"optimizer.lr": {"log": [1e-4, 1e-2]}}
SPACE_EXAMPLE = (
    "'tune.space={optimizer.lr: {log: [1e-4, 1e-2]}, model.latent_dim: {choice: [8, 16]}}'"
)
# Keys a trial never takes from the space: the search sets them itself.
RESERVED = {"trainer.epochs": "hyperband"}
_MISSING = object()


@dataclass(frozen=True)
class Dimension:
    """One searched key: `kind` is one of KINDS; `values` the choices or (low, high)."""

    key: str
    kind: str
    values: tuple[Any, ...]

    @property
    def candidates(self) -> tuple[Any, ...]:
        """The values a trial can take that bound what it can take: checked up front."""
        return self.values

    @property
    def scalar_choices(self) -> bool:
        """Choices Keras Tuner holds as they are (one plain type); others go by position."""
        kinds = {type(v) for v in self.values}
        return len(kinds) == 1 and kinds <= {int, float, str, bool}


def read_space(tune: DictConfig) -> list[Dimension]:
    """`tune.space` as dimensions, in the order given; raises AdxUserError on bad input."""
    raw = tune.get("space")
    space = DEFAULT_SPACE if raw is None else _plain(raw)
    if not isinstance(space, Mapping) or not space:
        raise AdxUserError(f"tune.space={raw} must map config keys to values, e.g. {SPACE_EXAMPLE}")
    return [_dimension(str(key), spec) for key, spec in space.items()]


def _dimension(key: str, spec: Any) -> Dimension:
    where = f"tune.space.{key}"
    if not isinstance(spec, Mapping) or len(spec) != 1 or next(iter(spec)) not in KINDS:
        raise AdxUserError(
            f"{where}={spec}: give one of {', '.join(KINDS)}, e.g. {{choice: [8, 16]}} "
            "or {log: [1e-4, 1e-2]}"
        )
    kind, values = next(iter(spec.items()))
    if not isinstance(values, list) or not values:
        raise AdxUserError(f"{where}.{kind}={values} must be a non-empty list")
    if kind == "choice":
        if len({repr(v) for v in values}) != len(values):
            raise AdxUserError(f"{where}.choice={values} lists a value twice")
        return Dimension(key, kind, tuple(values))
    if len(values) != 2 or not all(_is_number(v) for v in values):
        raise AdxUserError(f"{where}.{kind}={values} must be [low, high], two numbers")
    low, high = values
    if kind == "int" and not all(isinstance(v, int) for v in values):
        raise AdxUserError(f"{where}.int={values} must be two integers; use float for numbers")
    if not low < high:
        raise AdxUserError(f"{where}.{kind}={values}: low must be below high")
    if kind == "log" and low <= 0:
        raise AdxUserError(f"{where}.log={values}: a log range needs low > 0")
    return Dimension(key, kind, (low, high))


def check_tune_config(cfg: DictConfig) -> list[Dimension]:
    """Everything `tune.*` can get wrong, before any folder or data; returns the space."""
    tune = cfg.tune
    search = cfg.get("search")
    if search not in SEARCHES:
        raise AdxUserError(f"search={search}; choose one of: {', '.join(SEARCHES)}")
    if tune.get("algorithm") not in ALGORITHMS:
        raise AdxUserError(
            f"tune.algorithm={tune.get('algorithm')}; choose one of: {', '.join(ALGORITHMS)}"
        )
    if tune.get("objective") not in OBJECTIVES:
        raise AdxUserError(
            f"tune.objective={tune.get('objective')}; choose one of: {', '.join(OBJECTIVES)}"
        )
    for key, lowest in (("max_trials", 1), ("batch_gap", 1), ("largest_batch", 1)):
        value = tune.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            raise AdxUserError(f"tune.{key}={value} must be an integer of at least {lowest}")
    min_delta = tune.get("min_delta")
    if not _is_number(min_delta) or min_delta < 0:
        raise AdxUserError(f"tune.min_delta={min_delta} must be a number of at least 0, e.g. 0.01")
    label_objective = search == "batch_size" or tune.objective in LABEL_OBJECTIVES
    if label_objective and _no_anomalies(cfg.dataset):
        what = (
            "search=batch_size measures AUROC"
            if search == "batch_size"
            else (f"tune.objective={tune.objective} needs anomalies")
        )
        raise AdxUserError(
            f"{what} on the validation split, but this dataset has none; add anomalies or "
            "use tune.objective=val_loss"
        )
    if search == "batch_size":
        return []
    dimensions = read_space(tune)
    for dimension in dimensions:
        _check_key(cfg, dimension, str(tune.algorithm))
    return dimensions


def _check_key(cfg: DictConfig, dimension: Dimension, algorithm: str) -> None:
    """The key exists, holds one setting, and every bound of its values passes train's checks."""
    from anomaly_cli.checks import check_train_config

    key, where = dimension.key, f"tune.space.{dimension.key}"
    if key.split(".", 1)[0] not in SEARCHED_GROUPS or "." not in key:
        raise AdxUserError(
            f"{where}: only model, optimizer and trainer keys can be searched, "
            f"e.g. optimizer.lr or model.latent_dim"
        )
    current = OmegaConf.select(cfg, key, default=_MISSING, throw_on_resolution_failure=False)
    if current is _MISSING:
        group, _, _ = key.partition(".")
        valid = ", ".join(sorted(str(k) for k in cfg[group]))
        raise AdxUserError(f"{where}: {key} is not a config key; keys of {group}: {valid}")
    if isinstance(current, DictConfig):
        raise AdxUserError(f"{where}: {key} holds several settings; name one of them")
    if key in RESERVED and algorithm == RESERVED[key]:
        raise AdxUserError(
            f"{where}: tune.algorithm={algorithm} sets {key} itself; leave it out of tune.space"
        )
    if isinstance(current, (list, ListConfig)) and dimension.kind != "choice":
        raise AdxUserError(
            f"{where}: {key} holds a list; search it with {{choice: [[...], [...]]}}"
        )
    for value in dimension.candidates:
        try:
            check_train_config(trial_config(cfg, {key: value}))
        except AdxUserError as error:
            raise AdxUserError(f"{where} may give {key}={value}, which fails: {error}") from error


def trial_config(cfg: DictConfig, values: Mapping[str, Any]) -> DictConfig:
    """The train config of one trial: the tune run's config with `values` set."""
    trial = copy.deepcopy(cfg)
    with open_dict(trial):
        for key, value in values.items():
            OmegaConf.update(trial, key, value, merge=False)
        trial.resume = None
        trial.task_name = "train"
        for own in ("tune", "search"):
            trial.pop(own, None)
    return trial


def as_overrides(values: Mapping[str, Any]) -> list[str]:
    """`key=value` overrides that set `values` on the command line (floats round-trip)."""
    return [f"{key}={_override_value(value)}" for key, value in values.items()]


def _override_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    if value is None:
        return "null"
    return str(value)


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _no_anomalies(dataset: DictConfig) -> bool:
    """Whether the config alone says the data holds no anomalies (generated data)."""
    return any(dataset.get(key) == 0 for key in ("n_anomaly", "n_anomalies"))
