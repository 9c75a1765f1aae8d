"""`adx benchmark`'s sweeper: launches a benchmark's unfinished cells through Hydra's launcher.

A sweeper, not a loop of our own, so the cells run wherever the configured
launcher runs jobs (`hydra/launcher=joblib`, `submitit_slurm`, ...).
"""

from __future__ import annotations

from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class BenchmarkSweeper(Sweeper):
    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from anomaly_cli.benchmarking.runner import run_benchmark

        assert self.config is not None
        return run_benchmark(self.config, self.launcher, arguments)
