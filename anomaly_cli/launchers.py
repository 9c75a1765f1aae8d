"""`hydra/launcher=...`: which launchers a command may name, checked before Hydra runs.

The parallel and cluster launchers are Hydra plugins that adx installs only
with its `launchers` extra. Without them Hydra fails late, in several lines,
with "Could not find 'hydra/launcher/joblib'"; here the command stops first
with one line naming the extra. adx's own launcher configs
(configs/hydra/launcher/: slurm.yaml and a user's slurm_local.yaml copy)
extend a plugin's config, so they need that plugin too.

Under those launchers a job runs in a process of its own; `adx` marks itself
(`mark_main_process`) so that a job can tell (`in_launcher_process`). Nothing
here imports TensorFlow.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

from anomaly_cli.config_dir import config_dir
from anomaly_cli.errors import AdxUserError

EXTRA = 'pip install "anomaly-cli[launchers]"'
# A plugin's launcher configs -> (its module, what the error calls it).
PLUGINS: dict[str, tuple[str, str]] = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "Hydra's joblib launcher"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "Hydra's submitit launcher"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "Hydra's submitit launcher"),
}
BUILT_IN = "basic"
# Set by `adx` to <host>:<pid> of itself; a job sees whether it runs elsewhere.
MAIN_PROCESS = "ADX_MAIN_PROCESS"
# joblib settings that run the jobs as threads of one process, where they would
# share Hydra's current job, adx's run state and TensorFlow's session.
_THREAD_BACKENDS = {"backend": {"threading"}, "prefer": {"threads"}, "require": {"sharedmem"}}


def check_launcher(overrides: Sequence[str]) -> None:
    """Raise AdxUserError when the chosen hydra/launcher is unknown or its plugin is missing."""
    values = _overrides(overrides)
    choice = values.get("hydra/launcher")
    if choice is not None:
        plugin = plugin_of(choice)
        if plugin is not None:
            module, name = PLUGINS[plugin]
            if not installed(module):
                raise AdxUserError(f"hydra/launcher={choice} needs {name}: {EXTRA}")
            if plugin == "submitit_slurm" and not on_slurm():
                raise AdxUserError(
                    f"hydra/launcher={choice} submits jobs with SLURM's sbatch and srun, which "
                    "are not on PATH here; run the command on the cluster's login node (try "
                    "the sweep on this machine with hydra/launcher=submitit_local)"
                )
    for key, refused in _THREAD_BACKENDS.items():
        value = values.get(f"hydra.launcher.{key}")
        if value in refused:
            raise AdxUserError(
                f"hydra.launcher.{key}={value} would run the jobs as threads of one process, "
                "which share adx's and TensorFlow's state; leave it unset (one process per job)"
            )


def mark_main_process() -> None:
    """Note this process as the `adx` the user started; jobs inherit the note with the env."""
    os.environ[MAIN_PROCESS] = _this_process()


def in_launcher_process() -> bool:
    """Whether this job runs in a process a launcher started for it (joblib, submitit, SLURM).

    There a job that is interrupted or stopped by a scheduler must return, not exit:
    an exit is no result, and the launcher in `adx` would fail the whole sweep on it.
    """
    main = os.environ.get(MAIN_PROCESS)
    return main is not None and main != _this_process()


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def plugin_of(choice: str) -> str | None:
    """The plugin launcher config `choice` is or extends; None for Hydra's basic launcher.

    Raises AdxUserError for a name that is neither a plugin's nor one of adx's configs.
    """
    if choice in PLUGINS:
        return choice
    own = own_launchers()
    if choice in own:
        return _extended(own[choice])
    if choice == BUILT_IN:
        return None
    names = [BUILT_IN, *PLUGINS, *sorted(own)]
    raise AdxUserError(f"unknown hydra/launcher '{choice}'; choose one of: {', '.join(names)}")


def own_launchers() -> dict[str, Path]:
    """adx's launcher configs (configs/hydra/launcher/*.yaml), by name."""
    folder = config_dir() / "hydra" / "launcher"
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def installed(module: str) -> bool:
    """Whether a plugin's module can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing too
        return False


def on_slurm() -> bool:
    """Whether SLURM's commands are here (submitit needs both, and fails late without)."""
    return all(shutil.which(command) for command in ("sbatch", "srun"))


def _extended(path: Path) -> str | None:
    """The plugin config a launcher file names in its defaults list (`- submitit_slurm`)."""
    import yaml

    try:
        defaults = (yaml.safe_load(path.read_text()) or {}).get("defaults") or []
    except (OSError, yaml.YAMLError) as error:
        raise AdxUserError(f"cannot read launcher config {path}: {error}") from error
    for entry in defaults:
        name = entry if isinstance(entry, str) else None
        if isinstance(entry, dict) and len(entry) == 1:
            name = str(next(iter(entry.values())))
        if name in PLUGINS:
            return name
    return None


def _overrides(overrides: Sequence[str]) -> dict[str, str]:
    """The last value given to each key (`hydra/launcher=joblib`, `hydra.launcher.n_jobs=2`)."""
    values = {}
    for text in overrides:
        key, sep, value = text.partition("=")
        if sep:
            values[key.lstrip("+~").removeprefix("override ").strip()] = value.strip().strip("'\"")
    return values
