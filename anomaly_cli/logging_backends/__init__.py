"""Where a train run reports as it goes: `logger=tensorboard|csv|none|mlflow` (configs/logger/).

The run folder's own files (history.csv, metrics.json, plots/) are the record
of a run whatever the logger; a backend copies the same numbers to a place
made for watching and comparing runs. A backend never changes what is
trained or scored: its Keras callbacks come after the checkpointer and only
read. Nothing here imports TensorFlow or mlflow when it is imported.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from anomaly_cli.errors import AdxUserError

if TYPE_CHECKING:
    from anomaly_cli.logging_backends.base import Backend

LOGGERS = ("tensorboard", "csv", "none", "mlflow")
# The package each logger needs, and how to get it.
_NEEDS = {
    "tensorboard": ("tensorboard", "pip install tensorboard"),
    "mlflow": ("mlflow", "pip install 'anomaly-cli[mlflow]'"),
}


def check_logger(logger: DictConfig | None) -> None:
    """Refuse an unknown logger or one whose package is missing, before any data is read."""
    if logger is None:
        return  # a run configured before `logger` existed logs nothing extra
    name = logger.get("name")
    if name not in LOGGERS:
        raise AdxUserError(f"logger.name={name} is not a logger; choose logger={'|'.join(LOGGERS)}")
    if name in _NEEDS:
        package, install = _NEEDS[name]
        if not _installed(package):
            others = "|".join(n for n in LOGGERS if n != name)
            raise AdxUserError(
                f"logger={name} needs the {package} package, which is not installed: "
                f"{install}, or choose logger={others}"
            )
    if name == "mlflow":
        for key in ("tracking_uri", "experiment_name"):
            value = logger.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise AdxUserError(f"logger.{key}={value} must be a non-empty text or null")


def _installed(package: str) -> bool:
    """Whether `package` can be imported, without importing it."""
    return importlib.util.find_spec(package) is not None


@contextlib.contextmanager
def open_logger(cfg: DictConfig, run_dir: Path, resume: bool = False) -> Iterator[Backend]:
    """The run's backend for the `with` block of training and assessment.

    It is told how the block ended (finished, failed, or killed by Ctrl-C or
    SIGTERM), so a tracking server does not show a dead run as running.
    """
    backend = _backend(cfg, run_dir, resume)
    try:
        yield backend
    except KeyboardInterrupt:
        backend.close("KILLED")
        raise
    except BaseException:
        backend.close("FAILED")
        raise
    backend.close("FINISHED")


def _backend(cfg: DictConfig, run_dir: Path, resume: bool) -> Backend:
    name = cfg.logger.name if cfg.get("logger") is not None else "none"
    if name == "tensorboard":
        from anomaly_cli.logging_backends.tensorboard_backend import TensorBoardBackend

        return TensorBoardBackend(cfg, run_dir, resume)
    if name == "csv":
        from anomaly_cli.logging_backends.csv_backend import CsvBackend

        return CsvBackend(cfg, run_dir, resume)
    if name == "mlflow":
        from anomaly_cli.logging_backends.mlflow_backend import MlflowBackend

        return MlflowBackend(cfg, run_dir, resume)
    from anomaly_cli.logging_backends.base import Backend

    return Backend(cfg, run_dir, resume)
