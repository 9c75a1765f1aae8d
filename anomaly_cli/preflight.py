"""What `adx` checks before Hydra creates a folder: every job's config, and where it writes.

Hydra creates the run folder and writes `.hydra/` before the task starts, so
anything checked only inside the task leaves a folder behind (or, with
`hydra.run.dir=<an existing run>`, overwrites that run's snapshot). Here,
before any of that:

- every job of the command is composed and checked as its task would check
  it (`checks.py`), so a `--multirun` with one bad combination fails before
  the first job trains;
- the output folder must be creatable, and a folder that already holds a
  run is never written into, except by `adx train resume=` in its own folder;
- evaluate and sweep find their source run and check that its files are
  readable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anomaly_cli import runs
from anomaly_cli.errors import AdxUserError, first_lines


def preflight(verb: str, args: Sequence[str]) -> int:
    """Raise AdxUserError for the first problem; returns how many jobs the command runs."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from anomaly_cli.config_dir import config_dir
    from anomaly_cli.resolvers import names_only, register

    register()
    multirun = bool({"-m", "--multirun"}.intersection(args))
    overrides = [a for a in args if not a.startswith("-")]
    hydra_values = _hydra_values(overrides)
    plain = [o for o in overrides if not o.lstrip("+~").startswith("hydra.")]
    _check_debug(plain)
    jobs = _jobs(plain, verb) if multirun else [plain]
    cells: int | None = None
    with (
        names_only(),
        initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="adx"),
    ):
        for number, job in enumerate(jobs):
            where = f" (job {number}: {' '.join(job)})" if len(jobs) > 1 else ""
            try:
                cfg = compose(verb, overrides=job)
                cells = _check_job(verb, cfg, job)
                if number == 0:
                    creatable(Path(str(cfg.paths.output_dir)), "paths.output_dir")
            except AdxUserError as error:
                raise AdxUserError(f"{error}{where}") from error
            except (HydraException, OmegaConfBaseException) as error:
                raise AdxUserError(f"invalid override{where}: {first_lines(error, 2)}") from error
    _check_destination(verb, hydra_values, multirun)
    return cells if verb == "benchmark" and cells else len(jobs)


def _check_debug(overrides: list[str]) -> None:
    """debug=tiny sets its own data; another dataset would get its sizes as settings."""
    groups = {o.split("=", 1)[0].lstrip("+~"): o.split("=", 1)[-1] for o in overrides}
    dataset = groups.get("dataset")
    if groups.get("debug") == "tiny" and dataset not in (None, "synthetic"):
        raise AdxUserError(
            f"debug=tiny brings its own data (dataset=synthetic, 130 images), so dataset={dataset} "
            f"cannot apply; use debug=default to shrink a run on dataset={dataset}"
        )


def _jobs(overrides: list[str], verb: str = "train") -> list[list[str]]:
    """Each job's overrides, as Hydra's basic sweeper will launch them.

    Like the sweeper, this starts from the sweep a config declares itself
    (`hydra.sweeper.params`, e.g. in experiment=seed000_latent_dim) and lets
    the command line's overrides of the same keys win.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parsed = OverridesParser.create().parse_overrides(_declared_sweep(verb, overrides) + overrides)
    try:
        (batch,) = BasicSweeper.split_arguments(parsed, None)
    except HydraException:  # a sweep form only another sweeper knows: check the rest
        return [[o.input_line for o in parsed if not o.is_sweep_override()]]
    return batch


def _declared_sweep(verb: str, overrides: list[str]) -> list[str]:
    """`key=values` of the basic sweeper's `hydra.sweeper.params` in the composed config."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from anomaly_cli.config_dir import config_dir
    from anomaly_cli.resolvers import names_only

    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    try:
        with (
            names_only(),
            initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="adx"),
        ):
            hydra_cfg = compose(verb, overrides=fixed, return_hydra_config=True).hydra
    except (HydraException, OmegaConfBaseException):
        return []  # the job checks below report the bad override in one line
    if hydra_cfg.runtime.choices.get("hydra/sweeper") != "basic":
        return []  # another sweeper reads its own params
    params = OmegaConf.select(hydra_cfg, "sweeper.params", default=None)
    return [f"{key}={value}" for key, value in (params or {}).items()]


def _check_job(verb: str, cfg: Any, overrides: list[str]) -> int | None:
    """Raise AdxUserError for a job that cannot run; a benchmark says how many cells it has."""
    if verb == "train":
        from anomaly_cli.checks import check_train_config

        check_train_config(cfg)
    elif verb == "evaluate":
        from anomaly_cli.tasks.evaluate import prepare

        prepare(cfg, overrides)
    elif verb == "sweep":
        from anomaly_cli.evaluation.grid import parse_grid

        parse_grid(cfg.threshold.grid, int(cfg.threshold.steps))
        runs.find_run(cfg.run, cfg.paths.output_dir, needs=(runs.SCORES,))
    elif verb == "predict":
        from anomaly_cli.prediction.source import prepare as prepare_predict

        prepare_predict(cfg)
    elif verb == "compare":
        from anomaly_cli.tasks.compare import find_runs

        find_runs(cfg.runs)
    elif verb == "benchmark":
        from anomaly_cli.tasks.benchmark import check_benchmark

        return check_benchmark(cfg, overrides)
    elif verb == "tune":
        from anomaly_cli.tasks.tune import check_tune

        check_tune(cfg)


def _hydra_values(overrides: list[str]) -> dict[str, str]:
    """hydra.run.dir / hydra.sweep.dir as the user (or resume=) set them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    values = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.key_or_group in ("hydra.run.dir", "hydra.sweep.dir", "resume"):
            values[override.key_or_group] = str(override.value())
    return values


def _check_destination(verb: str, values: dict[str, str], multirun: bool) -> None:
    """A run never writes into a folder that holds another run (resume goes on in its own)."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    if key not in values:
        return  # adx names a new, unique folder itself
    folder = Path(values[key])
    creatable(folder, key)
    resuming = verb in ("train", "tune") and "resume" in values
    if resuming and folder.resolve() == Path(values["resume"]).resolve():
        return
    held = runs.holds_run(folder)
    if multirun and folder.is_dir():
        held += [f"{child.name}/" for child in folder.iterdir() if runs.holds_run(child)]
    if held:
        advice = (
            f", or go on with it: adx train resume={folder}"
            if (folder / runs.TRAINING_STATE).is_file()
            else ""
        )
        raise AdxUserError(
            f"{key}={folder} already holds a run ({', '.join(held[:4])}); adx never writes "
            f"into an existing run: pass a new folder{advice}"
        )


def creatable(path: Path, key: str) -> None:
    """Refuse a folder that cannot be made: a file in the way, or no write permission."""
    if path.exists() and not path.is_dir():
        raise AdxUserError(f"{key}={path} is a file, not a folder; choose another {key}")
    ancestor = path
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise AdxUserError(
            f"{key}={path} cannot be created: {ancestor} is a file, not a folder; "
            f"choose another {key}"
        )
    target = path if path.exists() else ancestor
    if not os.access(target, os.W_OK | os.X_OK):
        raise AdxUserError(
            f"{key}={path} cannot be written: no write permission in {target}; choose another {key}"
        )
