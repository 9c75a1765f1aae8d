"""`adx compare`: finished runs side by side, in a new `<timestamp>_compare_<name>` folder.

`runs=[<dir>,<dir>,...]` names the runs; `runs=<folder>` takes every run
inside a folder, such as the one `adx train -m ...` writes under
`outputs/multirun/`. Runs inside a folder that did not finish (no
metrics.json) are listed as skipped; a run named on its own must be finished.
The folder gets compare.txt (printed too), compare.csv, compare.md,
compare_long.csv, plots/roc.png, plots/train_time.png and report.html.

`runs=<one sweep folder>` (it holds Hydra's multirun.yaml) rebuilds that
sweep's summary (reporting/summary.py): the same table as the summary the
sweep wrote when it ended, with the jobs that failed and those that never
started, so an interrupted sweep gets one too. One finished job is enough there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from anomaly_cli import runs
from anomaly_cli.config_dir import config_dir
from anomaly_cli.errors import AdxUserError
from anomaly_cli.reporting.summary import job_order
from anomaly_cli.tasks.common import current_run_dir, log, run_cli_task, save_config
from anomaly_cli.tasks.lifecycle import set_stage

if TYPE_CHECKING:  # pandas costs a third of a second: keep `adx compare --help` quick
    import pandas as pd

    from anomaly_cli.reporting.compare import RunSummary

USAGE = "write runs=[<dir>,<dir>,...] or runs=<folder of runs, e.g. outputs/multirun/...>"
TRAIN_TIME_PLOT = runs.TRAIN_TIME_PLOT
# Verbs whose folders hold test metrics to compare.
_COMPARABLE = ("train", "evaluate")


@dataclass(frozen=True)
class FoundRuns:
    runs: list[Path]
    skipped: list[str] = field(default_factory=list)  # "<folder>: <why>"
    sweep: Path | None = None  # runs= named one sweep folder: its summary is rebuilt
    unfinished: list[Path] = field(default_factory=list)  # the skipped folders


def find_runs(spec: Any) -> FoundRuns:
    """The finished runs that `runs=` names, in the order given (a folder's by job number).

    Raises AdxUserError, before any folder is made, for a path that is not a
    run or a folder of runs, a named run that did not finish, or fewer than
    two finished runs in all (one run has nothing to be compared with; one
    sweep folder needs one, since its summary also lists the jobs that failed).
    """
    from anomaly_cli.reporting.summary import is_sweep

    found: list[Path] = []
    skipped: list[str] = []
    unfinished: list[Path] = []
    entries = _entries(spec)
    sweep = Path(entries[0]) if len(entries) == 1 and is_sweep(Path(entries[0])) else None
    for entry in entries:
        path = Path(entry)
        if not path.is_dir():
            what = "is a file, not a folder" if path.exists() else "does not exist"
            raise AdxUserError(f"runs: {entry} {what}; {USAGE}")
        if (path / runs.METRICS_JSON).is_file():
            found.append(path)
            continue
        if runs.holds_run(path):
            raise AdxUserError(
                f"runs: {entry} cannot be compared ({why_unfinished(path)}); pass finished "
                "train or evaluate runs, which hold metrics.json"
            )
        below = _runs_below(path)
        if not below:
            raise AdxUserError(f"runs: {entry} holds no adx runs; {USAGE}")
        for run in below:
            if (run / runs.METRICS_JSON).is_file():
                found.append(run)
            else:
                skipped.append(f"{run}: {why_unfinished(run)}")
                unfinished.append(run)
    unique = list({p.resolve(): p for p in found}.values())  # outputs/latest is a run too
    least = 1 if sweep else 2
    if len(unique) < least:
        where = f"; skipped {len(skipped)}: {', '.join(skipped[:3])}" if skipped else ""
        need = "compare needs at least two finished runs"
        if sweep:
            need = "a sweep's summary needs a finished run"
        raise AdxUserError(f"{need}, runs= gives {len(unique)}{where}; {USAGE}")
    return FoundRuns([p.resolve() for p in unique], skipped, sweep, unfinished)


def _entries(spec: Any) -> list[str]:
    if spec is None:
        raise AdxUserError(f"name the runs to compare: {USAGE}")
    if OmegaConf.is_list(spec) or isinstance(spec, (list, tuple)):
        entries = [str(e) for e in spec]
    else:
        entries = [str(spec)]
    if not entries or not all(e.strip() for e in entries):
        raise AdxUserError(f"runs= holds an empty entry; {USAGE}")
    return entries


def _runs_below(folder: Path) -> list[Path]:
    """Run folders one or two levels down (outputs/multirun/<sweep>/<job>), by job number."""
    below = []
    for child in job_order(folder.iterdir()):
        if not child.is_dir():
            continue
        if runs.holds_run(child):
            below.append(child)
        elif not child.is_symlink():
            below.extend(c for c in job_order(child.iterdir()) if runs.holds_run(c))
    return below


def why_unfinished(folder: Path) -> str:
    """Why a folder that holds adx files has no metrics, from its status.json."""
    try:
        status = json.loads((folder / runs.STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no metrics.json"
    verb, state = status.get("verb"), status.get("status")
    if verb not in _COMPARABLE:
        return f"an adx {verb} folder"
    if state == "finished":
        return "no metrics.json"
    error = status.get("error")
    return f"{verb} {state}: {error}" if error else f"{verb} {state}"


def compare_label(spec: Any) -> str:
    """`<model>_vs_<model>` (or `<model>_<n>_runs`) for the compare folder's name."""
    try:
        models = [_model_of(p) for p in find_runs(spec).runs]
    except Exception:  # names are resolved before the checks report bad input
        return "runs"
    distinct = list(dict.fromkeys(models))
    label = "_vs_".join(distinct) if len(distinct) > 1 else f"{distinct[0]}_{len(models)}_runs"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:80]


def _model_of(run: Path) -> str:
    try:
        return str(json.loads((run / runs.RUN_INFO).read_text(encoding="utf-8"))["model"])
    except Exception:
        return "run"


def register() -> None:
    """The resolver configs/compare.yaml names its folder with."""
    if not OmegaConf.has_resolver("adx.compare_label"):
        OmegaConf.register_new_resolver("adx.compare_label", compare_label)


register()  # at import: cli.py imports the verb before Hydra names the folder


def compare(cfg: DictConfig, run_dir: Path | None = None) -> pd.DataFrame:
    """Write the comparison of the runs cfg.runs names; returns compare.csv's frame."""
    from anomaly_cli.reporting import summary as content

    run_dir = Path(run_dir or current_run_dir())
    found = find_runs(cfg.runs)
    set_stage("reading the runs")
    if found.sweep is not None:
        summary = content.summarise_sweep(found.sweep)
    else:
        jobs = [content.read_job(None, (), path) for path in [*found.runs, *found.unfinished]]
        summary = content.summarise(jobs, _heading)
    save_config(cfg, run_dir)
    set_stage("writing the table and plots")
    content.write(summary, run_dir, content.COMPARE_FILES)
    if not (run_dir / TRAIN_TIME_PLOT).is_file():
        log.info("no training time known for any run: no %s", TRAIN_TIME_PLOT)
    print(summary.text, end="")
    print(f"Run directory: {run_dir}")
    return summary.frame


def _heading(summaries: list[RunSummary]) -> str:
    by = "model" if all(s.name == s.model for s in summaries) else "the overrides that differ"
    return (
        f"Comparison of {len(summaries)} runs: test metrics at each run's own threshold "
        f"(columns named by {by})"
    )


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="compare")
def main(cfg: DictConfig) -> None:
    run_cli_task(compare, cfg, "compare")
