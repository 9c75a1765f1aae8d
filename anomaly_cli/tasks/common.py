"""What every verb's Hydra wrapper shares: run-dir lookup, and how a run ends.

A run ends in one of four ways, each with its own exit code and one line on
stderr that says what to do next:

- finished: exit 0. A training that diverged (a NaN loss) but kept a finite
  best epoch is assessed with it and finishes too, its status `diverged`.
- a user error (bad input, a damaged file, a full disk): exit 2. A folder
  that holds nothing of value is removed; one that holds a trained model is
  kept, and the line says how to go on from it.
- interrupted (Ctrl-C, SIGTERM from a scheduler): exit 130 (143 for SIGTERM).
  A train run can always be continued with `adx train resume=<dir>`, a search
  that has trials with `adx tune resume=<dir>`.
- an internal error (a bug in adx): exit 1; the traceback goes to the run's
  adx.log, not the terminal, unless ADX_DEBUG=1.

Under `--multirun` a failed job does not stop the jobs after it: each failure
is reported as it happens and `adx` exits non-zero after the last job. A
failed job's folder is kept, even when it holds nothing else, with its
status.json (`failed`, the error, the exit code) and adx.log: the sweep's
summary lists it from there, also one rebuilt later or by another process.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from anomaly_cli import resolvers, runs
from anomaly_cli.errors import USER_ERROR_EXIT_CODE, AdxUserError, first_lines, one_line
from anomaly_cli.interrupts import Terminated, terminate_as_interrupt
from anomaly_cli.launchers import in_launcher_process
from anomaly_cli.native_logs import native_logs_to
from anomaly_cli.tasks import lifecycle
from anomaly_cli.training import graph_memory

# TensorFlow's C++ start-up chatter hides adx's own output; users can lower it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
resolvers.register()
log = logging.getLogger("adx")
INTERNAL_ERROR_EXIT_CODE = 1
INTERRUPTED_EXIT_CODE = 130  # the shell's code for a run stopped by Ctrl-C
TERMINATED_EXIT_CODE = 143  # ... and for one stopped by SIGTERM (a scheduler's pre-emption)
# OS errors that the user's machine causes and the user can fix: full disks,
# quotas, permissions, read-only mounts. Anything else is adx's own fault.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


@dataclass(frozen=True)
class JobFailure:
    run_dir: Path
    exit_code: int


_failures: list[JobFailure] = []


def failures() -> list[JobFailure]:
    """Jobs of this process's --multirun that failed (they did not stop the others)."""
    return list(_failures)


def current_run_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def task_overrides() -> list[str]:
    """The overrides the user typed for this job (empty outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_cli_task(task: Callable[[DictConfig, Path], Any], cfg: DictConfig, verb: str) -> Any:
    """Run a verb in its Hydra folder and end it in one of the four ways above."""
    run_dir = current_run_dir()
    lifecycle.start_phases()
    lifecycle.take_outcome()  # nothing left over from an earlier job of this process
    lifecycle.write_status(run_dir, verb, "running")
    warned = lifecycle.WarningLog()
    traced_before = graph_memory.custom_gradients()
    code, line = 0, ""
    try:
        with (
            warned.collecting(),
            terminate_as_interrupt(),
            native_logs_to(lambda text: lifecycle.log_to_file_only(run_dir, text)),
        ):
            result = task(cfg, run_dir)
        phases = lifecycle.phase_seconds()  # what benchmarks/speed.py breaks wall time into
        lifecycle.set_stage("done")
        status, details = lifecycle.take_outcome()
        lifecycle.write_status(run_dir, verb, status, **details, phase_seconds=phases)
        warned.report(run_dir)
        return result
    except KeyboardInterrupt as interrupt:
        # An interrupt stops a --multirun too: the jobs after this one do not start.
        by = (str(interrupt) or "SIGTERM") if isinstance(interrupt, Terminated) else ""
        code, line = _interrupted(verb, cfg, run_dir, by)
        _report(warned, run_dir, line)
        if in_launcher_process():  # its status.json tells adx's summary; an exit is no result
            return None
        sys.exit(code)
    except AdxUserError as error:
        code, line = _user_error(verb, cfg, run_dir, str(error), error)
    except OSError as error:
        if error.errno in ENVIRONMENT_ERRNOS:
            code, line = _user_error(verb, cfg, run_dir, _environment_message(error), error)
        else:
            code, line = _internal_error(verb, run_dir, error)
    except Exception as error:
        code, line = _internal_error(verb, run_dir, error)
    finally:
        graph_memory.free_job_graphs(traced_before)  # so --multirun jobs do not add up
    _report(warned, run_dir, line)
    if _is_multirun():
        _failures.append(JobFailure(run_dir, code))
        return None
    sys.exit(code)


def _report(warned: lifecycle.WarningLog, run_dir: Path, line: str) -> None:
    """The warnings list, then the one line that says how the run ended."""
    warned.report(run_dir)
    prefix = f"adx: job {run_dir.name}: " if _is_multirun() else "adx: "
    print(f"{prefix}{one_line(line)}", file=sys.stderr)


def _environment_message(error: OSError) -> str:
    where = error.filename or "a file"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"cannot write {where}: {error.strerror}; free space on that disk"
    return f"cannot access {where}: {error.strerror}; fix its permissions or choose another path"


def _user_error(
    verb: str, cfg: DictConfig, run_dir: Path, message: str, error: BaseException
) -> tuple[int, str]:
    lifecycle.log_to_file_only(run_dir, f"adx: error: {message}")
    if not _holds_work(verb, cfg, run_dir):
        if _is_multirun():  # the record the sweep's summary lists this job from
            lifecycle.write_status(
                run_dir, verb, "failed", error=message, exit_code=USER_ERROR_EXIT_CODE
            )
        else:
            _discard(run_dir)
        if os.environ.get("ADX_DEBUG") == "1":
            raise error
        return USER_ERROR_EXIT_CODE, f"error: {message}"
    steps = getattr(error, "next_steps", None) or _next_steps(verb, run_dir)
    lifecycle.write_status(
        run_dir, verb, "failed", error=message, next=steps, exit_code=USER_ERROR_EXIT_CODE
    )
    if os.environ.get("ADX_DEBUG") == "1":
        raise error
    return USER_ERROR_EXIT_CODE, f"error: {message} ({_kept(run_dir)}: {steps})"


def _interrupted(verb: str, cfg: DictConfig, run_dir: Path, terminated: str) -> tuple[int, str]:
    """`terminated`: the scheduler's signal (SIGTERM, SIGUSR1, ...); empty for Ctrl-C."""
    code = TERMINATED_EXIT_CODE if terminated else INTERRUPTED_EXIT_CODE
    how = f"stopped by {terminated}" if terminated else "interrupted"
    stage = lifecycle.current_stage()
    if verb != "train" and not _holds_work(verb, cfg, run_dir):
        _discard(run_dir)
        return code, f"{how} while {stage}; nothing was kept, run the same command again"
    command = f"adx {verb} resume={run_dir}"
    lifecycle.write_status(run_dir, verb, "interrupted", next=command)
    if verb == "train":  # a search's folder is no run that evaluate or predict can take
        runs.update_latest(run_dir, cfg.paths.output_dir)
    kept = "the trials are kept, " if verb == "tune" else ""
    return code, f"{how} while {stage}; {kept}go on with: {command}"


def _internal_error(verb: str, run_dir: Path, error: BaseException) -> tuple[int, str]:
    if os.environ.get("ADX_DEBUG") == "1":
        raise error
    summary = f"{type(error).__name__}: {first_lines(error)[:300]}"
    lifecycle.log_to_file_only(run_dir, "".join(traceback.format_exception(error)))
    lifecycle.write_status(
        run_dir, verb, "failed", error=summary, exit_code=INTERNAL_ERROR_EXIT_CODE
    )
    return INTERNAL_ERROR_EXIT_CODE, (
        f"internal error while {lifecycle.current_stage()}: {summary}. This is a bug in adx, "
        f"not in your input; the traceback is in {run_dir / runs.LOG} (rerun with "
        "ADX_DEBUG=1 to print it)"
    )


def _holds_work(verb: str, cfg: DictConfig, run_dir: Path) -> bool:
    """Whether the folder holds a trained model (or earlier work) that must not be lost:
    a train run's checkpoints, or a search's trials (`adx tune`)."""
    if verb == "tune":
        from anomaly_cli.tuning.trials import TRIALS_DIR

        return (run_dir / TRIALS_DIR).is_dir()
    if verb != "train":
        return False
    trained = (run_dir / runs.CHECKPOINT).is_file() or (run_dir / runs.TRAINING_STATE).is_file()
    attempted = any((run_dir / runs.ATTEMPTS_DIR).glob(f"*/{runs.TRAINING_STATE}"))  # stable
    return bool(cfg.get("resume")) or trained or attempted


def _kept(run_dir: Path) -> str:
    if (run_dir / runs.CHECKPOINT).is_file():
        return f"the trained model is kept in {run_dir}"
    return f"the run folder {run_dir} is kept"


def _next_steps(verb: str, run_dir: Path) -> str:
    steps = f"adx {verb} resume={run_dir} goes on once that is fixed"
    if (run_dir / runs.CHECKPOINT).is_file():
        steps += f"; adx evaluate run={run_dir} scores it with other settings"
    return steps


def _discard(run_dir: Path) -> None:
    """Remove a folder that holds nothing of value, and parents made just for it."""
    runs.remove_run_dir(run_dir)
    resolvers.remove_empty_parents()


def save_config(cfg: DictConfig, run_dir: Path) -> None:
    """The run's effective config, resolved: what evaluate and sweep re-enter from."""
    runs.write_text(run_dir / runs.CONFIG, OmegaConf.to_yaml(cfg, resolve=True))
