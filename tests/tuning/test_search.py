"""Keras Tuner's oracles drive the trials: values inside the space, hyperband's epochs, best."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomaly_cli.tuning.search import run_space_search
from anomaly_cli.tuning.space import check_tune_config
from anomaly_cli.tuning.trials import TrialRecord
from tests.conftest import compose_config

SPACE = (
    "tune.space={optimizer.lr: {log: [1e-4, 1e-2]}, model.units: {choice: [[64], [128, 64]]}, "
    "model.dropout: {float: [0.0, 0.5]}}"
)


class Recorder:
    """Stands in for TrialRunner: no training, an objective made from the values."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.objective, self.seen = run_dir, "val_loss", []

    def run(self, trial_id: str, params: dict) -> TrialRecord:
        self.seen.append(params)
        loss = params["optimizer.lr"] + params["model.dropout"]
        return TrialRecord(trial_id, params, loss, 1, 0.0, "finished", f"trials/{trial_id}")


@pytest.mark.parametrize("algorithm", ["random", "bayesian", "hyperband"])
def test_each_algorithm_proposes_values_inside_the_space(algorithm: str, tmp_path: Path):
    cfg = compose_config(
        "tune", "model=dense_ae", "trainer.epochs=3", f"tune.algorithm={algorithm}",
        "tune.max_trials=4", SPACE,
    )  # fmt: skip
    runner = Recorder(tmp_path)
    best = run_space_search(cfg, runner, check_tune_config(cfg))
    assert 1 <= len(runner.seen) <= 4
    for params in runner.seen:
        assert 1e-4 <= params["optimizer.lr"] <= 1e-2
        assert params["model.units"] in ([64], [128, 64])
        assert 0.0 <= params["model.dropout"] <= 0.5
        assert ("trainer.epochs" in params) == (algorithm == "hyperband")
    lowest = min(runner.seen, key=lambda p: p["optimizer.lr"] + p["model.dropout"])
    assert best is not None and runner.seen[int(best)] == lowest
    assert (tmp_path / "keras_tuner" / "oracle.json").is_file()
