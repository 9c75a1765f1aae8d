"""`search=space`: Keras Tuner's oracle proposes, an `adx train` run per trial measures.

`AdxTuner` is a Keras Tuner `Tuner` whose `run_trial` trains the tune run's
config with the trial's values (`TrialRunner`) instead of building a Keras
model itself, so models with their own `train_step` or warm-up train exactly
as `adx train` trains them. The tuner's project folder is `<run>/keras_tuner/`:
Keras Tuner reloads it when the search resumes, and reruns the trials that
were running when it was stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras_tuner
from omegaconf import DictConfig

from anomaly_cli.tuning.space import OBJECTIVES, Dimension
from anomaly_cli.tuning.trials import TrialRecord, TrialRunner, progress_line

PROJECT = "keras_tuner"
# Hyperband's own entries in a trial's values (epochs, bracket, round, ...).
_HYPERBAND_PREFIX = "tuner/"


def hyperparameters(dimensions: list[Dimension]) -> keras_tuner.HyperParameters:
    """The search space in Keras Tuner's terms (lists and mixed choices go by position)."""
    space = keras_tuner.HyperParameters()
    for d in dimensions:
        if d.kind == "choice":
            values = list(d.values) if d.scalar_choices else list(range(len(d.values)))
            space.Choice(d.key, values)
        elif d.kind == "int":
            space.Int(d.key, d.values[0], d.values[1])
        else:
            sampling = "log" if d.kind == "log" else "linear"
            space.Float(d.key, float(d.values[0]), float(d.values[1]), sampling=sampling)
    return space


def make_oracle(cfg: DictConfig, dimensions: list[Dimension]) -> keras_tuner.Oracle:
    tune = cfg.tune
    max_trials = int(tune.max_trials)
    common = {
        "objective": keras_tuner.Objective(str(tune.objective), OBJECTIVES[str(tune.objective)]),
        "hyperparameters": hyperparameters(dimensions),
        "allow_new_entries": False,
        "tune_new_entries": False,
        # Keras Tuner draws a seed of its own for 0; the search repeats with trainer.seed.
        "seed": int(cfg.trainer.seed) or 1,
        # A failed trial is recorded and the search goes on, to the last trial.
        "max_consecutive_failed_trials": max_trials + 1,
    }
    algorithm = str(tune.algorithm)
    if algorithm == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    if algorithm == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(max_trials=max_trials, **common)
    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=int(cfg.trainer.epochs), **common)
    oracle.max_trials = max_trials  # the oracle stops creating trials past it
    return oracle


class AdxTuner(keras_tuner.Tuner):
    """Each trial is an `adx train` run; returns the trial's objective to the oracle."""

    def __init__(
        self, oracle: keras_tuner.Oracle, runner: TrialRunner, dimensions: list[Dimension]
    ) -> None:
        super().__init__(oracle=oracle, directory=str(runner.run_dir), project_name=PROJECT)
        self.runner, self.dimensions = runner, dimensions
        self.records: list[TrialRecord] = []

    def run_trial(self, trial: keras_tuner.engine.trial.Trial, *args: Any, **kwargs: Any) -> float:
        values = trial.hyperparameters.values
        params = {d.key: decode(d, values[d.key]) for d in self.dimensions if d.key in values}
        if _HYPERBAND_PREFIX + "epochs" in values:
            params["trainer.epochs"] = int(values[_HYPERBAND_PREFIX + "epochs"])
        record = self.runner.run(trial.trial_id, params)
        self.records.append(record)
        print(progress_line(record, self.runner.objective), flush=True)
        if not record.usable:
            raise keras_tuner.errors.FailedTrialError(record.error or f"{record.status} trial")
        return record.objective

    # Every trial keeps its own checkpoints in its adx run folder.
    def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:
        return None

    def load_model(self, trial: Any) -> Any:
        raise NotImplementedError("adx trials keep their models in <run>/trials/<id>/")


def decode(dimension: Dimension, value: Any) -> Any:
    """A trial's value as the config takes it (choices by position back to the choice)."""
    if dimension.kind == "choice" and not dimension.scalar_choices:
        return dimension.values[int(value)]
    if dimension.kind == "int":
        return int(value)
    if dimension.kind in ("float", "log"):
        return float(value)
    return value


def run_space_search(
    cfg: DictConfig, runner: TrialRunner, dimensions: list[Dimension]
) -> str | None:
    """Run (or go on with) the search; returns the best trial's id, None if none ended well."""
    tuner = AdxTuner(make_oracle(cfg, dimensions), runner, dimensions)
    tuner.oracle.verbose = 0  # adx prints one line per trial itself
    tuner.search()
    best = tuner.oracle.get_best_trials(1)
    return best[0].trial_id if best and best[0].score is not None else None


def project_dir(run_dir: Path) -> Path:
    return run_dir / PROJECT
