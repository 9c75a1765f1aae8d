"""The cells of `adx benchmark`: models x normal classes x contamination x repeats.

A cell is one `adx train` run. What identifies it is its place in the grid
(model, normal class, contamination, repeat) and the settings it shares with
every other cell (the command's remaining overrides, e.g. `trainer.epochs=5`),
so a rerun of the same command finds its finished cells, and a changed grid
reuses the cells it still contains. Repeat r trains with `trainer.seed + r`
and draws its data with `dataset.seed + r` (seed 001 repeats the whole
experiment, data draw included). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from anomaly_cli.errors import AdxUserError

# The keys the grid sets in every cell (a typed trainer.seed or dataset.seed is
# the base that repeat r adds r to).
AXIS_KEYS = ("model", "dataset.normal_class", "protocol.contamination")
SEED_KEYS = ("trainer.seed", "dataset.seed")
# What a cell's job does not take from the command: the grid's own keys and
# Hydra's settings (the launcher gets those from the benchmark's config).
_NOT_JOB = ("benchmark.", "hydra.", "hydra/")
# Overrides that change where a cell goes or what it prints, never its numbers.
_NOT_IDENTITY = ("paths.", "trainer.verbose", "trainer.checkpoint_every", "logger", "report.")


@dataclass(frozen=True)
class Cell:
    model: str
    normal_class: str
    contamination: float | None  # None: the protocol has no contamination
    repeat: int
    trainer_seed: int
    dataset_seed: int | None
    # The model's own overrides (benchmark.model_overrides), e.g. its optimizer.
    extra: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str, int]:
        """What a results.csv row is matched on (with the settings)."""
        return (self.model, self.normal_class, contamination_text(self.contamination), self.repeat)

    @property
    def name(self) -> str:
        """The cell's folder under cells/: readable, and safe on every file system."""
        parts = [self.model, f"class-{self.normal_class}"]
        if self.contamination is not None:
            parts.append(f"cont-{contamination_text(self.contamination)}")
        parts.append(f"rep-{self.repeat}")
        return re.sub(r"[^A-Za-z0-9_.=-]", "_", "_".join(parts))

    def overrides(self, job_args: Sequence[str]) -> list[str]:
        """The cell's job: the command's own overrides (`job_arguments`), then the grid's."""
        grid = [
            f"model={self.model}",
            f"dataset.normal_class={_quoted(self.normal_class)}",
            f"trainer.seed={self.trainer_seed}",
        ]
        if self.contamination is not None:
            grid.append(f"protocol.contamination={self.contamination}")
        if self.dataset_seed is not None:
            grid.append(f"dataset.seed={self.dataset_seed}")
        return [*self.recipe(job_args), *grid]

    def recipe(self, job_args: Sequence[str]) -> list[str]:
        """The command's overrides plus the model's own; the command line wins."""
        typed = {_key(a) for a in job_args}
        return [*job_args, *(o for o in self.extra if _key(o) not in typed)]

    def settings(self, command_settings: Sequence[str]) -> str:
        """The cell's settings text: the command's, plus its model's own overrides."""
        typed = {_key(a) for a in command_settings}
        own = [o for o in self.extra if _key(o) not in typed]
        return settings_text(sorted([*command_settings, *own]))


def contamination_text(value: float | None) -> str:
    """0.1 -> '0.1', None -> '-': one spelling in folder names, CSV rows and tables."""
    return "-" if value is None else f"{float(value):g}"


def _quoted(value: str) -> str:
    """A class name as Hydra's override grammar reads it back unchanged (e.g. 'T-shirt/top')."""
    if re.fullmatch(r"[A-Za-z0-9_]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def job_arguments(arguments: Sequence[str]) -> list[str]:
    """The command's overrides every cell's job starts from (the grid adds its own)."""
    return [
        a
        for a in arguments
        if not _key(a).startswith(_NOT_JOB) and _key(a) not in (*AXIS_KEYS, *SEED_KEYS)
    ]


def settings_of(arguments: Sequence[str]) -> list[str]:
    """The overrides that decide a cell's numbers besides its place in the grid, sorted."""
    kept = [
        a
        for a in arguments
        if not _key(a).startswith((*_NOT_JOB, *_NOT_IDENTITY)) and _key(a) not in AXIS_KEYS
    ]
    return sorted(kept)


def settings_text(settings: Sequence[str]) -> str:
    """How a cell's settings are written in results.csv ('' for the config's defaults)."""
    return " ".join(settings)


def build_cells(cfg: DictConfig, model_choice: str) -> list[Cell]:
    """Every cell of the grid cfg.benchmark describes, in run order, or AdxUserError."""
    bench = cfg.benchmark
    models = _models(bench.get("models"), model_choice)
    classes = _classes(bench.get("normal_classes"), cfg.dataset)
    contamination = _contamination(bench.get("contamination"), cfg)
    repeats = bench.get("repeats")
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise AdxUserError(f"benchmark.repeats={repeats} must be a whole number of at least 1")
    if not isinstance(cfg.trainer.seed, int):  # trainer=stable's `dynamic` (seed 002's Eq. 24)
        raise AdxUserError(
            f"trainer.seed={cfg.trainer.seed}: a benchmark's repeat r trains with trainer.seed + "
            "r, so it needs a number; set trainer.seed=<integer> (e.g. trainer.seed=555)"
        )
    trainer_seed = int(cfg.trainer.seed)
    data_seed = cfg.dataset.get("seed")
    extra = model_overrides(bench.get("model_overrides"), models)
    return [
        Cell(
            model=model,
            normal_class=normal_class,
            contamination=rho,
            repeat=repeat,
            trainer_seed=trainer_seed + repeat,
            dataset_seed=None if data_seed is None else int(data_seed) + repeat,
            extra=extra.get(model, ()),
        )
        for repeat in range(repeats)
        for rho in contamination
        for normal_class in classes
        for model in models
    ]


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    if OmegaConf.is_list(value):
        return list(OmegaConf.to_container(value))
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def model_overrides(value: Any, models: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """benchmark.model_overrides: {model: [override, ...]}, each model's own recipe.

    Models outside the grid may be listed (an experiment's recipe for a model
    the command left out).
    """
    if value is None:
        return {}
    if not OmegaConf.is_dict(value) and not isinstance(value, dict):
        raise AdxUserError(
            f"benchmark.model_overrides={value} is not a mapping; write e.g. "
            "benchmark.model_overrides=\"{deep_svdd:['optimizer=adam','optimizer.lr=1e-4']}\""
        )
    found = {}
    for model, overrides in value.items():
        listed = _as_list(overrides) or []
        if not all((isinstance(o, str) and "=" in o) or str(o).startswith("~") for o in listed):
            raise AdxUserError(
                f"benchmark.model_overrides.{model}={listed}: each entry is an override "
                "such as optimizer.lr=1e-4"
            )
        if any(_key(str(o)) in (*AXIS_KEYS, *SEED_KEYS) for o in listed):
            raise AdxUserError(
                f"benchmark.model_overrides.{model} sets a key of the grid itself "
                f"({', '.join(AXIS_KEYS)}, or a seed); set those with benchmark.*"
            )
        if str(model) in models:
            found[str(model)] = tuple(str(o) for o in listed)
    return found


def _models(value: Any, choice: str) -> list[str]:
    from anomaly_cli.config_dir import config_groups

    models = [str(m) for m in _as_list(value) or [choice]]
    known = config_groups().get("model", [])
    for model in models:
        if model not in known:
            raise AdxUserError(
                f"benchmark.models names '{model}', which is not a model; choose from: "
                f"{', '.join(known)}"
            )
    return _once_each("benchmark.models", models, "a model")


def _classes(value: Any, dataset: DictConfig) -> list[str]:
    declared = _as_list(dataset.get("classes"))
    if isinstance(value, str) and value == "all":
        if not declared:
            raise AdxUserError(
                f"benchmark.normal_classes=all, but dataset={dataset.name} does not list its "
                "classes (dataset.classes); name them: benchmark.normal_classes=[a,b,...]"
            )
        return [str(c) for c in declared]
    chosen = _as_list(value)
    if chosen is None:
        normal = dataset.get("normal_class")
        if OmegaConf.is_list(normal):
            raise AdxUserError(
                "dataset.normal_class is a list; a benchmark runs one normal class per cell: "
                "write benchmark.normal_classes=[...] instead"
            )
        chosen = [normal]
    classes = [str(c) for c in chosen]
    if declared:
        unknown = [c for c in classes if c not in {str(d) for d in declared}]
        if unknown:
            raise AdxUserError(
                f"benchmark.normal_classes names {', '.join(unknown)}, not a class of "
                f"dataset={dataset.name}; its classes: {', '.join(str(d) for d in declared)}"
            )
    return _once_each("benchmark.normal_classes", classes, "a class")


def _contamination(value: Any, cfg: DictConfig) -> list[float | None]:
    protocol = cfg.get("protocol") or {}
    has_contamination = "contamination" in protocol
    chosen = _as_list(value)
    if chosen is None:
        return [float(protocol.contamination)] if has_contamination else [None]
    if not has_contamination:
        raise AdxUserError(
            f"benchmark.contamination is set, but protocol={protocol.get('name')} trains on "
            "clean data; add protocol=unsupervised (seed 001's contaminated one-vs-all)"
        )
    rates = []
    for rho in chosen:
        try:
            rate = float(rho)
        except (TypeError, ValueError):
            rate = -1.0
        if not 0 <= rate < 1:
            raise AdxUserError(
                f"benchmark.contamination holds {rho}; each value is a share of anomalies in "
                "[0, 1), e.g. [0.05,0.1,0.15,0.2,0.25]"
            )
        rates.append(rate)
    return _once_each("benchmark.contamination", rates, "a rate")


def _once_each(key: str, items: list[Any], what: str) -> list[Any]:
    """A grid axis names each value once (a repeated cell would only be run twice)."""
    if len(set(items)) != len(items):
        raise AdxUserError(f"{key}={items} names {what} twice")
    return items


def refuse_sweeps(arguments: Sequence[str]) -> None:
    """A benchmark's grid lives in benchmark.*; Hydra's `a,b` sweeps would multiply it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in OverridesParser.create().parse_overrides(list(arguments)):
        if override.is_sweep_override():
            key = override.key_or_group
            hint = {
                "model": "benchmark.models=[a,b]",
                "dataset.normal_class": "benchmark.normal_classes=[a,b]",
                "protocol.contamination": "benchmark.contamination=[0.1,0.2]",
            }.get(key, "one value per key (a benchmark's grid is set by benchmark.*)")
            raise AdxUserError(
                f"adx benchmark takes no sweep like {override.input_line}; use {hint}"
            )
