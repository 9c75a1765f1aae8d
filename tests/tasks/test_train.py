"""`adx train` end to end on the bundled digits and on synthetic planted anomalies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tests.conftest import RUN_ARTIFACTS, latest, run_adx, run_adx_in_process, train_run


def _check_run_dir(run: Path, dataset: str) -> dict:
    for name in RUN_ARTIFACTS:
        assert (run / name).is_file(), f"{run.name} lacks {name}"
    assert run.name.split("_", 2)[2] == f"train_conv_ae_{dataset}"
    metrics = json.loads((run / "metrics.json").read_text())
    scores = pd.read_csv(run / "scores.csv")
    assert list(scores.columns) == ["id", "label", "score", "prediction"]
    threshold = json.loads((run / "threshold.json").read_text())
    assert threshold["fitted_on"] == "val" and threshold["strategy"] == "percentile"
    # metrics.json agrees with the per-sample file it summarises
    assert np.array_equal(scores["prediction"], (scores["score"] > threshold["value"]).astype(int))
    assert metrics["tp"] == int(((scores["prediction"] == 1) & (scores["label"] == 1)).sum())
    assert metrics["tn"] == int(((scores["prediction"] == 0) & (scores["label"] == 0)).sum())
    assert "| AUROC" in (run / "metrics.txt").read_text()
    history = pd.read_csv(run / "history.csv")
    assert {"epoch", "loss", "val_loss"} <= set(history.columns)
    info = json.loads((run / "run.json").read_text())
    assert info["train_seconds"] > 0 and 1 <= info["best_epoch"] <= info["epochs_run"]
    assert info["counts"]["train"]["anomaly"] == 0
    assert (run / "plots/roc.png").read_bytes()[:4] == b"\x89PNG"
    return metrics


def test_synthetic_planted_anomalies_are_found(synthetic_run: Path):
    metrics = _check_run_dir(synthetic_run, "synthetic")
    assert metrics["auroc"] > 0.9
    assert (synthetic_run.parent / "latest").resolve() == synthetic_run


def test_digits_zero_against_the_rest(digits_run: Path):
    metrics = _check_run_dir(digits_run, "digits")
    assert metrics["auroc"] > 0.9
    config = yaml.safe_load((digits_run / "config.yaml").read_text())
    assert config["dataset"]["normal_class"] == 0 and config["trainer"]["seed"] == 555


def test_train_prints_the_metrics_table(tmp_path: Path):
    result = run_adx_in_process("train", "debug=tiny", "trainer.epochs=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| Metric" in result.stdout and "| AUROC" in result.stdout
    assert "Run directory:" in result.stdout


def test_same_seed_gives_identical_scores(tmp_path: Path):
    overrides = ("debug=tiny", "trainer.epochs=3")
    # The first in a process of its own, the others in this one: the same bytes
    # either way, so nothing a process leaves behind reaches the next run.
    own = run_adx("train", *overrides, cwd=tmp_path)
    assert own.returncode == 0, own.stderr[-2000:]
    first = latest(tmp_path)
    second = train_run(tmp_path, *overrides)
    assert first != second
    assert (first / "scores.csv").read_bytes() == (second / "scores.csv").read_bytes()
    third = train_run(tmp_path, *overrides, "trainer.seed=1")
    assert (first / "scores.csv").read_bytes() != (third / "scores.csv").read_bytes()


def test_multirun_writes_one_complete_run_per_job(tmp_path: Path):
    args = ("--multirun", "debug=tiny", "trainer.epochs=1", "model.latent_dim=4,8")
    result = run_adx_in_process("train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name[:1].isdigit())
    assert jobs == ["0_conv_ae_synthetic", "1_conv_ae_synthetic"]  # beside the summary's plots/
    dims = [
        yaml.safe_load((sweep / j / "config.yaml").read_text())["model"]["latent_dim"] for j in jobs
    ]
    assert dims == [4, 8]
    assert all((sweep / j / "metrics.json").is_file() for j in jobs)


def test_unsupervised_protocol_trains_on_the_contaminated_set_without_labels(tmp_path: Path):
    run = train_run(
        tmp_path,
        "dataset=synthetic",
        "protocol=unsupervised",
        "protocol.contamination=0.2",
        "trainer.epochs=8",
    )
    data = json.loads((run / "data.json").read_text())
    assert data["protocol"] == "unsupervised"
    assert data["counts"]["train"] == data["counts"]["test"] == {"normal": 600, "anomaly": 150}
    # early stopping watched the training loss: no labels, so no val loss either
    assert "val_loss" not in pd.read_csv(run / "history.csv").columns
    assert json.loads((run / "metrics.json").read_text())["auroc"] > 0.8


def test_transductive_protocol_scores_every_normal_sample(tmp_path: Path):
    run = train_run(
        tmp_path,
        "dataset=digits",
        "protocol=transductive",
        "dataset.n_anomalies=100",
        "trainer.epochs=1",  # what is checked is which samples go where
    )
    data = json.loads((run / "data.json").read_text())
    assert data["counts"]["train"] == {"normal": 178, "anomaly": 0}
    assert data["counts"]["test"] == data["counts"]["val"] == {"normal": 178, "anomaly": 100}
    assert len(pd.read_csv(run / "scores.csv")) == 278
