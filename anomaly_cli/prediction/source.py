"""The trained run `adx predict` applies, and the input it is given, checked before any scoring.

Everything here reads only small files (config.yaml, data.json, threshold.json,
a table's header) and imports no TensorFlow, so `adx` runs it before Hydra
creates the predict folder: a wrong input costs one line and leaves nothing
on disk. The task runs it again on the config it got, for in-process callers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from anomaly_cli import runs
from anomaly_cli.checks import is_integer, is_number
from anomaly_cli.data.images import IMAGE_SUFFIXES
from anomaly_cli.data.inputs import shown
from anomaly_cli.data.preprocess import CHANNELS, ImagePreprocess
from anomaly_cli.errors import AdxUserError, first_lines

IMAGES, TABLE, SERIES = "images", "table", "series"
TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# Sources whose runs take a table or a series; every other source with samples
# of shape (h, w, c) takes images.
_KIND_BY_TARGET = {
    "anomaly_cli.data.tabular.load": TABLE,
    "anomaly_cli.data.timeseries.load": SERIES,
}
_WHAT = {
    IMAGES: "an image file or a folder of images",
    TABLE: "a .csv or .parquet table",
    SERIES: "a series .csv file",
}


@dataclass(frozen=True)
class TrainedRun:
    """What predict needs from a finished train or evaluate run."""

    path: Path
    cfg: DictConfig  # its config.yaml, in today's names
    kind: str  # IMAGES, TABLE or SERIES
    input_shape: tuple[int, ...]
    threshold: float
    # Where the threshold came from, for run.json and the closing line.
    threshold_origin: str
    # data_transform.json (tabular scaler, series z-score), when the run has one.
    transform: dict[str, Any] | None

    @property
    def label(self) -> str:
        return f"run={self.path}"

    def image_preprocess(self) -> ImagePreprocess:
        """The run's own image preprocessing; the built-in array sources (digits,
        synthetic) only record a size, so channels come from the input shape and
        values go to [0, 1], the range those sources generate."""
        height, width, channels = self.input_shape
        given = OmegaConf.to_container(self.cfg.dataset.get("preprocess") or {}, resolve=True)
        names = {count: name for name, count in CHANNELS.items()}
        defaults = {"image_size": height, "crop": "center", "channels": names.get(channels)}
        prep = ImagePreprocess.from_config({**defaults, **dict(given)})
        if prep.shape != (height, width, channels):
            raise AdxUserError(
                f"{self.label} takes images of shape {self.input_shape}, but its "
                f"dataset.preprocess gives {prep.shape}; predict cannot rebuild its inputs"
            )
        return prep


@dataclass(frozen=True)
class PredictInput:
    path: Path
    # Feature or value columns a table or series must hold (empty for images).
    columns: tuple[str, ...] = ()


def prepare(cfg: DictConfig) -> tuple[TrainedRun, PredictInput]:
    """The source run and the input, or AdxUserError naming what is wrong and the fix."""
    check_settings(cfg)
    trained = open_run(cfg)
    return trained, check_input(trained, cfg.get("input"))


def check_settings(cfg: DictConfig) -> None:
    """predict's own settings: the batch size (null: the run's) and the heatmap cap."""
    batch_size = OmegaConf.select(cfg, "trainer.batch_size")
    if batch_size is not None and (not is_integer(batch_size) or batch_size < 1):
        raise AdxUserError(
            f"trainer.batch_size={batch_size} must be a whole number of at least 1, "
            "or null for the run's own"
        )
    cap = OmegaConf.select(cfg, "predict.max_heatmaps")
    if not is_integer(cap) or cap < 0:
        raise AdxUserError(f"predict.max_heatmaps={cap} must be a whole number, 0 for none")


def open_run(cfg: DictConfig) -> TrainedRun:
    from anomaly_cli.vocabulary import upgrade_run_config

    needs = (runs.CONFIG, runs.CHECKPOINT, runs.DATA_INFO)
    source = runs.find_run(cfg.run, cfg.paths.output_dir, needs=needs)
    remedy = "predict needs a finished train or evaluate run"
    try:
        run_cfg = OmegaConf.load(source / runs.CONFIG)
    except Exception as error:  # OmegaConf raises YAML, Unicode and its own errors
        raise runs.DamagedFile(
            f"{source / runs.CONFIG} is damaged ({first_lines(error)[:120]}); {remedy}"
        ) from error
    if not isinstance(run_cfg, DictConfig) or not {"model", "dataset"} <= set(run_cfg):
        raise runs.DamagedFile(f"{source / runs.CONFIG} is not an adx run config; {remedy}")
    run_cfg = upgrade_run_config(run_cfg, source)
    data = runs.read_json_object(source / runs.DATA_INFO, remedy)
    shape = data.get("input_shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n > 0 for n in shape):
        raise runs.DamagedFile(f"{source / runs.DATA_INFO} has no valid input_shape; {remedy}")
    kind = _KIND_BY_TARGET.get(str(run_cfg.dataset.get("_target_")))
    if kind is None and len(shape) == 3:
        kind = IMAGES
    if kind is None:
        raise AdxUserError(
            f"run={source} was trained on dataset={run_cfg.dataset.get('name')} with samples "
            f"of shape {tuple(shape)}; predict scores image runs, dataset=tabular and "
            "dataset=timeseries runs"
        )
    value, origin = _threshold(cfg, source, remedy)
    transform_file = source / runs.DATA_TRANSFORM
    transform = runs.read_json_object(transform_file, remedy) if transform_file.is_file() else None
    if kind != IMAGES and transform is None:
        raise runs.DamagedFile(f"{transform_file} is missing; {remedy}")
    return TrainedRun(source, run_cfg, kind, tuple(shape), value, origin, transform)


def _threshold(cfg: DictConfig, source: Path, remedy: str) -> tuple[float, str]:
    """threshold.value from the command line, else the run's threshold.json."""
    given = OmegaConf.select(cfg, "threshold.value")
    if given is not None:
        if not is_number(given) or not math.isfinite(float(given)):
            raise AdxUserError(f"threshold.value={given} must be a finite number, e.g. 0.004")
        return float(given), "threshold.value"
    record = runs.read_json_object(source / runs.THRESHOLD, f"{remedy}, or pass threshold=<x>")
    value = record.get("value")
    if not is_number(value) or not math.isfinite(float(value)):
        raise runs.DamagedFile(
            f"{source / runs.THRESHOLD} holds no finite threshold value; pass threshold=<x>"
        )
    return float(value), f"{runs.THRESHOLD} ({record.get('strategy', 'fitted')})"


def check_input(trained: TrainedRun, value: Any) -> PredictInput:
    """The input exists and is of the kind the run takes (and, for tables, has its columns)."""
    what = _WHAT[trained.kind]
    fix = f"pass input=<{what}>; {trained.label} was trained on {_trained_on(trained)}"
    if value is None or not str(value).strip():
        raise AdxUserError(f"input is not set; {fix}")
    path = Path(str(value)).expanduser()
    if not path.exists():
        raise AdxUserError(f"input={value} does not exist; {fix}")
    if trained.kind == IMAGES:
        if path.is_dir():
            if not _holds_an_image(path):
                raise AdxUserError(
                    f"input={value} holds no images ({', '.join(IMAGE_SUFFIXES)}) in it or "
                    f"its sub-folders; {fix}"
                )
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            suffixes = ", ".join(IMAGE_SUFFIXES)
            raise AdxUserError(f"input={value} is not an image ({suffixes}); {fix}")
        return PredictInput(path)
    if path.is_dir():
        raise AdxUserError(f"input={value} is a folder; {fix}")
    suffixes = TABLE_SUFFIXES if trained.kind == TABLE else {".csv": "csv"}
    if path.suffix.lower() not in suffixes:
        raise AdxUserError(f"input={value} is not {what}; {fix}")
    wanted = _wanted_columns(trained)
    present = table_columns(path)
    absent = [c for c in wanted if c not in present]
    if absent:
        raise AdxUserError(
            f"input={value} lacks column(s) {shown(absent)} that {trained.label} was trained "
            f"on; columns present: {shown(present)}"
        )
    return PredictInput(path, tuple(wanted))


def _trained_on(trained: TrainedRun) -> str:
    if trained.kind == IMAGES:
        return f"images of shape {trained.input_shape} (dataset={trained.cfg.dataset.name})"
    return "a table (dataset=tabular)" if trained.kind == TABLE else "a series (dataset=timeseries)"


def _holds_an_image(folder: Path) -> bool:
    """Whether any image lies in `folder` or below; stops at the first (a folder may hold 100k)."""
    return any(
        p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not hidden(p, folder)
        for p in folder.rglob("*")
    )


def hidden(path: Path, folder: Path) -> bool:
    """A file in a hidden folder below `folder` (.git, .ipynb_checkpoints) or hidden itself:
    not the user's data, so predict leaves it out."""
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def _wanted_columns(trained: TrainedRun) -> list[str]:
    """The columns the run's fitted transform reads: tabular features or series values."""
    state = trained.transform or {}
    if trained.kind == TABLE:
        categories = state.get("categories") or {}
        return [*map(str, state.get("numeric_columns") or []), *map(str, categories)]
    return [str(c) for c in state.get("columns") or []]


def table_columns(path: Path) -> list[str]:
    """A table's column names, from its header or parquet schema (no rows read)."""
    import pandas as pd

    try:
        if TABLE_SUFFIXES.get(path.suffix.lower()) == "parquet":
            import pyarrow.parquet as pq

            return [str(c) for c in pq.read_schema(path).names]
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except Exception as error:  # pandas and pyarrow raise many kinds for unreadable files
        raise AdxUserError(
            f"input={path} cannot be read as a table ({first_lines(error)[:160]}); "
            "pass a .csv or .parquet file"
        ) from error
