"""`adx evaluate` re-enters a run from its checkpoint and config."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import RUN_ARTIFACTS, latest, run_adx_in_process


def test_evaluate_reproduces_the_train_metrics_exactly(synthetic_run: Path, tmp_path: Path):
    result = run_adx_in_process(
        "evaluate", f"run={synthetic_run}", "trainer.verbose=0", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    evaluated = latest(tmp_path)
    assert "_evaluate_conv_ae_synthetic" in evaluated.name
    for name in RUN_ARTIFACTS:
        assert (evaluated / name).is_file(), name
    for name in ("metrics.json", "scores.csv", "threshold.json", "roc.csv"):
        assert (evaluated / name).read_text() == (synthetic_run / name).read_text(), name
    assert json.loads((evaluated / "run.json").read_text())["source_run"] == str(synthetic_run)


def test_evaluate_with_another_threshold_strategy(synthetic_run: Path, tmp_path: Path):
    result = run_adx_in_process(
        "evaluate", f"run={synthetic_run}", "threshold=youden", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    evaluated = latest(tmp_path)
    threshold = json.loads((evaluated / "threshold.json").read_text())
    assert threshold["strategy"] == "youden"
    before = json.loads((synthetic_run / "metrics.json").read_text())
    after = json.loads((evaluated / "metrics.json").read_text())
    assert after["auroc"] == before["auroc"]  # same scores, another cut
    assert after["tp"] + after["fn"] == before["tp"] + before["fn"]


def test_evaluate_on_another_normal_class_and_without_run_uses_latest(
    digits_run: Path, tmp_path: Path
):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "latest").symlink_to(digits_run)
    result = run_adx_in_process("evaluate", "dataset.normal_class=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    evaluated = latest(tmp_path)
    assert evaluated != digits_run
    info = json.loads((evaluated / "run.json").read_text())
    assert info["source_run"] == str(digits_run)
    data = json.loads((evaluated / "data.json").read_text())
    assert data["normal_classes"] == ["1"] and data["counts"]["train"]["anomaly"] == 0
    # A detector of zeros does not recognise ones as normal.
    assert json.loads((evaluated / "metrics.json").read_text())["auroc"] < 0.5


def test_an_evaluate_run_can_be_evaluated_again(synthetic_run: Path, tmp_path: Path):
    first = run_adx_in_process(
        "evaluate", f"run={synthetic_run}", "threshold=best_f1", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr[-2000:]
    evaluated = latest(tmp_path)
    second = run_adx_in_process("evaluate", cwd=tmp_path)  # run= defaults to outputs/latest
    assert second.returncode == 0, second.stderr[-2000:]
    again = latest(tmp_path)
    assert again != evaluated
    assert json.loads((again / "threshold.json").read_text())["strategy"] == "best_f1"
    assert (again / "metrics.json").read_text() == (evaluated / "metrics.json").read_text()


def test_keys_of_the_runs_own_dataset_can_be_overridden(synthetic_run: Path, tmp_path: Path):
    # dataset.n_anomaly exists for synthetic only; evaluate composes with the
    # source run's dataset choice, so the key is known and the rest is kept.
    result = run_adx_in_process(
        "evaluate", f"run={synthetic_run}", "dataset.n_anomaly=50", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((latest(tmp_path) / "data.json").read_text())
    assert data["dataset"] == "synthetic"
    assert data["counts"]["val"]["anomaly"] + data["counts"]["test"]["anomaly"] == 50
    assert data["image_size"] == 16  # the run's own value, not reset to a default


def test_a_new_data_seed_is_refused_since_it_would_redraw_the_split():
    import pytest

    from anomaly_cli.errors import AdxUserError
    from anomaly_cli.tasks.evaluate import effective_config
    from tests.conftest import compose_config

    source = compose_config("train", "dataset=synthetic")
    cfg = compose_config("evaluate", "dataset=synthetic", "dataset.seed=1")
    with pytest.raises(AdxUserError, match=r"'dataset.seed=1' cannot apply; train a new run"):
        effective_config(source, cfg, ["dataset.seed=1"])
    kept = effective_config(source, cfg, ["dataset.n_anomaly=50"])
    assert kept.dataset.seed == source.dataset.seed
