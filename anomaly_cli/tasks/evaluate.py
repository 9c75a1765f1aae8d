"""`adx evaluate`: re-score a finished run's checkpoint on rebuilt data."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from anomaly_cli import runs
from anomaly_cli.checks import check_assessment_config
from anomaly_cli.config_dir import config_dir
from anomaly_cli.errors import AdxUserError, first_lines
from anomaly_cli.targets import plugin_list
from anomaly_cli.tasks.common import (
    current_run_dir,
    log,
    run_cli_task,
    save_config,
    task_overrides,
)
from anomaly_cli.tasks.lifecycle import set_stage
from anomaly_cli.vocabulary import upgrade_run_config

# Groups whose change would need a different checkpoint, not a re-evaluation.
_FIXED_BY_CHECKPOINT = ("model", "optimizer", "trainer")
# Keys of those groups that only change how the checkpoint is applied.
_CHANGEABLE_KEYS = ("model.score", "trainer.batch_size", "trainer.verbose", "trainer.deterministic")
# dataset.seed decides the data split: a new split could put training samples
# into the test set.
_FIXED_DATA_KEYS = ("dataset.seed",)


def rewrite_overrides(args: Sequence[str]) -> list[str]:
    """Compose with the source run's group choices (dataset=mvtec, model=dense_ae, ...).

    Without them, `dataset.root=...` would be checked against the default
    dataset's keys and refused. Only groups the user did not choose are
    carried, so the user's own group overrides still win; they go last, after
    any flag such as `-m` (Hydra's parser takes no overrides before a flag);
    `effective_config` ignores those that merely repeat the source run's choice.
    """
    source = _source_dir(args)
    choices = source_choices(source) if source is not None else {}
    given = {a.split("=", 1)[0].lstrip("+~") for a in args if "=" in a}
    carried = [f"{group}={choice}" for group, choice in choices.items() if group not in given]
    return [*args, *carried]


def _source_dir(args: Sequence[str]) -> Path | None:
    def value(key: str) -> str | None:
        found = [a.split("=", 1)[1] for a in args if a.startswith(f"{key}=")]
        return found[-1] if found else None

    run = value("run")
    output_dir = value("paths.output_dir") or os.environ.get("ADX_OUTPUT_DIR", "outputs")
    path = Path(run) if run else Path(output_dir) / "latest"
    return path if path.is_dir() else None


def source_choices(run: Path) -> dict[str, str]:
    """The config-group options a run was composed with, e.g. {"dataset": "mvtec"}."""
    hydra_file = run / ".hydra" / "hydra.yaml"
    try:
        choices = OmegaConf.load(hydra_file).hydra.runtime.choices
    except Exception:  # missing or damaged: the choices only widen what overrides may name
        return {}
    return {
        str(group): str(option)
        for group, option in choices.items()
        # debug= shrank the training; evaluate composes no such group.
        if option is not None and not str(group).startswith("hydra") and group != "debug"
    }


def effective_config(
    source_cfg: DictConfig,
    cfg: DictConfig,
    overrides: Sequence[str],
    source_groups: dict[str, str] | None = None,
) -> DictConfig:
    """The source run's config with this command's overrides applied on top.

    `cfg` is the evaluate composition, which already holds each override's
    value (a whole group node for `threshold=youden`, one value for
    `dataset.normal_class=3`); those values replace the source's. A group
    override equal to the source run's choice (`source_groups`) changes nothing.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    merged = OmegaConf.create(OmegaConf.to_container(source_cfg, resolve=True))
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if key == "run" or key.startswith("hydra") or override.is_delete():
            continue
        if (source_groups or {}).get(key) == str(override.value()):
            continue
        top = key.split(".")[0]
        fixed = top in _FIXED_BY_CHECKPOINT and key not in _CHANGEABLE_KEYS
        if fixed or key in _FIXED_DATA_KEYS:
            raise AdxUserError(
                f"evaluate re-scores the run's checkpoint, so '{override.input_line}' cannot "
                "apply; train a new run instead (evaluate accepts dataset.* but "
                f"{', '.join(_FIXED_DATA_KEYS)}, threshold=*, {', '.join(_CHANGEABLE_KEYS)})"
            )
        OmegaConf.update(merged, key, OmegaConf.select(cfg, key), merge=False, force_add=True)
    merged.paths = cfg.paths
    return merged


def prepare(cfg: DictConfig, overrides: Sequence[str]) -> tuple[Path, DictConfig]:
    """The source run and the config to evaluate it with, checked before any data is read.

    The source's config.yaml is input like the command line: its targets must
    name adx code or the plugins this command allows, never its own.
    """
    source = runs.find_run(cfg.run, cfg.paths.output_dir, needs=(runs.CONFIG, runs.CHECKPOINT))
    try:
        source_cfg = OmegaConf.load(source / runs.CONFIG)
    except Exception as error:  # OmegaConf raises YAML, Unicode and its own errors
        raise runs.DamagedFile(
            f"{source / runs.CONFIG} is damaged ({first_lines(error)[:120]}); "
            "it cannot be evaluated"
        ) from error
    if not isinstance(source_cfg, DictConfig) or not {"model", "dataset"} <= set(source_cfg):
        raise runs.DamagedFile(f"{source / runs.CONFIG} is not an adx run config")
    source_cfg = upgrade_run_config(source_cfg, source)
    try:
        merged = effective_config(source_cfg, cfg, overrides, source_choices(source))
    except OmegaConfBaseException as error:  # e.g. an interpolation that no longer resolves
        raise runs.DamagedFile(
            f"{source / runs.CONFIG} cannot be read ({first_lines(error)[:120]})"
        ) from error
    check_assessment_config(
        merged, plugin_list(cfg.get("plugins")), origin=f" (in {source / runs.CONFIG})"
    )
    runs.check_keras_archive(source / runs.CHECKPOINT, _retrain_hint(source))
    return source, merged


def _retrain_hint(source: Path) -> str:
    saved = source / ".hydra" / "overrides.yaml"
    where = f" (its overrides are in {saved})" if saved.is_file() else ""
    return f"this run cannot be evaluated; train the model again{where}"


def evaluate(
    cfg: DictConfig, run_dir: Path | None = None, overrides: Sequence[str] | None = None
) -> dict[str, Any]:
    run_dir = Path(run_dir or current_run_dir())
    overrides = task_overrides() if overrides is None else overrides
    source, merged = prepare(cfg, overrides)
    plugins = plugin_list(cfg.get("plugins"))

    from anomaly_cli.data.loader import data_report, load_splits
    from anomaly_cli.models.loading import load_checkpoint
    from anomaly_cli.tasks.assess import conclude_run
    from anomaly_cli.training.seeding import apply_seed

    set_stage("loading data")
    seed = int(merged.trainer.seed)
    transform_file = source / runs.DATA_TRANSFORM
    transform = (
        runs.read_json_object(transform_file, _retrain_hint(source))
        if transform_file.is_file()
        else None
    )
    splits = load_splits(merged.dataset, merged.get("protocol"), transform, plugins)
    set_stage("loading the checkpoint")
    apply_seed(seed, bool(merged.trainer.deterministic))
    model = load_checkpoint(source / runs.CHECKPOINT, remedy=_retrain_hint(source))
    if tuple(model.sample_shape) != tuple(splits.input_shape):
        raise AdxUserError(
            f"the checkpoint in {source} takes samples of shape {tuple(model.sample_shape)}, "
            f"the dataset now gives {tuple(splits.input_shape)}"
        )
    model.set_score(str(merged.model.score))
    save_config(merged, run_dir)
    runs.write_json(run_dir / runs.DATA_INFO, data_report(splits, merged.dataset))
    if transform is not None:
        runs.write_json(run_dir / runs.DATA_TRANSFORM, transform)
    _link_or_copy(source / runs.CHECKPOINT, run_dir / runs.CHECKPOINT)
    if (source / runs.HISTORY).is_file():  # how that checkpoint was trained: the loss plot
        _link_or_copy(source / runs.HISTORY, run_dir / runs.HISTORY)
    metrics = conclude_run(
        model,
        splits,
        merged,
        run_dir,
        subject=f"{merged.model.name} from {source.name}",
        run_info=lambda: {
            "verb": "evaluate",
            "source_run": str(source),
            "overrides": list(overrides),
            "model": merged.model.name,
            "dataset": merged.dataset.name,
            "seed": seed,
            "protocol": splits.protocol,
            "counts": splits.counts(),
        },
    )
    log.info("evaluated %s", source)
    return metrics


def _link_or_copy(source: Path, target: Path) -> None:
    """The evaluate run keeps its checkpoint, so it can be evaluated again later."""
    with runs.atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_cli_task(evaluate, cfg, "evaluate")
