"""`adx tune`: search hyperparameters (Keras Tuner) or seed 002's batch size; each trial trains.

The search itself lives in anomaly_cli.tuning; this module wires it to the
CLI: the checks preflight runs, `resume=`, and the search's results. A search
that was interrupted, or ended with every trial failed, keeps its folder
(its trials are work; tasks/common.py) and says how to go on with it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
import yaml
from omegaconf import DictConfig

from anomaly_cli import runs
from anomaly_cli.checks import check_train_config
from anomaly_cli.config_dir import config_dir
from anomaly_cli.errors import AdxUserError
from anomaly_cli.tasks.common import current_run_dir, log, run_cli_task, save_config, task_overrides
from anomaly_cli.tasks.lifecycle import check_not_running, resume_request, set_stage
from anomaly_cli.tuning.space import Dimension, check_tune_config

if TYPE_CHECKING:
    from anomaly_cli.tuning.trials import TrialRecord

# What `resume=` may change: how many trials in all, and how much training prints.
RESUMABLE_KEYS = ("tune.max_trials", "trainer.verbose", "trainer.checkpoint_every")


def check_tune(cfg: DictConfig) -> list[Dimension]:
    """Everything a tune config can get wrong, before any folder or data; the space."""
    check_train_config(cfg)
    return check_tune_config(cfg)


def rewrite_overrides(args: Sequence[str]) -> list[str]:
    """`resume=<dir>` becomes that search's own overrides plus its folder as run dir."""
    request = resume_request(args, RESUMABLE_KEYS, "search")
    if request is None:
        return list(args)
    run, extra = request
    label = f"resume={run}"
    changed = {a.split("=", 1)[0] for a in extra if not a.startswith("-")}
    saved = run / ".hydra" / "overrides.yaml"
    if not (run / ".hydra" / "config.yaml").is_file() or not saved.is_file():
        raise AdxUserError(f"{label} is not an adx tune run; pass the folder of an adx tune run")
    if "tune" not in yaml.safe_load((run / ".hydra" / "config.yaml").read_text(encoding="utf-8")):
        raise AdxUserError(f"{label} holds another verb's run; adx train resume= goes on with it")
    check_not_running(run, label, "searched")
    own = [
        o
        for o in yaml.safe_load(saved.read_text(encoding="utf-8")) or []
        if not o.startswith(("hydra.run.dir=", "resume=")) and o.split("=", 1)[0] not in changed
    ]
    return [*own, *extra, f"hydra.run.dir='{run}'", f"resume='{run}'"]


def tune(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Run (or go on with) the search in `run_dir`; returns best_params.yaml's content."""
    dimensions = check_tune(cfg)
    run_dir = Path(run_dir or current_run_dir())
    started = time.monotonic()
    from anomaly_cli.data.loader import load_splits
    from anomaly_cli.targets import plugin_list
    from anomaly_cli.tuning.objective import check_val_anomalies
    from anomaly_cli.tuning.trials import TrialRunner, read_records

    set_stage("loading data")
    # Once, before the first trial: a data error costs one line, not a failed trial each.
    splits = load_splits(cfg.dataset, cfg.protocol, plugins=plugin_list(cfg.get("plugins")))
    by_batch = cfg.search == "batch_size"
    objective = "val_auroc" if by_batch else str(cfg.tune.objective)
    check_val_anomalies(splits, objective)
    save_config(cfg, run_dir)
    runner = TrialRunner(cfg, splits, run_dir, objective)
    set_stage("searching")
    if by_batch:
        from anomaly_cli.tuning.batch_size import run_batch_search

        best_id, extra = run_batch_search(cfg, runner, len(splits.train))
    else:
        from anomaly_cli.tuning.search import run_space_search

        best_id, extra = run_space_search(cfg, runner, dimensions), {}
    return _conclude(cfg, run_dir, read_records(run_dir), objective, best_id, extra, started)


def _conclude(
    cfg: DictConfig,
    run_dir: Path,
    records: list[TrialRecord],
    objective: str,
    best_id: str | None,
    extra: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    from anomaly_cli.tuning.results import BEST_PARAMS, write_best, write_trials

    set_stage("writing the results")
    print(write_trials(run_dir, records, objective), flush=True)
    best = next((r for r in records if r.trial == best_id and r.usable), None)
    if best is None:
        errors = [r.error for r in records if r.error]
        first = f"; the first error: {errors[0]}" if errors else ""
        raise AdxUserError(
            f"none of the {len(records)} trials ended with a {objective}{first} "
            f"(every trial is listed in {run_dir / 'trials.csv'})"
        )
    result = write_best(run_dir, best, objective, task_overrides(), extra)
    runs.update_latest(run_dir / best.folder, cfg.paths.output_dir)  # evaluate/predict use it
    log.info(
        "%d trials in %.1f s; best: trial %s, %s %.6g",
        len(records),
        time.monotonic() - started,
        best.trial,
        objective,
        best.objective,
    )
    print(f"best trial {best.trial}: {objective} {best.objective:.6g} ({run_dir / best.folder})")
    print(f"train it again with: {result['command']}")
    print(f"search folder: {run_dir} ({BEST_PARAMS}, trials.csv)", flush=True)
    return result


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="tune")
def main(cfg: DictConfig) -> None:
    run_cli_task(tune, cfg, "tune")
