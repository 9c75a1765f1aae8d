"""What every verb's Hydra wrapper shares: run-dir lookup and error handling."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from anomaly_cli import resolvers, runs
from anomaly_cli.errors import USER_ERROR_EXIT_CODE, AdxUserError

# TensorFlow's C++ start-up chatter hides adx's own output; users can lower it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
resolvers.register()
log = logging.getLogger("adx")
INTERRUPTED_EXIT_CODE = 130  # the shell's code for a run stopped by Ctrl-C


def current_run_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def task_overrides() -> list[str]:
    """The overrides the user typed for this job (empty outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def run_cli_task(task: Callable[[DictConfig, Path], Any], cfg: DictConfig) -> Any:
    """Run a verb; a user error removes the half-made run dir and exits 2 with one line."""
    run_dir = current_run_dir()
    try:
        return task(cfg, run_dir)
    except AdxUserError as error:
        if not cfg.get("resume"):  # a resumed run's folder holds earlier work
            runs.remove_run_dir(run_dir)
        if os.environ.get("ADX_DEBUG") == "1":
            raise
        print(f"adx: error: {error}", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT_CODE)
    except KeyboardInterrupt:
        if (run_dir / runs.TRAINING_STATE).is_file():
            print(f"\nadx: interrupted; go on with: adx train resume={run_dir}", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT_CODE)
    finally:
        if "keras" in sys.modules:  # free graph memory between --multirun jobs
            sys.modules["keras"].backend.clear_session()


def save_config(cfg: DictConfig, run_dir: Path) -> None:
    """The run's effective config, resolved: what evaluate and sweep re-enter from."""
    runs.write_text(run_dir / runs.CONFIG, OmegaConf.to_yaml(cfg, resolve=True))
