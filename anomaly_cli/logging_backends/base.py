"""What every logging backend is handed: the epochs as they end, then the run's results.

`Backend` itself is `logger=none`: it logs nothing beyond the run's own files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from anomaly_cli import runs
from anomaly_cli.data.base import ANOMALY, NORMAL, Splits

# Sub-folders and files of a run that the backends write.
TB_DIR = "tb"
CSV_LOG = "logs/scalars.csv"
# The MLflow run a train run logs to, so `resume=` goes on logging to the same one.
MLFLOW_RUN = "mlflow.json"
CLASSES = {"normal": NORMAL, "anomaly": ANOMALY}


class Backend:
    """logger=none, and the hooks every other backend fills in."""

    def __init__(self, cfg: DictConfig, run_dir: Path, resume: bool) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.resume = resume

    def callbacks(self) -> list[Any]:
        """Keras callbacks for model.fit, after the checkpointer."""
        return []

    def finish(self, results: RunResults) -> None:
        """The end-of-run items, once every artifact of the run is written."""

    def close(self, status: str) -> None:
        """How the run ended: FINISHED, FAILED or KILLED."""


@dataclass(frozen=True)
class RunResults:
    """A finished run as the backends log it, read back from its own files."""

    # Epochs trained in all (resumes included): the step of the end-of-run items.
    epochs: int
    # The test metrics that are finite numbers, and the threshold.
    metrics: dict[str, float]
    threshold: float
    # The test split's scores.csv (id, label, score, ...).
    scores: pd.DataFrame
    # metrics.txt: the table train printed.
    table: str
    # (originals, reconstructions) of the first `n` test images of a class, or None
    # where the model reconstructs no images.
    reconstructions: Callable[[str, int], tuple[np.ndarray, np.ndarray] | None]
    # The low and high value of the images' pixels, for display.
    value_range: tuple[float, float] | None

    def class_scores(self) -> dict[str, np.ndarray]:
        labels = self.scores["label"].to_numpy()
        score = self.scores["score"].to_numpy(dtype=np.float64)
        return {name: score[labels == label] for name, label in CLASSES.items()}


def run_results(
    model: Any, splits: Splits, cfg: DictConfig, run_dir: Path, epochs: int
) -> RunResults:
    """What `finish` gets, from the files assessment wrote (not computed again)."""
    metrics = runs.read_json(run_dir / runs.METRICS_JSON)
    table = run_dir / runs.METRICS_TXT
    value_range = OmegaConf.select(cfg, "dataset.preprocess.value_range", default=None)
    return RunResults(
        epochs=epochs,
        metrics={k: float(v) for k, v in metrics.items() if _finite(v)},
        threshold=float(runs.read_json(run_dir / runs.THRESHOLD)["value"]),
        scores=pd.read_csv(run_dir / runs.SCORES),
        table=table.read_text(encoding="utf-8") if table.is_file() else "",
        reconstructions=lambda name, n: _reconstructions(model, splits, CLASSES[name], n),
        value_range=tuple(value_range) if value_range is not None else None,
    )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _reconstructions(
    model: Any, splits: Splits, label: int, count: int
) -> tuple[np.ndarray, np.ndarray] | None:
    from anomaly_cli.models.base import ReconstructionModel

    if count <= 0 or not isinstance(model, ReconstructionModel) or len(model.sample_shape) != 3:
        return None
    chosen = np.flatnonzero(splits.test.labels == label)[:count]
    if not len(chosen):
        return None
    batch = next(splits.test.select(chosen).dataset().batch(len(chosen)).as_numpy_iterator())
    return batch, model.reconstruct(batch)


def epoch_callback(record: Callable[[int, dict[str, float]], None]) -> Any:
    """A Keras callback handing each finished epoch (counted from 1, as in history.csv)
    to `record`, with its learning rate and seconds added to Keras' logs."""
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            values = {key: float(value) for key, value in (logs or {}).items()}
            rate = learning_rate(self.model)
            if rate is not None:
                values["learning_rate"] = rate
            values["epoch_seconds"] = time.perf_counter() - self.started
            record(epoch + 1, values)

    return EpochRecorder()


def learning_rate(model: Any) -> float | None:
    """The optimizer's current learning rate (a schedule's value at this step)."""
    import keras

    rate = getattr(getattr(model, "optimizer", None), "learning_rate", None)
    if rate is None:
        return None
    try:
        return float(keras.ops.convert_to_numpy(rate))
    except (TypeError, ValueError):  # a model with several optimizers has no single one
        return None
