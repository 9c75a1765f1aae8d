"""Logging backends (`logger=tensorboard|csv|none|mlflow`, docs/logging.md).

The default (tensorboard) is read from the session's `tiny_run`; the others
each train one tiny run in process, csv and mlflow with a resume, since going
on across a resume is what a hand-written logger gets wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.logging_backends import check_logger
from anomaly_cli.logging_backends.mlflow_backend import flat_params
from tests.conftest import (
    FAST_TRAIN,
    TINY,
    assert_one_line_error,
    run_adx_in_process,
    run_dirs,
    train_run,
)

# What a one-epoch tiny run is, so that `resume=` can add a second.
ONE_EPOCH = (*TINY, "trainer.epochs=1")


def _resume(run: Path, cwd: Path) -> Path:
    result = run_adx_in_process("train", f"resume={run}", "trainer.epochs=2", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def _events(folder: Path) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Tag -> (step, value) of each event in the TensorBoard event files in `folder`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    return {
        tag: [(e.step, make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
        for tag in events.Tags()["tensors"]
    }


def test_an_unknown_logger_is_refused_with_the_choices() -> None:
    with pytest.raises(AdxUserError, match=r"choose logger=tensorboard\|csv\|none\|mlflow"):
        check_logger(OmegaConf.create({"name": "wandb"}))
    check_logger(None)  # a run configured before `logger` existed


def test_mlflow_missing_is_one_line_before_any_folder(tmp_path: Path, monkeypatch) -> None:
    import anomaly_cli.logging_backends as backends

    monkeypatch.setattr(backends, "_installed", lambda package: package != "mlflow")
    result = run_adx_in_process("train", "debug=tiny", "logger=mlflow", cwd=tmp_path)
    assert_one_line_error(result, "logger=mlflow", "pip install 'anomaly-cli[mlflow]'")
    assert run_dirs(tmp_path) == set()


def test_params_are_the_config_flattened() -> None:
    params = flat_params({"trainer": {"epochs": 2, "lr": None}, "plots": ["roc"], "x": "a" * 7000})
    assert params == {
        "trainer.epochs": "2",
        "trainer.lr": "None",
        "plots": '["roc"]',
        "x": "a" * 6000,
    }


def test_the_default_logger_writes_epochs_and_test_results_to_tensorboard(tiny_run: Path) -> None:
    assert OmegaConf.load(tiny_run / "config.yaml").logger.name == "tensorboard"
    history = pd.read_csv(tiny_run / "history.csv")
    train, val, test = (_events(tiny_run / "tb" / sub) for sub in ("train", "validation", "test"))
    assert {"epoch_loss", "epoch_learning_rate"} <= set(train) and "epoch_loss" in val
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], history["loss"], rtol=1e-6)

    metrics = json.loads((tiny_run / "metrics.json").read_text())
    ((step, auroc),) = test["test/auroc"]
    assert step == len(history) and float(auroc) == pytest.approx(metrics["auroc"], rel=1e-6)
    assert "test/threshold" in test and "test/metrics" in test
    scores = pd.read_csv(tiny_run / "scores.csv")
    side = json.loads((tiny_run / "data.json").read_text())["input_shape"][0]
    for name, label in (("normal", 0), ("anomaly", 1)):
        ((_, buckets),) = test[f"scores/{name}"]  # (left edge, right edge, count) rows
        assert buckets[:, 2].sum() == (scores["label"] == label).sum() > 0
        # Originals in a row above their reconstructions: 2 rows of 4 test images.
        ((_, image),) = test[f"reconstructions/{name}"]  # width, height, PNG
        assert (int(image[0]), int(image[1])) == (4 * side, 2 * side)
        assert image[2].startswith(b"\x89PNG")


def test_logger_none_writes_nothing_more_and_changes_no_number(
    tmp_path: Path, tiny_run: Path
) -> None:
    run = train_run(tmp_path, *TINY, "trainer.epochs=2", "logger=none")
    for extra in ("tb", "logs", "mlflow.json"):
        assert not (run / extra).exists(), extra
    assert (tiny_run / "tb").is_dir()  # the same run with the default logger
    for name in ("scores.csv", "history.csv", "metrics.json", "threshold.json"):
        assert (run / name).read_bytes() == (tiny_run / name).read_bytes(), name
    assert {p.name for p in (tmp_path / "outputs").iterdir()} == {"latest", run.name}


def test_logger_csv_goes_on_across_a_resume(tmp_path: Path) -> None:
    run = _resume(train_run(tmp_path, *ONE_EPOCH, "logger=csv"), tmp_path)
    log = pd.read_csv(run / "logs" / "scalars.csv")
    assert list(log.columns) == ["epoch", "split", "name", "value", "time"]
    epochs = log[log["split"] != "test"]
    # One row per epoch and value, epoch 1 from the first run, epoch 2 from the resume.
    assert not epochs.duplicated(["epoch", "split", "name"]).any()
    history = pd.read_csv(run / "history.csv")
    loss = epochs[(epochs["split"] == "train") & (epochs["name"] == "loss")]
    assert list(loss["epoch"]) == list(history["epoch"]) == [1, 2]
    np.testing.assert_allclose(loss["value"], history["loss"], rtol=1e-12)
    assert {"learning_rate", "epoch_seconds"} <= set(epochs["name"])
    assert set(epochs[epochs["split"] == "val"]["name"]) == {"loss"}
    # The test rows of the first run's end are replaced by the resumed run's.
    test = log[log["split"] == "test"].set_index("name")["value"]
    assert set(log[log["split"] == "test"]["epoch"]) == {2} and test.index.is_unique
    metrics = json.loads((run / "metrics.json").read_text())
    assert test["auroc"] == pytest.approx(metrics["auroc"])
    threshold = json.loads((run / "threshold.json").read_text())["value"]
    assert test["threshold"] == pytest.approx(threshold)
    assert not (run / "tb").exists()


def test_logger_mlflow_logs_to_a_local_store_and_resumes_its_run(
    tmp_path: Path, monkeypatch
) -> None:
    pytest.importorskip("mlflow", reason="logger=mlflow needs: pip install 'anomaly-cli[mlflow]'")
    from mlflow import MlflowClient

    run = train_run(tmp_path, *ONE_EPOCH, "logger=mlflow")
    first = json.loads((run / "mlflow.json").read_text())
    _resume(run, tmp_path)
    saved = json.loads((run / "mlflow.json").read_text())
    assert saved == first  # the same MLflow run goes on
    store = tmp_path / "outputs" / "mlruns"
    assert saved["tracking_uri"] == store.as_uri() and store.is_dir()

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=saved["tracking_uri"])
    logged = client.get_run(saved["run_id"])
    assert logged.info.status == "FINISHED" and logged.info.run_name == run.name
    params = logged.data.params
    assert params["model.name"] == "conv_ae" and params["dataset.name"] == "synthetic"
    # A resume may change trainer.epochs: the first value stays, the new one is a tag.
    assert params["trainer.epochs"] == "1" and logged.data.tags["resumed.trainer.epochs"] == "2"
    history = pd.read_csv(run / "history.csv")
    losses = client.get_metric_history(saved["run_id"], "loss")
    assert [m.step for m in losses] == [1, 2]
    np.testing.assert_allclose([m.value for m in losses], history["loss"], rtol=1e-12)
    metrics = json.loads((run / "metrics.json").read_text())
    assert logged.data.metrics["test_auroc"] == pytest.approx(metrics["auroc"])
    artifacts = {a.path for a in client.list_artifacts(saved["run_id"])}
    assert {"metrics.json", "threshold.json", "config.yaml", "plots"} <= artifacts
    plots = [a.path for a in client.list_artifacts(saved["run_id"], "plots")]
    assert plots and all(p.endswith(".png") for p in plots)


def test_a_gone_or_moved_mlflow_run_is_not_resumed() -> None:
    """Resume never fails for a logger's sake: an MLflow run that is gone gets a new one."""
    from anomaly_cli.logging_backends.mlflow_backend import _existing_run

    class Gone:
        def get_run(self, run_id: str):
            raise RuntimeError(f"run {run_id} not found")

    saved = {"tracking_uri": "file:///x", "run_id": "abc"}
    assert _existing_run(Gone(), saved, "file:///x") is None
    assert _existing_run(Gone(), saved, "file:///elsewhere") is None


def test_every_logger_has_a_config_and_the_evaluate_of_a_logged_run_composes() -> None:
    from anomaly_cli.config_dir import config_groups
    from anomaly_cli.logging_backends import LOGGERS
    from tests.conftest import compose_config

    assert sorted(config_groups()["logger"]) == sorted(LOGGERS)
    # evaluate carries a run's group choices over, logger=... among them.
    assert compose_config("evaluate", "logger=mlflow").logger.name == "mlflow"
    assert compose_config("train", *FAST_TRAIN).logger.name == "tensorboard"
