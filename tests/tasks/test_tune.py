"""`adx tune`: trials as train runs, trials.csv, best_params.yaml, resuming, refusals."""

from __future__ import annotations

import json
import shlex
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from anomaly_cli.tuning import trials as trials_module
from anomaly_cli.tuning.objective import measure
from tests.conftest import TINY, assert_one_line_error, run_adx_in_process, run_dirs

FAST = (
    *TINY, "model=dense_ae", "trainer.epochs=1", "trainer.verbose=0", "logger=none",
    "report.plots=[]",
)  # fmt: skip
SPACE = "tune.space={optimizer.lr: {log: [1e-4, 1e-2]}, model.latent_dim: {choice: [4, 8, 16]}}"


def _tune(cwd: Path, *extra: str) -> tuple[str, Path]:
    result = run_adx_in_process("tune", *FAST, *extra, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = (cwd / "outputs").glob("*_tune_*")
    return result.stdout, folder


def _checkpoint_config(run: Path) -> dict:
    with zipfile.ZipFile(run / "checkpoints" / "best.keras") as archive:
        return json.loads(archive.read("config.json"))["config"]


def test_three_random_trials_and_the_best_params_rebuild_the_same_model(tmp_path: Path):
    stdout, folder = _tune(tmp_path, "tune.max_trials=3", SPACE, "report.plots=[roc]")
    trials = pd.read_csv(folder / "trials.csv")
    assert list(trials["trial"].astype(str)) == ["0", "1", "2"]
    assert set(trials["status"]) == {"finished"}
    assert trials["val_loss"].notna().all() and (trials["epochs"] == 1).all()
    assert "val_loss" in stdout and "train it again with: adx train" in stdout
    best = yaml.safe_load((folder / "best_params.yaml").read_text())
    assert best["value"] == trials["val_loss"].min()
    assert set(best["params"]) == {"optimizer.lr", "model.latent_dim"}
    best_run = Path(best["run"])
    for artifact in ("checkpoints/best.keras", "scores.csv", "metrics.json", "plots/roc.png"):
        assert (best_run / artifact).is_file(), artifact
    assert (folder / "best_metrics.json").read_text() == (best_run / "metrics.json").read_text()
    assert (folder / "keras_tuner" / "oracle.json").is_file()

    command = shlex.split(best["command"])
    assert command[:2] == ["adx", "train"] and command[2:-2] == [*FAST, "report.plots=[roc]"]
    result = run_adx_in_process(*command[1:], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (again,) = (tmp_path / "outputs").glob("*_train_*")
    assert _checkpoint_config(again) == _checkpoint_config(best_run)
    retrained = yaml.safe_load((again / "config.yaml").read_text())
    assert retrained["optimizer"]["lr"] == best["params"]["optimizer.lr"]


def test_an_interrupted_search_resumes_with_the_trials_it_had_left(tmp_path: Path, monkeypatch):
    measured: list[str] = []

    def interrupted_in_the_second_trial(objective, splits, cfg, folder):
        measured.append(folder.name)
        if len(measured) == 2:  # trial 1 has trained: Ctrl-C before it is measured
            raise KeyboardInterrupt
        return measure(objective, splits, cfg, folder)

    monkeypatch.setattr(trials_module, "measure", interrupted_in_the_second_trial)
    stopped = run_adx_in_process("tune", *FAST, "tune.max_trials=2", cwd=tmp_path)
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    (folder,) = (tmp_path / "outputs").glob("*_tune_*")
    assert f"go on with: adx tune resume={folder}" in stopped.stderr
    assert json.loads((folder / "status.json").read_text())["status"] == "interrupted"
    first = (folder / "trials" / "0" / "tune_trial.json").read_text()

    resumed = run_adx_in_process("tune", f"resume={folder}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # The trial that was running goes on in its folder; the finished one is not run again.
    assert measured == ["0", "1", "1"]
    assert json.loads((folder / "trials" / "1" / "run.json").read_text())["resumed_at_epoch"] == 1
    assert list(pd.read_csv(folder / "trials.csv")["trial"].astype(str)) == ["0", "1"]
    assert (folder / "trials" / "0" / "tune_trial.json").read_text() == first


def test_a_model_with_its_own_train_step_tunes_past_a_failed_trial(tmp_path: Path):
    _, folder = _tune(
        tmp_path,
        "model=vae",
        "model.filters=8",
        "tune.max_trials=2",
        "tune.objective=val_auroc",
        "tune.space={model.latent_dim: {choice: [0, 4]}}",
    )
    trials = pd.read_csv(folder / "trials.csv").set_index("model.latent_dim")
    # latent_dim=0 is refused when the trial builds its model: recorded, and the search goes on.
    assert trials.loc[0, "status"] == "failed" and "latent_dim" in trials.loc[0, "error"]
    assert trials.loc[4, "status"] == "finished" and 0 <= trials.loc[4, "val_auroc"] <= 1
    best = yaml.safe_load((folder / "best_params.yaml").read_text())
    assert best["objective"] == "val_auroc" and best["params"] == {"model.latent_dim": 4}
    assert (Path(best["run"]) / "checkpoints" / "best.keras").is_file()


def test_the_batch_size_search_writes_its_table(tmp_path: Path):
    stdout, folder = _tune(tmp_path, "search=batch_size", "tune.max_trials=2")
    sizes = pd.read_csv(folder / "batch_sizes.csv")
    # 60 normal training samples: N/2 = 30, then 15; the cap of two trainings ends it.
    assert list(sizes["batch_size"]) == [30, 15]
    assert sizes["auroc"].between(0, 1).all()
    assert "Batch size" in stdout and "AUROC (%)" in stdout
    best = yaml.safe_load((folder / "best_params.yaml").read_text())
    assert best["params"]["trainer.batch_size"] in (30, 15)
    assert "trainer.batch_size=" in best["command"]


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        pytest.param("tune.algorithm=grid", "tune.algorithm=grid", id="unknown algorithm"),
        pytest.param("tune.objective=test_auroc", "test_auroc", id="unknown objective"),
        pytest.param("tune.max_trials=0", "tune.max_trials=0", id="no trials"),
        pytest.param(
            "tune.space={model.latent_size: {choice: [4, 8]}}",
            "model.latent_size is not a config key",
            id="space key that is not a config key",
        ),
        pytest.param(
            "tune.space={optimizer.lr: {float: [-1.0, 0.1]}}",
            "optimizer.lr=-1.0",
            id="range that train refuses",
        ),
    ],
)
def test_bad_tune_input_is_refused_before_any_folder(tmp_path: Path, override: str, fragment: str):
    result = run_adx_in_process("tune", *FAST, override, cwd=tmp_path)
    assert_one_line_error(result, fragment)
    assert run_dirs(tmp_path) == set()


def test_a_label_objective_without_anomalies_in_val_is_refused(tmp_path: Path):
    result = run_adx_in_process(
        "tune", *FAST, "dataset.n_anomaly=0", "tune.objective=val_aupr", cwd=tmp_path
    )
    assert_one_line_error(result, "tune.objective=val_aupr", "use tune.objective=val_loss")
    assert run_dirs(tmp_path) == set()
