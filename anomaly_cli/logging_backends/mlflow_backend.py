"""logger=mlflow: an MLflow run per adx train run (pip install 'anomaly-cli[mlflow]').

Params: the resolved config, flattened (`trainer.epochs`); metrics: each
epoch's losses, learning rate and seconds (step = epoch, from 1), then the
test metrics as `test_<name>` and the threshold; artifacts: metrics.json,
metrics.txt, threshold.json, config.yaml, history.csv, run.json, plots/ and
report.html where present. The tracking URI defaults to a local file store
shared by every run, <paths.output_dir>/mlruns.

The MLflow run's id is kept in <run>/mlflow.json, so `adx train resume=`
goes on logging to the same MLflow run (or, if it is gone, to a new one, and
says so). A store that cannot be reached at the start refuses the run before
training; a failure later only stops the logging, with a warning: the run's
own files are complete either way.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from anomaly_cli import runs
from anomaly_cli.errors import AdxUserError, first_lines
from anomaly_cli.logging_backends.base import MLFLOW_RUN, Backend, RunResults, epoch_callback

log = logging.getLogger("adx")
# MLflow's limits: params per request, and characters per param value.
_PARAMS_PER_CALL = 100
_PARAM_LENGTH = 6000
# MLflow retries an unreachable server for minutes by default; a typo in
# logger.tracking_uri should fail in seconds. Variables the user set win.
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
_ARTIFACTS = (
    runs.METRICS_JSON,
    runs.METRICS_TXT,
    runs.THRESHOLD,
    runs.CONFIG,
    runs.HISTORY,
    runs.RUN_INFO,
    runs.REPORT_HTML,
)


def tracking_uri(cfg: DictConfig) -> str:
    """logger.tracking_uri, or the file store <paths.output_dir>/mlruns."""
    uri = cfg.logger.get("tracking_uri")
    if uri:
        return str(uri)
    return (Path(str(cfg.paths.output_dir)).resolve() / "mlruns").as_uri()


class MlflowBackend(Backend):
    def __init__(self, cfg: DictConfig, run_dir: Path, resume: bool) -> None:
        super().__init__(cfg, run_dir, resume)
        from mlflow import MlflowClient

        self.uri = tracking_uri(cfg)
        if self.uri.startswith("file:"):
            # MLflow 3 keeps its file store only for those who ask for it; a
            # folder of plain files is what a run without a server wants.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        for name, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        self.broken = False
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            self.run_id = self._start(cfg, run_dir, resume)
        except Exception as error:  # any failure of the store: the run has not started
            raise AdxUserError(
                f"logger=mlflow cannot log to {self.uri} ({first_lines(error)[:200]}); "
                "fix logger.tracking_uri or choose logger=tensorboard|csv|none"
            ) from error

    def _start(self, cfg: DictConfig, run_dir: Path, resume: bool) -> str:
        saved = run_dir / MLFLOW_RUN
        if resume and saved.is_file():
            run_id = _existing_run(self.client, runs.read_json(saved), self.uri)
            if run_id is not None:
                self.client.update_run(run_id, status="RUNNING")
                self._log_params(cfg, run_id, resumed=True)
                return run_id
            log.warning("the MLflow run of %s is gone; logging to a new MLflow run", run_dir)
        name = str(cfg.logger.get("experiment_name") or "adx")
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id if experiment else self.client.create_experiment(name)
        )
        run = self.client.create_run(
            experiment_id, run_name=run_dir.name, tags={"adx.run_dir": str(run_dir.resolve())}
        )
        run_id = run.info.run_id
        runs.write_json(saved, {"tracking_uri": self.uri, "run_id": run_id})
        self._log_params(cfg, run_id, resumed=False)
        return run_id

    def _log_params(self, cfg: DictConfig, run_id: str, resumed: bool) -> None:
        """The config as params; a resume may change a few (trainer.epochs): those are tags."""
        from mlflow.entities import Param, RunTag

        params = flat_params(OmegaConf.to_container(cfg, resolve=True))
        params.pop("resume", None)
        tags = []
        if resumed:
            logged = self.client.get_run(run_id).data.params
            tags = [RunTag(f"resumed.{k}", v) for k, v in params.items() if logged.get(k, v) != v]
            params = {k: v for k, v in params.items() if k not in logged}
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), _PARAMS_PER_CALL):
            self.client.log_batch(run_id, params=items[start : start + _PARAMS_PER_CALL])
        if tags:
            self.client.log_batch(run_id, tags=tags)

    def callbacks(self) -> list[Any]:
        return [epoch_callback(lambda epoch, values: self._metrics(values, epoch))]

    def finish(self, results: RunResults) -> None:
        test = {f"test_{name}": value for name, value in results.metrics.items()}
        self._metrics({**test, "threshold": results.threshold}, results.epochs)
        for name in _ARTIFACTS:
            if (self.run_dir / name).is_file():
                self._safely(self.client.log_artifact, self.run_id, str(self.run_dir / name))
        if (self.run_dir / runs.PLOTS_DIR).is_dir():
            plots = str(self.run_dir / runs.PLOTS_DIR)
            self._safely(self.client.log_artifacts, self.run_id, plots, runs.PLOTS_DIR)

    def close(self, status: str) -> None:
        self._safely(self.client.set_terminated, self.run_id, status)

    def _metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(key, float(value), stamp, step) for key, value in values.items()]
        self._safely(self.client.log_batch, self.run_id, metrics=metrics)

    def _safely(self, call: Any, *args: Any, **kwargs: Any) -> None:
        """A tracking store that fails mid-run stops the logging, never the run."""
        if self.broken:
            return
        try:
            call(*args, **kwargs)
        except Exception as error:
            self.broken = True
            log.warning(
                "logging to MLflow (%s) stopped: %s; the run's own files are complete",
                self.uri,
                first_lines(error)[:200],
            )


def _existing_run(client: Any, saved: dict[str, Any], uri: str) -> str | None:
    run_id = saved.get("run_id")
    if not run_id or saved.get("tracking_uri") != uri:
        return None
    try:
        return client.get_run(run_id).info.run_id
    except Exception:  # deleted, or a store that never held it
        return None


def flat_params(config: Any, prefix: str = "") -> dict[str, str]:
    """{"trainer.epochs": "2", ...}: leaves by dotted key, lists as JSON, cut to MLflow's limit."""
    if isinstance(config, dict):
        flat: dict[str, str] = {}
        for key, value in config.items():
            flat.update(flat_params(value, f"{prefix}{key}."))
        return flat
    text = json.dumps(config) if isinstance(config, (list, tuple)) else str(config)
    return {prefix[:-1]: text[:_PARAM_LENGTH]}
