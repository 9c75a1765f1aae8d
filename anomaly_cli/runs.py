"""Run-directory layout and atomic artifact I/O.

Every artifact is written to a temporary file in the same folder and renamed
into place, so a killed run leaves either the old file or the new one, never
half of one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from anomaly_cli.errors import AdxUserError, first_lines
from anomaly_cli.resolvers import LATEST

# File names inside a run directory, in one place so verbs agree on them.
CONFIG = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT = f"{CHECKPOINT_DIR}/best.keras"
# Latest epoch's model and optimizer (last-NNNN.keras) and the state naming it.
TRAINING_STATE = f"{CHECKPOINT_DIR}/state.json"
# trainer=stable: attempt k trains in attempts/<k>/, a run folder of its own kind.
ATTEMPTS_DIR = "attempts"
HISTORY = "history.csv"
SCORES = "scores.csv"
ROC = "roc.csv"
PR = "pr.csv"
THRESHOLD = "threshold.json"
METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
METRICS_TXT = "metrics.txt"
# Pixel AUROC / AUPR against ground-truth masks, when the test split has them.
PIXEL_METRICS = "pixel_metrics.json"
RUN_INFO = "run.json"
# What the data was: source, protocol, counts per split and class, skipped files.
DATA_INFO = "data.json"
# State fitted on train (scaler, PCA, z-score) that evaluate reapplies.
DATA_TRANSFORM = "data_transform.json"
PLOTS_DIR = "plots"
ROC_PLOT = f"{PLOTS_DIR}/roc.png"
HIST_PLOT = f"{PLOTS_DIR}/score_hist.png"
# Every train, evaluate and compare folder: one page with the config, metrics and plots.
REPORT_HTML = "report.html"
# adx predict: one row per input (path or row id, score, label), the files it
# could not read, and a heatmap overlay per flagged image.
PREDICTIONS = "predictions.csv"
UNREADABLE = "unreadable.csv"
HEATMAP_DIR = "heatmaps"
# adx compare: one column per run, metrics as rows.
COMPARE_TXT = "compare.txt"
COMPARE_CSV = "compare.csv"
COMPARE_MD = "compare.md"
# ... and in long format for pandas: one row per run and metric (with status and error).
COMPARE_LONG_CSV = "compare_long.csv"
TRAIN_TIME_PLOT = f"{PLOTS_DIR}/train_time.png"
# A --multirun's sweep folder: compare's table of its jobs, written when the sweep
# ends, listing the jobs that failed or never started (reporting/summary.py).
SUMMARY_TXT = "summary.txt"
SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
SUMMARY_LONG_CSV = "summary_long.csv"
# Hydra's record of a sweep (its overrides, hence its job list), in the sweep folder.
MULTIRUN_YAML = "multirun.yaml"
SWEEP_TXT = "sweep.txt"
SWEEP_CSV = "sweep.csv"
# Where the run stands (running, finished, interrupted, failed) and what to do next.
STATUS = "status.json"
# Warnings raised during the run, also repeated at its end.
WARNINGS = "warnings.json"
LOG = "adx.log"
# Files whose presence means a folder already holds an adx run, which no new run
# may write into (only `resume=` goes on in its own folder).
RUN_MARKERS = (".hydra", CONFIG, CHECKPOINT_DIR, SCORES, RUN_INFO, STATUS, SWEEP_TXT)
# The atomic writer's temporary files: `.<stem>.<random><suffix>`.
_TEMP_PREFIX = "."


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success.

    The temporary name keeps the suffix, since some writers (Keras, matplotlib)
    choose the format from it.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f"{_TEMP_PREFIX}{target.stem}.", suffix=target.suffix, dir=target.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); artifacts get the mode any
        # other file the user creates would get, as their umask says.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as error:
        if error.filename == tmp:  # name the artifact, not its temporary
            raise OSError(error.errno, error.strerror, str(target)) from error
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@functools.cache
def _umask() -> int:
    # The only way to read the umask is to set it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale_temporaries(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete what a killed atomic write left behind (`.best.x1y2.keras`); returns them.

    Only call this on a folder no other adx process is writing to.
    """
    stale = [
        p
        for p in Path(run_dir).rglob(f"{_TEMP_PREFIX}*.*")
        if p.is_file() and not p.is_relative_to(Path(run_dir) / ".hydra") and _is_temporary(p)
    ]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return stale


def _is_temporary(path: Path) -> bool:
    """`.{stem}.{8 random chars}{suffix}`: mkstemp's random part sits between two dots."""
    parts = path.name[len(_TEMP_PREFIX) :].split(".")
    return len(parts) >= 2 and len(parts[1]) == 8


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | os.PathLike[str], frame: Any) -> None:
    """Write a pandas DataFrame without its index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def update_latest(run_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str]) -> bool:
    """Point `<output_dir>/latest` at `run_dir` (a relative link, swapped atomically).

    A run folder may live anywhere (hydra.run.dir=runs/x), so output_dir is
    created when missing. The link is a convenience: when it cannot be made
    (read-only or foreign output_dir) the run is still complete, so this
    logs a warning and returns False instead of failing the run.
    """
    out = Path(output_dir)
    link = out / LATEST
    tmp = out / f".{LATEST}.{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(Path(run_dir).resolve(), out.resolve())
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except OSError as error:
        logging.getLogger("adx").warning(
            "could not point %s at %s (%s); pass run=%s to evaluate or sweep it",
            link,
            run_dir,
            error.strerror or error,
            run_dir,
        )
        return False
    return True


def remove_run_dir(run_dir: str | os.PathLike[str]) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)


def holds_run(folder: str | os.PathLike[str]) -> list[str]:
    """The adx run files in `folder` (empty when it holds no run)."""
    path = Path(folder)
    return [name for name in RUN_MARKERS if (path / name).exists()] if path.is_dir() else []


class DamagedFile(AdxUserError):
    """A run's file exists but cannot be read; the message says what still can be done."""


def check_keras_archive(path: Path, remedy: str, checksums: bool = False) -> None:
    """Refuse a .keras file that is missing, truncated or not a Keras archive.

    Keras itself answers a truncated file with "File not found", which sends
    the user looking for a file that is right there. A truncated zip has no
    central directory, so opening it is enough; `checksums` also reads every
    member (a second pass over a checkpoint that can be 600 MB), for callers
    that must not start at all on a damaged file.
    """
    if not path.is_file():
        raise DamagedFile(f"{path} is missing; {remedy}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            broken = archive.testzip() if checksums else None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise DamagedFile(f"{path} is damaged ({first_lines(error)[:120]}); {remedy}") from error
    if broken is not None:
        raise DamagedFile(f"{path} is damaged ({broken} fails its checksum); {remedy}")
    if not {"config.json", "model.weights.h5"} <= names:
        raise DamagedFile(f"{path} is not a Keras model archive (no config or weights); {remedy}")


def read_json_object(path: Path, remedy: str) -> dict[str, Any]:
    """A JSON object from a run file, or DamagedFile naming it."""
    try:
        data = read_json(path)
    except FileNotFoundError as error:
        raise DamagedFile(f"{path} is missing; {remedy}") from error
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as error:
        raise DamagedFile(f"{path} is damaged ({first_lines(error)[:120]}); {remedy}") from error
    if not isinstance(data, dict):
        raise DamagedFile(f"{path} is damaged (not a JSON object); {remedy}")
    return data


def optional_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from a run file, or {} when it is absent or unreadable: for
    summaries (report.html, compare) that show less rather than fail."""
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def find_run(run: str | None, output_dir: str, needs: tuple[str, ...]) -> Path:
    """The run directory a verb re-enters, checked to hold the files it needs."""
    path = Path(run) if run else Path(output_dir) / LATEST
    label = f"run={run}" if run else f"the latest run ({path})"
    if not path.is_dir():
        hint = "pass run=<dir> of a finished run" if run else "train a model first or pass run="
        raise AdxUserError(f"{label} is not a run directory; {hint}")
    for name in needs:
        if not (path / name).is_file():
            raise AdxUserError(
                f"{label} has no {name}; pass run=<dir> of a finished train or evaluate run"
            )
    return path.resolve()


def written_by(run_dir: Path) -> str:
    """The adx version that wrote a run folder, from its run.json."""
    try:
        info = json.loads((run_dir / RUN_INFO).read_text(encoding="utf-8"))
        return str(info["versions"]["adx"])
    except Exception:  # no run.json (interrupted), or one from before versions were kept
        return "0.1.0"  # the only release before run folders named their version
