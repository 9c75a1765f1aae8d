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

VERBS: dict[str, str] = {
    "train": "fit a detector on normal data, threshold on validation, report test metrics",
    "evaluate": "re-score a finished run's checkpoint (run=<dir>, default outputs/latest)",
    "sweep": "re-threshold a run's saved scores: threshold=a:b | a:b:step | [t1,t2,...]",
    "predict": "score new, unlabelled data with a trained run (run=<dir> input=<path>)",
    "compare": "put finished runs side by side (runs=[<dir>,<dir>] or runs=<multirun folder>)",
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
        module.main()
    except KeyboardInterrupt:  # outside the task, which reports its own
        _interrupted()
    _exit_for_failed_jobs(jobs)


def _exit_for_failed_jobs(jobs: int) -> None:
    """A --multirun runs every job; it exits non-zero when any of them failed."""
    from anomaly_cli.tasks.common import INTERNAL_ERROR_EXIT_CODE, failures

    failed = failures()
    if failed:
        names = ", ".join(f.run_dir.name for f in failed)
        print(f"adx: {len(failed)} of {jobs} jobs failed: {names}", file=sys.stderr)
        internal = any(f.exit_code == INTERNAL_ERROR_EXIT_CODE for f in failed)
        sys.exit(INTERNAL_ERROR_EXIT_CODE if internal else USER_ERROR_EXIT_CODE)


def _interrupted() -> None:
    print("\nadx: interrupted", file=sys.stderr)
    sys.exit(130)


def fail(message: str) -> None:
    """One line on stderr and exit code 2: the user's input needs fixing."""
    if os.environ.get("ADX_DEBUG") == "1":
        raise AdxUserError(message)
    print(f"adx: error: {one_line(message)}", file=sys.stderr)
    sys.exit(USER_ERROR_EXIT_CODE)
