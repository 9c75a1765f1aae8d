"""`adx <verb> [overrides]`: pick the verb, hand the rest to that verb's Hydra app.

Hydra does not support sub-commands, so adx reads the verb itself, removes it
from sys.argv and calls the verb's own `@hydra.main` function; Hydra keeps its
output folders, logging, `--cfg`, `--multirun` and launchers. Nothing here
imports TensorFlow: the verb modules import it inside their task functions.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from anomaly_cli import __version__
from anomaly_cli.config_dir import config_groups
from anomaly_cli.errors import USER_ERROR_EXIT_CODE, AdxUserError, one_line
from anomaly_cli.interrupts import Terminated, terminate_as_interrupt
from anomaly_cli.launchers import mark_main_process

VERBS: dict[str, str] = {
    "train": "fit a detector on normal data, threshold on validation, report test metrics",
    "evaluate": "re-score a finished run's checkpoint (run=<dir>, default outputs/latest)",
    "sweep": "re-threshold a run's saved scores: threshold=a:b | a:b:step | [t1,t2,...]",
    "predict": "score new, unlabelled data with a trained run (run=<dir> input=<path>)",
    "compare": "put finished runs side by side (runs=[<dir>,<dir>] or runs=<multirun folder>)",
    "benchmark": "a resumable grid: models x normal classes x contamination x repeats, as a table",
    "tune": "search hyperparameters (Keras Tuner) or the batch size; each trial is a train run",
}

# Flags that make Hydra print something instead of running the task.
_INFO_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--version"}


def usage() -> str:
    groups = config_groups()
    width = max(len(name) for name in [*VERBS, *groups]) + 2
    lines = [
        f"adx {__version__}: experiment runner for deep anomaly detection",
        "",
        "usage: adx <verb> [key=value ...] [hydra flags]",
        "       adx <verb> --help     options and config of one verb",
        "",
        "verbs:",
        *(f"  {name:<{width}}{text}" for name, text in VERBS.items()),
        "",
        "config groups (select with group=option, e.g. model=conv_ae):",
        *(f"  {group:<{width}}{', '.join(options)}" for group, options in groups.items()),
        "",
        "examples:",
        "  adx train debug=tiny                 (a smoke run in seconds)",
        "  adx train dataset=synthetic trainer.epochs=5",
        "  adx evaluate threshold=youden",
        "  adx sweep threshold=0.0005:0.003",
        "  adx predict input=new_images/        (scores, labels and heatmaps of new data)",
        "  adx compare runs=outputs/multirun    (a table and ROC plot of finished runs)",
        "  adx benchmark experiment=seed001_mnist  (seed 001's grid; run again to resume)",
        "  adx tune debug=tiny tune.max_trials=3  (trials.csv, best_params.yaml)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return
    if args[0] == "--version":
        print(__version__)
        return
    verb, rest = args[0], args[1:]
    if verb not in VERBS:
        fail(f"unknown verb '{verb}'; valid verbs: {', '.join(VERBS)}")
    mark_main_process()  # jobs a launcher runs in other processes return instead of exiting
    module = importlib.import_module(f"anomaly_cli.tasks.{verb}")
    rewrite = getattr(module, "rewrite_overrides", None)
    jobs = 1
    try:
        if rewrite is not None:
            rest = rewrite(rest)
        if not _INFO_FLAGS.intersection(rest):
            from anomaly_cli.overrides import check_overrides
            from anomaly_cli.preflight import preflight

            check_overrides(verb, [a for a in rest if not a.startswith("-")])
            jobs = preflight(verb, rest)
    except AdxUserError as error:
        fail(str(error))
    except KeyboardInterrupt:
        _interrupted()
    if {"--help", "-h"}.intersection(rest):
        print(f"adx {verb}: {VERBS[verb]}")
        print(f"other verbs: {', '.join(v for v in VERBS if v != verb)} (adx --help)\n")
    sys.argv = [f"adx {verb}", *rest]
    try:
        # SIGTERM too: while a parallel launcher's workers run the jobs, joblib
        # stops them when this process is interrupted, not when it is killed.
        with terminate_as_interrupt():
            module.main()
    except KeyboardInterrupt as interrupt:  # outside the task, which reports its own
        _interrupted(143 if isinstance(interrupt, Terminated) else 130)
    _exit_for_failed_jobs(jobs)


def _exit_for_failed_jobs(jobs: int) -> None:
    """A --multirun runs every job; it exits non-zero when any of them failed.

    The jobs this process ran report their failures directly; those another
    process ran (joblib, SLURM) are the ones the sweep's summary found in their
    folders' status.json.
    """
    from anomaly_cli.reporting.summary import job_order
    from anomaly_cli.tasks.common import INTERNAL_ERROR_EXIT_CODE, failures
    from anomaly_cli.tasks.sweep_summary import take_failures

    by_folder = {f.run_dir.resolve(): f for f in [*take_failures(), *failures()]}
    failed = [by_folder[folder] for folder in job_order(by_folder)]
    if failed:
        names = ", ".join(f.run_dir.name for f in failed)
        print(f"adx: {len(failed)} of {jobs} jobs failed: {names}", file=sys.stderr)
        codes = {f.exit_code for f in failed}
        # A bug in adx says most, then bad input; else how a job was stopped (130, 143).
        for code in (INTERNAL_ERROR_EXIT_CODE, USER_ERROR_EXIT_CODE):
            if code in codes:
                sys.exit(code)
        sys.exit(max(codes))


def _interrupted(code: int = 130) -> None:
    print("\nadx: interrupted", file=sys.stderr)
    sys.exit(code)


def fail(message: str) -> None:
    """One line on stderr and exit code 2: the user's input needs fixing."""
    if os.environ.get("ADX_DEBUG") == "1":
        raise AdxUserError(message)
    print(f"adx: error: {one_line(message)}", file=sys.stderr)
    sys.exit(USER_ERROR_EXIT_CODE)
