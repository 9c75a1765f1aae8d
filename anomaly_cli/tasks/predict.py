"""`adx predict run=<dir> input=<path>`: score new, unlabelled data with a trained run.

The run's checkpoint, scoring settings, preprocessing or fitted transform and
threshold apply unchanged, so predict on a run's own test files gives the
scores in its scores.csv. The input is streamed in batches; files that cannot
be read are skipped, listed at the end and in unreadable.csv.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from anomaly_cli import runs
from anomaly_cli.config_dir import config_dir
from anomaly_cli.errors import AdxUserError
from anomaly_cli.tasks.common import current_run_dir, run_cli_task, save_config, task_overrides
from anomaly_cli.tasks.lifecycle import set_stage

if TYPE_CHECKING:  # pandas costs a third of a second: keep `adx predict --help` quick
    import pandas as pd

    from anomaly_cli.prediction.inputs import Reader
    from anomaly_cli.prediction.source import TrainedRun

log = logging.getLogger("adx")
# Unreadable inputs named in the closing warning; unreadable.csv lists them all.
_NAMED_UNREADABLE = 5
# Whether stderr is a terminal, read by `main` before the task starts: while it runs,
# descriptor 2 is a pipe that keeps TensorFlow's native lines off the terminal
# (native_logs.py), so the task itself would always see a pipe.
_progress_bar = False


def rewrite_overrides(args: Sequence[str]) -> list[str]:
    """`threshold=0.004` is short for `threshold.value=0.004`."""
    return [
        f"threshold.value={a.removeprefix('threshold=')}" if a.startswith("threshold=") else a
        for a in args
    ]


def predict(cfg: DictConfig, run_dir: Path | None = None) -> pd.DataFrame:
    """predictions.csv of `cfg.input` scored by `cfg.run`; returns its table."""
    import numpy as np

    from anomaly_cli.prediction.source import prepare

    started = time.monotonic()
    run_dir = Path(run_dir or current_run_dir())
    trained, given = prepare(cfg)
    batch_size = int(cfg.trainer.get("batch_size") or trained.cfg.trainer.batch_size)
    max_heatmaps = int(cfg.predict.max_heatmaps)

    from anomaly_cli.prediction import writer
    from anomaly_cli.prediction.inputs import open_reader

    set_stage("loading the checkpoint")
    model = _load_model(trained)
    reader = open_reader(trained, given)
    set_stage("scoring")
    scores = _score(model, trained, reader, batch_size)
    if not reader.ids:
        path, why = reader.unreadable[0] if reader.unreadable else (str(given.path), "empty")
        raise AdxUserError(
            f"input={given.path}: none of its {len(reader.unreadable)} input(s) could be read "
            f"(first: {path}: {why}); pass readable data"
        )
    frame = writer.predictions_frame(reader.id_name, reader.ids, scores, trained.threshold)
    unscored = int((~np.isfinite(scores.score)).sum())
    if unscored:
        log.warning(
            "%d input(s) got a score that is not a finite number (the model overflowed on "
            "them); they are labelled anomaly",
            unscored,
        )
    heatmaps = _heatmaps(model, trained, reader, frame, run_dir, batch_size, max_heatmaps)
    set_stage("writing predictions")
    save_config(_effective_config(cfg, trained, given.path), run_dir)
    writer.write_predictions(run_dir, frame)
    skipped = writer.write_unreadable(run_dir, reader.id_name, reader.unreadable)
    counts = frame["label"].value_counts()
    summary = {
        "scored": len(frame),
        writer.ANOMALY_LABEL: int(counts.get(writer.ANOMALY_LABEL, 0)),
        writer.NORMAL_LABEL: int(counts.get(writer.NORMAL_LABEL, 0)),
        "unreadable": skipped,
        "heatmaps": heatmaps,
    }
    runs.write_json(
        run_dir / runs.RUN_INFO,
        writer.run_record(
            source_run=str(trained.path),
            input=str(given.path.resolve()),
            kind=trained.kind,
            model=str(trained.cfg.model.name),
            dataset=str(trained.cfg.dataset.name),
            threshold={"value": trained.threshold, "from": trained.threshold_origin},
            batch_size=batch_size,
            counts=summary,
            wall_time_s=round(time.monotonic() - started, 3),
        ),
    )
    _report(trained, reader, summary, run_dir)
    return frame


def _load_model(trained: TrainedRun) -> Any:
    from anomaly_cli.models.loading import load_checkpoint

    remedy = "predict needs a run whose model loads; train the model again"
    model = load_checkpoint(trained.path / runs.CHECKPOINT, remedy=remedy)
    if tuple(model.sample_shape) != trained.input_shape:
        raise runs.DamagedFile(
            f"the checkpoint in {trained.path} takes samples of shape "
            f"{tuple(model.sample_shape)}, its data.json says {trained.input_shape}; {remedy}"
        )
    model.set_score(str(trained.cfg.model.score))
    return model


def _score(model: Any, trained: TrainedRun, reader: Reader, batch_size: int) -> Any:
    """Scores of every readable input, in reading order, as train and evaluate score."""
    from anomaly_cli.scoring.scorer import ScoringOptions, score_samples

    options = ScoringOptions.from_config(trained.cfg.get("scoring"))
    with _Progress(reader.total) as advance:
        return score_samples(model, reader.batches(batch_size, advance), options, batch_size)


class _Progress:
    """A tqdm bar on a terminal (stderr), nothing otherwise; yields the advance function."""

    def __init__(self, total: int | None):
        self.total = total
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not _progress_bar:
            return lambda n: None
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, unit="input", desc="adx predict", file=sys.stderr)
        return self.bar.update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _heatmaps(
    model: Any,
    trained: TrainedRun,
    reader: Reader,
    frame: pd.DataFrame,
    run_dir: Path,
    batch_size: int,
    limit: int,
) -> int:
    """Overlays of the `limit` highest-scored flagged images (models with per-pixel maps)."""
    import numpy as np

    from anomaly_cli.prediction import writer
    from anomaly_cli.prediction.source import IMAGES

    flagged = np.flatnonzero(frame["label"].to_numpy() == writer.ANOMALY_LABEL)
    if trained.kind != IMAGES or not limit or not len(flagged):
        return 0
    if not model.produces_maps:
        log.info("no heatmaps: %s gives no per-pixel maps", type(model).__name__)
        return 0
    set_stage("drawing heatmaps")
    chosen = flagged[np.argsort(-frame["score"].to_numpy()[flagged], kind="stable")[:limit]]
    source = reader.source
    position = {name: i for i, name in enumerate(source.names)}
    wanted = [position[reader.ids[row]] for row in chosen]
    batches = list(_maps(model, source.images(wanted, batch_size)))
    # One colour scale for every overlay of the run, so brighter means a larger error.
    vmax = max((float(maps.max(initial=0.0)) for _, _, maps in batches), default=None)
    paths = {}
    for indices, images, maps in batches:
        names = [source.names[i] for i in indices]
        written = writer.write_heatmaps(run_dir, names, images, maps, source.prep.value_range, vmax)
        paths.update(zip(names, written, strict=True))
    frame["heatmap"] = [paths.get(name, "") for name in frame[reader.id_name]]
    return len(paths)


def _maps(model: Any, batches: Iterator[tuple[list[int], Any]]) -> Iterator[tuple[Any, Any, Any]]:
    for indices, images in batches:
        yield indices, images, model.map_batch(images)


def _effective_config(cfg: DictConfig, trained: TrainedRun, input_path: Path) -> DictConfig:
    """This command's config with the run and input it used spelt out."""
    effective = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    effective.run = str(trained.path)
    effective.input = str(input_path.resolve())
    effective.threshold.value = trained.threshold
    effective.overrides = list(task_overrides())
    return effective


def _report(trained: TrainedRun, reader: Reader, summary: dict[str, int], run_dir: Path) -> None:
    if reader.unreadable:
        named = ", ".join(f"{p} ({why})" for p, why in reader.unreadable[:_NAMED_UNREADABLE])
        more = len(reader.unreadable) - _NAMED_UNREADABLE
        log.warning(
            "skipped %d unreadable input(s), listed in %s: %s%s",
            len(reader.unreadable),
            run_dir / runs.UNREADABLE,
            named,
            f" and {more} more" if more > 0 else "",
        )
    print(
        f"\nScored {summary['scored']} input(s) with {trained.path.name}: "
        f"{summary['anomaly']} anomaly, {summary['normal']} normal "
        f"(threshold {trained.threshold:.6g} from {trained.threshold_origin})"
    )
    if summary["heatmaps"]:
        print(f"Heatmaps of the {summary['heatmaps']} highest-scored anomalies in heatmaps/")
    print(f"Predictions: {run_dir / runs.PREDICTIONS}")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="predict")
def main(cfg: DictConfig) -> None:
    global _progress_bar
    _progress_bar = sys.stderr.isatty()
    run_cli_task(predict, cfg, "predict")
