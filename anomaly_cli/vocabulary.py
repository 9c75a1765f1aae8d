"""One name per config concept, and how run folders from before the names settled are read.

`CONCEPTS` lists the ideas several configs share, each with its one key and a
pattern of the second names it must not grow (docs/vocabulary.md explains
them; tests/test_vocabulary.py runs `second_names` over configs/). The
retired names of adx 0.1 live next to the code that reads them
(`anomaly_cli.models.legacy`, `anomaly_cli.data.legacy`); `upgrade_run_config`
applies them to a run folder's config.yaml, so `adx evaluate` still re-scores
a run trained before the renames. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from anomaly_cli import __version__
from anomaly_cli.data import legacy as data_legacy
from anomaly_cli.errors import AdxUserError, first_lines
from anomaly_cli.models import legacy as model_legacy
from anomaly_cli.runs import written_by


@dataclass(frozen=True)
class Concept:
    idea: str
    key: str  # dotted, as on the command line
    second_names: str = ""  # a regex over leaf keys that would name the same idea again
    values: tuple[str, ...] = ()  # where the values are a fixed set

    @property
    def leaf(self) -> str:
        return self.key.rsplit(".", 1)[-1]


CONCEPTS = (
    Concept(
        "the class(es) that are normal", "dataset.normal_class", r"normal_(label|labels|classes)"
    ),
    # A grid axis, not a second name: each of them is one cell's dataset.normal_class.
    Concept(
        "the normal classes of a benchmark, one one-vs-all task each", "benchmark.normal_classes"
    ),
    Concept(
        "the classes that count as anomalies (null: every other class)",
        "dataset.anomaly_classes",
        r"(anomaly|anomalous|abnormal)_(label|labels|class)",
    ),
    Concept(
        "a table's column of class names or ids", "dataset.class_column", r"(label|target|y)_column"
    ),
    Concept(
        "a series' column of 0/1 anomaly flags",
        "dataset.anomaly_column",
        r"(flag|is_anomaly)_column",
    ),
    Concept(
        "what to do with missing values: impute | error",
        "dataset.missing",
        r"(nan|missing)_(policy|values|handling)|on_missing",
        ("impute", "error"),
    ),
    Concept(
        "the side of square images after preprocessing",
        "dataset.preprocess.image_size",
        r"(img|image)_(side|dim|shape)|resize(_to)?",
    ),
    Concept(
        "the seed of every data draw, split and contamination",
        "dataset.seed",
        r"(split|data|sampling)_seed",
    ),
    Concept(
        "the seed of weights, shuffling and dropout", "trainer.seed", r"(train|training|init)_seed"
    ),
    Concept(
        "the latent (code) size",
        "model.latent_dim",
        r"(rep|code|z|latent|bottleneck|embedding)_(dim|size|units)",
    ),
    Concept(
        "conv widths: an int (first layer, doubled per layer) or a list",
        "model.filters",
        r"(num|n|base|conv|first)_filters",
    ),
    Concept(
        "dense or recurrent hidden widths, a list",
        "model.units",
        r"(hidden|dense|encoder|lstm|mlp)_units",
    ),
    Concept("the number of conv stages", "model.num_hidden_layers", r"depth|n_layers|num_layers"),
    Concept("the loss trained on", "model.loss", r"loss_(name|kind|type)"),
    Concept("the score (higher = more anomalous)", "model.score", r"score_(name|kind|type)"),
    Concept(
        "the optimizer class (any keras.optimizers class)",
        "optimizer._target_",
        r"optimizer_(name|class)",
    ),
    Concept("the initial learning rate", "optimizer.lr", r"learning_rate|base_lr"),
    Concept("the number of training epochs", "trainer.epochs", r"(n|num|max)_epochs"),
    Concept("samples per training and scoring batch", "trainer.batch_size", r"batch|bs"),
    Concept(
        "the precision layers compute in",
        "trainer.precision",
        r"dtype(_policy)?|mixed_precision|(use_)?(fp16|bf16|amp)",
        ("float32", "mixed_float16", "mixed_bfloat16"),
    ),
    Concept("XLA compilation: auto | true | false", "trainer.jit_compile", r"(use_)?(xla|jit)"),
    Concept(
        "training on several GPUs: none | mirrored",
        "trainer.distribute",
        r"(distribution|distribute)_strategy|multi_gpu",
        ("none", "mirrored"),
    ),
)

# Values that changed name: key -> {old value: new value}.
RETIRED_VALUES: dict[str, dict[Any, Any]] = {
    **model_legacy.RETIRED_VALUES,
    **data_legacy.RETIRED_VALUES,
}
# Old dotted key -> today's key(s), for the docs and the messages.
RETIRED: dict[str, str] = {**model_legacy.RETIRED, **data_legacy.RETIRED}

# The optimizer was picked by `name` before `_target_` named its class.
_OPTIMIZER_CLASSES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}


def second_names(config_root: Path) -> list[str]:
    """Every place under `config_root` that names a listed concept a second way."""
    problems = []
    for path, key, value in _yaml_keys(config_root):
        where = f"{path.relative_to(config_root)}: {key}"
        leaf = key.rsplit(".", 1)[-1]
        if key in RETIRED:
            problems.append(f"{where} is retired; use {RETIRED[key]}")
        declared = key in {c.key for c in CONCEPTS}
        for concept in CONCEPTS:
            if declared or not concept.second_names:
                continue
            if leaf != concept.leaf and re.fullmatch(concept.second_names, leaf):
                problems.append(f"{where} names {concept.idea!r} again; use {concept.key}")
        if isinstance(value, str) and value in RETIRED_VALUES.get(key, {}):
            problems.append(f"{where}={value} is retired; use {RETIRED_VALUES[key][value]}")
        allowed = next((c.values for c in CONCEPTS if c.key == key and c.values), None)
        if allowed and value not in allowed:
            problems.append(f"{where}={value}; the values of {key} are {' | '.join(allowed)}")
    return problems


def _yaml_keys(config_root: Path) -> Iterator[tuple[Path, str, Any]]:
    """(file, dotted key as on the command line, value) for every leaf and node of every YAML."""
    for path in sorted(config_root.rglob("*.yaml")):
        text = path.read_text()
        relative = path.relative_to(config_root)
        if relative.parts[0] == "hydra":
            continue  # Hydra's own vocabulary, not adx's
        if "@package _global_" in text or len(relative.parts) == 1:
            package = ""
        else:
            package = ".".join(relative.parts[:-1])
        content = yaml.safe_load(text) or {}
        yield from ((path, key, value) for key, value in _walk(content, package))


def _walk(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "defaults":
            continue  # Hydra's own vocabulary, not adx's
        if key == "hydra" and not prefix:
            continue  # Hydra's own vocabulary, not adx's
        dotted = f"{prefix}.{key}" if prefix else str(key)
        yield dotted, value
        yield from _walk(value, dotted)


def upgrade_run_config(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """A run's config in today's names, or one line naming the adx that wrote it.

    Keys in today's names are left alone, so a current run comes back equal.
    """
    try:
        plain = OmegaConf.to_container(cfg, resolve=False)
        assert isinstance(plain, dict)
        upgraded = dict(plain)
        trainer = upgraded.get("trainer") or {}
        seed = trainer.get("seed") if isinstance(trainer, dict) else None
        if isinstance(upgraded.get("model"), dict):
            upgraded["model"] = model_legacy.upgrade(upgraded["model"])
        if isinstance(upgraded.get("dataset"), dict):
            upgraded["dataset"] = data_legacy.upgrade(upgraded["dataset"], seed)
        if isinstance(upgraded.get("optimizer"), dict):
            upgraded["optimizer"] = _upgrade_optimizer(upgraded["optimizer"])
        if upgraded == plain:
            return cfg
        return OmegaConf.create(upgraded)
    except Exception as error:  # a config of an adx whose names this one cannot map
        version = written_by(run_dir)
        raise AdxUserError(
            f"{run_dir} was written by adx {version}, whose config this adx {__version__} "
            f"cannot read ({first_lines(error)[:120]}); evaluate it with adx {version} "
            "or train it again"
        ) from error


def _upgrade_optimizer(optimizer: dict[str, Any]) -> dict[str, Any]:
    if "_target_" in optimizer or optimizer.get("name") not in _OPTIMIZER_CLASSES:
        return optimizer
    target = f"keras.optimizers.{_OPTIMIZER_CLASSES[optimizer['name']]}"
    return {"_target_": target, **optimizer}
