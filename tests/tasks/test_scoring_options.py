"""Scoring options through the CLI: Monte Carlo dropout columns, score overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import latest, run_adx_in_process, train_run


def test_mc_dropout_writes_mean_and_std_and_evaluate_can_turn_it_off(tmp_path: Path):
    run = train_run(
        tmp_path,
        "debug=tiny",  # evaluate re-enters a run composed with debug= (below)
        "model=dense_ae",
        "model.dropout=0.2",
        "scoring.mc_dropout.samples=5",
        "scoring.mc_dropout.combine=1.5",
    )
    scores = pd.read_csv(run / "scores.csv")
    assert list(scores.columns) == ["id", "label", "score", "score_mean", "score_std", "prediction"]
    assert (scores.score_std > 0).all()
    assert np.allclose(scores.score, scores.score_mean + 1.5 * scores.score_std)

    result = run_adx_in_process(
        "evaluate", f"run={run}", "scoring.mc_dropout.samples=0", "scoring.mc_dropout.combine=0",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    plain = pd.read_csv(latest(tmp_path) / "scores.csv")
    assert list(plain.columns) == ["id", "label", "score", "prediction"]
    assert plain.id.tolist() == scores.id.tolist()


def test_a_score_the_model_cannot_give_is_refused(synthetic_run: Path, tmp_path: Path):
    result = run_adx_in_process(
        "evaluate", f"run={synthetic_run}", "model.score=distance", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "model.score=distance is not supported by ConvAutoencoder" in result.stderr
    # No evaluate folder (named <timestamp>_evaluate_..., which the old check's
    # startswith("evaluate") never matched) and no outputs/ made for it.
    assert not (tmp_path / "outputs").exists()
