"""`adx benchmark`: a grid of `adx train` runs (models x normal classes x contamination x repeats).

The grid is read from `benchmark.*` and run by adx's benchmark sweeper
(hydra_plugins/adx_benchmark_sweeper) through whatever `hydra/launcher` the
command chose, so it always runs as a Hydra multirun; each cell is a plain
train run. The benchmark folder, results.csv and the tables are the
sweeper's (anomaly_cli.benchmarking.runner); docs/benchmark.md explains them.
"""

from __future__ import annotations

from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from anomaly_cli.config_dir import config_dir
from anomaly_cli.tasks.common import run_cli_task


def rewrite_overrides(args: Sequence[str]) -> list[str]:
    """A benchmark is always a multirun; Hydra's `a,b` sweeps are refused (use benchmark.*)."""
    from anomaly_cli.benchmarking.grid import refuse_sweeps

    # Overrides only: not flags, nor a flag's value (`--cfg job`).
    refuse_sweeps([a for a in args if not a.startswith("-") and "=" in a])
    # Hydra prints a config (--cfg, --info) only outside --multirun.
    printing = {"--cfg", "-c", "--info", "-i"}.intersection(a.split("=", 1)[0] for a in args)
    if printing or {"-m", "--multirun"}.intersection(args):
        return list(args)
    return ["--multirun", *args]


def check_benchmark(cfg: DictConfig, overrides: Sequence[str]) -> int:
    """Every model of the grid composes and passes train's checks; returns the number of cells.

    Runs inside preflight's Hydra context, before any folder is made.
    """
    from hydra import compose
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from anomaly_cli.benchmarking.grid import build_cells
    from anomaly_cli.checks import check_train_config
    from anomaly_cli.errors import AdxUserError, first_lines

    check_train_config(cfg)
    cells = build_cells(cfg, str(cfg.model.name))
    checked = set()
    for cell in cells:
        if cell.model in checked:
            continue
        checked.add(cell.model)
        if cell.model != cfg.model.name or cell.extra:
            others = [o for o in overrides if not o.startswith("model=")]
            own = cell.recipe(others)
            try:
                check_train_config(compose("benchmark", overrides=[*own, f"model={cell.model}"]))
            except (HydraException, OmegaConfBaseException) as error:
                raise AdxUserError(
                    f"benchmark.model_overrides.{cell.model}: {first_lines(error, 2)}"
                ) from error
    return len(cells)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="benchmark")
def main(cfg: DictConfig) -> None:
    from anomaly_cli.tasks.train import train

    run_cli_task(train, cfg, "train")
