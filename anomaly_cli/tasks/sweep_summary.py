"""The Hydra callback that ends `adx train -m` and `adx evaluate -m` with a summary.

configs/hydra/default.yaml names `SweepSummary` under `hydra.callbacks`, so it
runs in the process that launched the sweep, after the last job, whichever
launcher ran the jobs (this process, joblib workers, SLURM). It writes
summary.txt (printed too), summary.csv, summary.md, summary_long.csv, the
compare plots and report.html into the sweep folder (reporting/summary.py).

It must never cost a sweep its results: a failure to summarise is one
warning line that says how to rebuild the summary, never an exception. It
imports no TensorFlow, and nothing heavier than Hydra until a sweep ends.
Hydra's basic sweeper skips `on_multirun_end` when a job raises; adx's jobs
contain their own failures (tasks/common.py), so it runs unless the sweep
was interrupted, and `adx compare runs=<sweep folder>` rebuilds it then.

`adx benchmark` writes its own tables, and the other verbs have no test
metrics, so the callback leaves their sweeps alone.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from anomaly_cli import runs
from anomaly_cli.errors import USER_ERROR_EXIT_CODE

if TYPE_CHECKING:
    from anomaly_cli.tasks.common import JobFailure

# Verbs whose sweeps are summarised: their jobs end with metrics.json.
SUMMARISED = ("train", "evaluate")
# The failed jobs the last summary found, for `adx`'s exit code (cli.py): jobs
# that other processes ran never reach this process's own list of failures.
_found: list[JobFailure] = []
# How a job can end without finishing, and the exit code that says so when its
# status.json records none (interrupted: Ctrl-C's; killed: SIGKILL's).
_STOPPED = {"failed": USER_ERROR_EXIT_CODE, "interrupted": 130, "killed": 137}


def take_failures() -> list[JobFailure]:
    """The failed jobs of the sweep summarised last in this process; forgets them."""
    found = list(_found)
    _found.clear()
    return found


def summarised(config: DictConfig) -> bool:
    """Whether this sweep gets a summary: a train or evaluate sweep, not a benchmark."""
    return str(config.get("task_name")) in SUMMARISED and "benchmark" not in config


class SweepSummary(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _found.clear()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = None
        try:
            if not summarised(config):
                return
            folder = Path(str(config.hydra.sweep.dir))
            summary = write_summary(folder)
            print(summary.text, end="")
            print(f"Summary of the sweep: {folder}")
        except Exception as error:  # a sweep's results are worth more than its summary
            from anomaly_cli.errors import first_lines

            where = f"adx compare runs={folder}" if folder else "adx compare runs=<sweep folder>"
            print(
                f"adx: warning: the sweep's summary was not written ({type(error).__name__}: "
                f"{first_lines(error)[:200]}); every job's folder is complete, rebuild it with: "
                f"{where}",
                file=sys.stderr,
            )


def write_summary(folder: Path) -> Any:
    """Write the summary into the sweep `folder` and remember the jobs that did not finish.

    Failed jobs, and (run by other processes, whose interrupt does not stop
    the sweep) interrupted or killed ones: a sweep with any of them exits non-zero.
    """
    from anomaly_cli.reporting import summary as content
    from anomaly_cli.tasks.common import JobFailure

    summary = content.summarise_sweep(folder)
    content.write(summary, folder, content.SUMMARY_FILES)
    _found[:] = [
        JobFailure(job.folder, _exit_code(job.folder, job.status))
        for job in summary.jobs
        if job.status in _STOPPED and job.folder is not None
    ]
    return summary


def record_stopped(folders: list[tuple[Path, str]]) -> None:
    """Jobs (folder, status) that another part of adx found stopped, e.g. benchmark cells.

    They reach `adx`'s exit code as the summary's do, whichever process ran them.
    """
    from anomaly_cli.tasks.common import JobFailure

    _found.extend(
        JobFailure(folder, _exit_code(folder, status if status in _STOPPED else "failed"))
        for folder, status in folders
    )


def _exit_code(folder: Path, status: str) -> int:
    """The code the job ended with (status.json), else the usual one for how it ended."""
    code = runs.optional_json_object(folder / runs.STATUS).get("exit_code")
    return code if isinstance(code, int) else _STOPPED[status]
