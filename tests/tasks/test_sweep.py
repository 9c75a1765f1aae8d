"""`adx sweep` re-thresholds saved scores; counts checked against NumPy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import run_adx_in_process

EXPECTED = ["0.0005", "0.00075", "0.001", "0.00125", "0.0015", "0.00175",
            "0.002", "0.00225", "0.0025", "0.00275", "0.003"]  # fmt: skip


def _sweep(run: Path, cwd: Path, grid: str) -> tuple[str, Path]:
    result = run_adx_in_process("sweep", f"threshold={grid}", f"run={run}", cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep_dir,) = [p for p in (cwd / "outputs").iterdir() if "_sweep_" in p.name]
    return result.stdout, sweep_dir


def _check_counts(frame: pd.DataFrame, scores: pd.DataFrame, columns: list[str]) -> None:
    rows = frame.set_index("metric")
    labels, values = scores["label"].to_numpy(), scores["score"].to_numpy()
    for column in columns:
        flagged = values > float(column)
        assert rows.loc["tp", column] == np.sum(flagged & (labels == 1))
        assert rows.loc["fp", column] == np.sum(flagged & (labels == 0))
        assert rows.loc["tn", column] == np.sum(~flagged & (labels == 0))
        assert rows.loc["fn", column] == np.sum(~flagged & (labels == 1))


def test_sweep_range_lists_eleven_thresholds_as_typed(digits_run: Path, tmp_path: Path):
    stdout, sweep_dir = _sweep(digits_run, tmp_path, "0.0005:0.003")
    frame = pd.read_csv(sweep_dir / "sweep.csv", dtype={"metric": str})
    assert list(frame.columns) == ["metric", *EXPECTED]
    header = next(line for line in stdout.splitlines() if line.startswith("| Metric"))
    assert [cell.strip() for cell in header.strip("|").split("|")][1:] == EXPECTED
    assert "0.00030000000000000003" not in stdout
    assert (sweep_dir / "sweep.txt").read_text().count("| Metric") == 1
    _check_counts(frame, pd.read_csv(digits_run / "scores.csv"), EXPECTED)
    assert not (sweep_dir / "checkpoints").exists()  # no retraining


def test_sweep_list_inside_the_score_range(synthetic_run: Path, tmp_path: Path):
    scores = pd.read_csv(synthetic_run / "scores.csv")
    cuts = [f"{q:.4f}" for q in np.quantile(scores["score"], [0.2, 0.5, 0.8])]
    _, sweep_dir = _sweep(synthetic_run, tmp_path, "[" + ",".join(cuts) + "]")
    frame = pd.read_csv(sweep_dir / "sweep.csv")
    assert list(frame.columns)[1:] == cuts
    _check_counts(frame, scores, cuts)
    tp = frame.set_index("metric").loc["tp"]
    assert tp[cuts[0]] > tp[cuts[2]]  # a higher threshold flags fewer
