"""A sweep's summary: compare's table of its jobs, plus the jobs that did not finish.

`adx train -m ...` writes one job folder per combination under one sweep
folder. The summary reads that folder, not the process that ran it, so it is
the same whether the jobs ran here, in joblib workers or on a cluster, and
whether it is written when the sweep ends (tasks/sweep_summary.py) or rebuilt
later by `adx compare runs=<sweep folder>` from a sweep that was interrupted:

- the job list comes from Hydra's `multirun.yaml` (the sweep's overrides,
  expanded as the basic sweeper expands them) and each job folder is matched
  to its job by its `.hydra/overrides.yaml`;
- a job with `metrics.json` is a column of compare's table (the issue: compare's
  table is the summary's table); any other is listed with its status and the
  error its `status.json` holds, and a listed job without a folder never started;
- a job whose config has `reported.values[<its column>]` gets a
  `<column> (reported)` column beside its own: the source document's numbers.

Nothing here imports pandas or matplotlib before it is used.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomaly_cli import runs
from anomaly_cli.tasks.lifecycle import DIVERGED, ENDED_WITH_RESULTS, FINISHED

if TYPE_CHECKING:
    import pandas as pd

    from anomaly_cli.reporting.compare import RunSummary

NOT_STARTED = "not started"
REPORTED = "reported"
# summary_long.csv's (and compare_long.csv's) columns.
LONG_COLUMNS = ("job", "name", "folder", "status", "metric", "value", "reported", "error")
_SUFFIX = f" ({REPORTED})"


@dataclass(frozen=True)
class Job:
    """One job of a sweep (or one run given to compare), finished or not."""

    number: int | None  # Hydra's job number; None for a folder the job list does not name
    overrides: tuple[str, ...]
    folder: Path | None  # None: the job never started
    # finished, diverged (has results too), failed, interrupted, running, killed, unknown,
    # not started
    status: str
    error: str = ""
    verb: str = ""  # train or evaluate, from status.json


@dataclass(frozen=True)
class Files:
    """Where a summary goes: the sweep's summary.* or compare's compare.*."""

    txt: str
    csv: str
    md: str
    long: str


SUMMARY_FILES = Files(runs.SUMMARY_TXT, runs.SUMMARY_CSV, runs.SUMMARY_MD, runs.SUMMARY_LONG_CSV)
COMPARE_FILES = Files(runs.COMPARE_TXT, runs.COMPARE_CSV, runs.COMPARE_MD, runs.COMPARE_LONG_CSV)


@dataclass
class Summary:
    """Everything the files say; `text` is what is printed."""

    title: str
    notes: list[str]  # what a reader must not miss: different data, jobs that did not finish
    lines: list[str]  # which folder each column is
    frame: pd.DataFrame  # summary.csv: metrics as rows, a column per finished job
    long: pd.DataFrame  # summary_long.csv: a row per job and metric
    grid: str
    pipe: str
    runs: list[RunSummary] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join([self.title, *self.notes, *self.lines, self.grid]) + "\n"

    @property
    def markdown(self) -> str:
        listed = [f"- {n}" for n in [*self.notes, *self.lines]]
        return "\n".join([f"# {self.title}", "", *listed, "", self.pipe]) + "\n"


def is_sweep(folder: Path) -> bool:
    """A folder Hydra's --multirun wrote (it holds multirun.yaml)."""
    return (folder / runs.MULTIRUN_YAML).is_file()


def job_order(paths: Iterable[Path]) -> list[Path]:
    """Hydra's job folders 0_..., 1_..., 10_... in job order, not text order."""
    return sorted(
        paths, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]
    )


def sweep_jobs(folder: Path) -> list[Job]:
    """Every job of the sweep in `folder`, in job order, with where it stands."""
    expected = _expected_jobs(folder)
    folders = [p for p in job_order(folder.iterdir()) if p.is_dir() and runs.holds_run(p)]
    unused = list(enumerate(expected or []))
    jobs: list[Job] = []
    for path in folders:
        overrides = tuple(read_overrides(path))
        match = next((i for i, (_, e) in enumerate(unused) if tuple(e) == overrides), None)
        number = unused.pop(match)[0] if match is not None else None
        jobs.append(read_job(number, overrides, path))
    jobs += [Job(n, tuple(o), None, NOT_STARTED) for n, o in unused]
    numbered = sorted((j for j in jobs if j.number is not None), key=lambda j: j.number or 0)
    return numbered + [j for j in jobs if j.number is None]


def _expected_jobs(folder: Path) -> list[list[str]] | None:
    """Each job's overrides as Hydra's basic sweeper launched them; None when unknown.

    The sweeper saved its config (`hydra.sweeper.params` and the command's
    overrides) in multirun.yaml; its own expansion of those, batch after
    batch, numbers the jobs.
    """
    import yaml
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        saved = yaml.safe_load((folder / runs.MULTIRUN_YAML).read_text(encoding="utf-8"))
        hydra = saved["hydra"]
        task = [str(o) for o in hydra["overrides"]["task"]]
        sweeper = hydra.get("sweeper") or {}
    except Exception:  # no or a damaged multirun.yaml: the folders are all there is
        return None
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None  # another sweeper chooses its jobs as it goes: no list to compare with
    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    try:
        parsed = OverridesParser.create().parse_overrides([*params, *task])
        batches = BasicSweeper.split_arguments(parsed, sweeper.get("max_batch_size"))
    except Exception:
        return None
    return [list(job) for batch in batches for job in batch]


def read_overrides(path: Path) -> list[str]:
    """A job folder's overrides (`.hydra/overrides.yaml`); [] when it has none."""
    import yaml

    try:
        listed = yaml.safe_load((path / ".hydra" / "overrides.yaml").read_text(encoding="utf-8"))
    except Exception:
        return []
    return [str(o) for o in listed] if isinstance(listed, list) else []


def read_job(number: int | None, overrides: tuple[str, ...], path: Path) -> Job:
    """A job's folder and where it stands: finished (metrics.json) or why not (status.json)."""
    record = runs.optional_json_object(path / runs.STATUS)
    verb = str(record.get("verb") or "")
    if (path / runs.METRICS_JSON).is_file():
        if record.get("status") == DIVERGED:  # assessed with its best epoch before the NaN
            return Job(number, overrides, path, DIVERGED, str(record.get("error") or ""), verb)
        return Job(number, overrides, path, FINISHED, verb=verb)
    status = str(record.get("status") or "unknown")
    error = str(record.get("error") or "")
    if not record:
        error = f"no {runs.METRICS_JSON} and no {runs.STATUS}"
    elif verb not in ("train", "evaluate"):
        status, error = "not comparable", f"an adx {verb} folder"
    elif status == "running" and _gone(path, record):
        status = "killed"
        error = (
            f"its process {record.get('pid')} ended while {record.get('stage')} without "
            "recording why (killed, or out of memory?)"
        )
    elif status == "interrupted":
        error = f"while {record.get('stage')}; go on with: {record.get('next')}"
    elif status == FINISHED:
        error = f"no {runs.METRICS_JSON}"
    return Job(number, overrides, path, status, error, verb)


def _gone(path: Path, record: dict[str, Any]) -> bool:
    """A `running` job whose process, on this host, no longer exists."""
    import socket

    from anomaly_cli.tasks.lifecycle import running_elsewhere

    return record.get("host") == socket.gethostname() and running_elsewhere(path) is None


def summarise_sweep(folder: Path) -> Summary:
    """The summary of the sweep in `folder` (finished or not)."""
    jobs = sweep_jobs(folder)

    def title(named: list[RunSummary]) -> str:
        return (
            f"Sweep {folder.name}: {len(named)} of {len(jobs)} jobs finished; test metrics at "
            f"each job's own threshold (columns named by {_named_by(named)})"
        )

    return summarise(jobs, title)


def summarise(jobs: Sequence[Job], title: Callable[[list[RunSummary]], str]) -> Summary:
    """compare's table of the finished jobs, the others listed; `title(named runs)`."""
    from anomaly_cli.reporting import compare as content
    from anomaly_cli.runs import DamagedFile

    jobs = list(jobs)
    read: list[RunSummary] = []
    for i, job in enumerate(jobs):
        if job.status not in ENDED_WITH_RESULTS or job.folder is None:
            continue
        try:
            read.append(content.read_run(job.folder))
        except DamagedFile as error:  # one damaged job costs its column, not the summary
            jobs[i] = Job(job.number, job.overrides, job.folder, "damaged", str(error), job.verb)
    named = content.with_column_names(read)
    frame = content.compare_frame(named)
    reported = [reported_values(s) for s in named]
    rows, names = _with_reported(content.table_rows(frame, named), frame, named, reported)
    different = content.data_difference(named) if named else None
    notes = [
        *([different] if different else []),
        *_sources(named, reported),
        *(_listed(job, jobs) for job in jobs if job.status != FINISHED),
    ]
    return Summary(
        title=title(named),
        notes=notes,
        lines=[f"{s.name}: {s.verb} run {s.path}" for s in named],
        frame=frame,
        long=_long(jobs, named, frame, reported),
        grid=content.render_table(rows, names, "grid"),
        pipe=content.render_table(rows, names, "pipe"),
        runs=named,
        jobs=jobs,
    )


def _named_by(named: Sequence[RunSummary]) -> str:
    return "model" if all(s.name == s.model for s in named) else "the overrides that differ"


def reported_values(summary: RunSummary) -> dict[str, float] | None:
    """The source document's numbers for this run's column (`reported.values.<name>`)."""
    from omegaconf import OmegaConf

    values = None
    with contextlib.suppress(Exception):  # a config without `reported` has none
        node = OmegaConf.select(summary.config, f"{REPORTED}.values", default=None)
        values = None if node is None else OmegaConf.to_container(node).get(summary.name)
    if not isinstance(values, dict):
        return None
    from anomaly_cli.reporting.compare import as_number

    numbers = {str(k): as_number(v) for k, v in values.items()}
    return {k: v for k, v in numbers.items() if not math.isnan(v)} or None


def _sources(named: Sequence[RunSummary], reported: Sequence[dict[str, float] | None]) -> list[str]:
    from omegaconf import OmegaConf

    sources = []
    for s, values in zip(named, reported, strict=True):
        if values is not None:
            with contextlib.suppress(Exception):
                sources.append(str(OmegaConf.select(s.config, f"{REPORTED}.source") or ""))
    if not any(name is not None for name in reported):
        return []
    where = "; ".join(dict.fromkeys(s for s in sources if s)) or "source not given"
    return [f"'{_SUFFIX.strip()}' columns: the numbers the source document printed ({where})"]


def _with_reported(
    rows: list[list[str]],
    frame: pd.DataFrame,
    named: Sequence[RunSummary],
    reported: Sequence[dict[str, float] | None],
) -> tuple[list[list[str]], list[str]]:
    """Each reported column right after its job's column; blank where nothing was reported."""
    from anomaly_cli.reporting.tables import format_value

    keys: list[str | None] = [None] * (len(rows) - len(frame)) + list(frame["metric"])
    names: list[str] = []
    for s, values in zip(named, reported, strict=True):
        names += [s.name] + ([f"{s.name}{_SUFFIX}"] if values is not None else [])
    out = []
    for row, key in zip(rows, keys, strict=True):
        cells = [row[0]]
        for i, values in enumerate(reported):
            cells.append(row[i + 1])
            if values is not None:
                value = values.get(key) if key else None
                cells.append("" if value is None else format_value(key or "", value))
        out.append(cells)
    return out, names


def _listed(job: Job, jobs: Sequence[Job]) -> str:
    """One line per job that did not finish as planned: which job, what it was, why."""
    label = f"job {job.number} ({job_name(job, jobs)})"
    if job.folder is None:
        return f"{NOT_STARTED}: {label}"
    if job.status == DIVERGED:  # in the table, with a warning
        return f"{DIVERGED}: {label}, folder {job.folder.name}: {job.error}"
    why = " ".join(w for w in (job.verb, job.status) if w)
    why = f"{why}: {job.error}" if job.error else why
    if job.number is None:  # a run given to compare by its path
        return f"skipped {job.folder}: {why}"
    return f"skipped {label}, folder {job.folder.name}: {why}"


def job_name(job: Job, jobs: Sequence[Job]) -> str:
    """A job by the overrides that tell it from the sweep's other jobs."""
    from anomaly_cli.reporting.compare import differing_keys

    keys = set(differing_keys([j.overrides for j in jobs]))
    own = [o for o in job.overrides if o.split("=", 1)[0].lstrip("+~") in keys]
    return " ".join(own or job.overrides) or (job.folder.name if job.folder else "no overrides")


def _long(
    jobs: Sequence[Job],
    named: Sequence[RunSummary],
    frame: pd.DataFrame,
    reported: Sequence[dict[str, float] | None],
) -> pd.DataFrame:
    """A row per finished job and metric, one per other job: what pandas users want."""
    import pandas as pd

    by_folder = {s.path.resolve(): (s, r) for s, r in zip(named, reported, strict=True)}
    rows: list[dict[str, Any]] = []
    for position, job in enumerate(jobs):
        number = job.number if job.number is not None else position
        found = by_folder.get(job.folder.resolve()) if job.folder else None
        if found is None:
            rows.append(
                {
                    "job": number,
                    "name": job_name(job, jobs),
                    "folder": job.folder or "",
                    "status": job.status,
                    "metric": "",
                    "error": job.error,
                }
            )
            continue
        s, values = found
        for key, value in zip(frame["metric"], frame[s.name], strict=True):
            rows.append(
                {
                    "job": number,
                    "name": s.name,
                    "folder": s.path,
                    "status": job.status,
                    "metric": key,
                    "value": value,
                    "reported": (values or {}).get(key, math.nan),
                    "error": job.error,
                }
            )
    long = pd.DataFrame(rows, columns=list(LONG_COLUMNS))
    long["job"] = long["job"].astype("Int64")
    return long


def write(summary: Summary, out_dir: Path, files: Files) -> None:
    """The tables first (the summary's point), then the plots and report.html, best effort."""
    import logging

    from anomaly_cli.errors import first_lines
    from anomaly_cli.reporting.html import write_report_or_warn

    runs.write_csv(out_dir / files.csv, summary.frame)
    runs.write_csv(out_dir / files.long, summary.long)
    runs.write_text(out_dir / files.txt, summary.text)
    runs.write_text(out_dir / files.md, summary.markdown)
    try:
        write_plots(summary.runs, out_dir)
    except Exception as error:  # a plot never costs the tables above
        logging.getLogger("adx").warning(
            "the summary's plots were not drawn (%s: %s); its tables are complete",
            type(error).__name__,
            first_lines(error)[:200],
        )
    write_report_or_warn(out_dir, title=summary.title, notes=summary.notes, lines=summary.lines)


def write_plots(named: Sequence[RunSummary], out_dir: Path) -> None:
    """Every finished run's ROC curve in one plot, and seed 000's training-time bars."""
    from anomaly_cli.reporting import compare as content
    from anomaly_cli.reporting.plots.registry import save

    curves = content.roc_curves(named)
    if curves:
        save(content.roc_figure(curves), out_dir / runs.ROC_PLOT)
    bars = content.train_time_figure(named)
    if bars is not None:
        save(bars, out_dir / runs.TRAIN_TIME_PLOT)
