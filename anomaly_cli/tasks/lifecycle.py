"""What a run folder says about itself: where the run stands, and what it warned about.

`status.json` is written when a verb starts (`running`, with the process id
and host) and when it ends (`finished`, `diverged`, `interrupted` or `failed`, with the
stage it was in, the error and the command that goes on from there), so an
operator looking at a folder after a night of batch jobs can tell what
happened without reading logs. A run killed outright (SIGKILL, power loss)
stays `running` with a process id that no longer exists.

Warnings raised during a run, by adx's loggers or Python's `warnings`, are
collected, repeated in a short list at the end and saved to `warnings.json`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from anomaly_cli import runs
from anomaly_cli.errors import AdxUserError

log = logging.getLogger("adx")
# What the current run is doing, for the interrupt and error messages.
_stage = "starting"
# Seconds spent in each stage so far (status.json's phase_seconds), and when the
# current stage began.
_phases: dict[str, float] = {}
_stage_began = time.perf_counter()


# How the current run ended when it did not fail: `finished`, or `diverged` (its
# training stopped at a NaN loss and the best epoch before it was assessed).
FINISHED, DIVERGED = "finished", "diverged"
ENDED_WITH_RESULTS = (FINISHED, DIVERGED)
_outcome: tuple[str, dict[str, Any]] = (FINISHED, {})


def record_outcome(status: str, **details: Any) -> None:
    """What status.json says when the run ends without an error (details: its fields)."""
    global _outcome
    _outcome = (status, details)


def take_outcome() -> tuple[str, dict[str, Any]]:
    """The recorded outcome (once: the next run of this process starts as `finished`)."""
    global _outcome
    outcome, _outcome = _outcome, (FINISHED, {})
    return outcome


def set_stage(stage: str) -> None:
    global _stage, _stage_began
    now = time.perf_counter()
    _phases[_stage] = _phases.get(_stage, 0.0) + now - _stage_began
    _stage, _stage_began = stage, now


def start_phases() -> None:
    """A new run of this process: its stages are timed from here ("starting")."""
    global _stage, _stage_began
    _phases.clear()
    _stage, _stage_began = "starting", time.perf_counter()


def phase_seconds() -> dict[str, float]:
    """Seconds per stage, in the order the stages began (the current one so far)."""
    current = time.perf_counter() - _stage_began
    spent = {**_phases, _stage: _phases.get(_stage, 0.0) + current}
    return {stage: round(seconds, 3) for stage, seconds in spent.items()}


def current_stage() -> str:
    return _stage


def write_status(run_dir: Path, verb: str, status: str, **details: Any) -> None:
    """Best effort: on a full disk the run must still end with its one line."""
    if not run_dir.is_dir():
        return
    record = {
        "verb": verb,
        "status": status,
        "stage": _stage,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        **details,
    }
    with contextlib.suppress(OSError):
        runs.write_json(run_dir / runs.STATUS, record)


def running_elsewhere(run_dir: Path) -> int | None:
    """The id of a live adx process on this host that is still writing `run_dir`."""
    path = run_dir / runs.STATUS
    try:
        status = runs.read_json(path)
        pid = int(status["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if status.get("status") != "running" or status.get("host") != socket.gethostname():
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, run by someone else
    return pid


def resume_request(
    args: Sequence[str], keys: Sequence[str], what: str
) -> tuple[Path, list[str]] | None:
    """The folder of a verb's `resume=<dir>` and its other arguments, which may only set
    `keys`; None without resume=. `what` names what goes on: run, search."""
    resumes = [a for a in args if a.startswith("resume=")]
    if not resumes:
        return None
    run = Path(resumes[-1].removeprefix("resume=")).resolve()
    if "'" in str(run) or "\\" in str(run):
        raise AdxUserError(
            f"{resumes[-1]}: a folder name with quotes or backslashes cannot be resumed"
        )
    extra = [a for a in args if not a.startswith("resume=")]
    for arg in extra:
        if not arg.startswith("-") and arg.split("=", 1)[0] not in keys:
            raise AdxUserError(
                f"resume continues the {what} as it was configured, so '{arg}' cannot apply; "
                f"only {', '.join(keys)} may change"
            )
    return run, extra


def check_not_running(run_dir: Path, label: str, doing: str) -> None:
    """Refuse to go on with a folder a live adx process on this host still writes."""
    writer = running_elsewhere(run_dir)
    if writer is not None:
        raise AdxUserError(
            f"{label} is still being {doing} by process {writer} on this host; wait for it to "
            f"end (or stop it) before resuming (if no adx runs there, delete "
            f"{run_dir / runs.STATUS})"
        )


class WarningLog(logging.Handler):
    """Collects WARNING records and Python warnings (deduplicated, with counts)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.entries: dict[tuple[str, str], dict[str, Any]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self._add(record.name, record.getMessage())

    def _add(self, source: str, message: str) -> None:
        key = (source, message)
        if key in self.entries:
            self.entries[key]["count"] += 1
        else:
            self.entries[key] = {"source": source, "message": message, "count": 1}

    @contextlib.contextmanager
    def collecting(self) -> Iterator[WarningLog]:
        root = logging.getLogger()
        root.addHandler(self)
        shown = warnings.showwarning

        def show(message: Any, category: Any, filename: str, lineno: int, *rest: Any) -> None:
            self._add(category.__name__, str(message))
            shown(message, category, filename, lineno, *rest)

        warnings.showwarning = show
        try:
            yield self
        finally:
            warnings.showwarning = shown
            root.removeHandler(self)

    def report(self, run_dir: Path) -> None:
        """The list at the end of the run, and warnings.json when the folder is kept."""
        entries = list(self.entries.values())
        if run_dir.is_dir():
            with contextlib.suppress(OSError):
                runs.write_json(run_dir / runs.WARNINGS, entries)
        if not entries:
            return
        where = f" (saved in {run_dir / runs.WARNINGS})" if run_dir.is_dir() else ""
        print(f"adx: {len(entries)} warning(s) during this run{where}:", file=sys.stderr)
        for entry in entries:
            times = f" ({entry['count']}x)" if entry["count"] > 1 else ""
            print(f"  - {entry['message'].splitlines()[0][:300]}{times}", file=sys.stderr)


def log_to_file_only(run_dir: Path, text: str) -> None:
    """Append text to the run's adx.log without printing it (tracebacks, TF chatter)."""
    if not text.strip() or not run_dir.is_dir():
        return
    with contextlib.suppress(OSError), open(run_dir / runs.LOG, "a", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")
