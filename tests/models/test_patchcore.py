"""PatchCore: coreset selection, nearest-neighbour distances, planted defects found,
save/load, and `adx train model=patchcore` through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.models.patchcore import greedy_coreset
from tests.conftest import RUN_ARTIFACTS, latest, run_adx_in_process
from tests.models.configs import model_config
from tests.models.test_backbone import SMALL_RESNET, rotated_patch_images


def patchcore_config(**changes: object) -> object:
    cfg = model_config("patchcore")
    cfg.backbone.weights = "none"
    cfg.backbone.layers = SMALL_RESNET
    return OmegaConf.merge(cfg, changes)


def batches(x: np.ndarray, size: int = 16) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(x).batch(size)


@pytest.fixture(scope="module")
def fitted():
    keras.utils.set_random_seed(0)
    train, test, labels, masks = rotated_patch_images()
    model = build_model(patchcore_config(), (32, 32, 1))
    return model.fit_statistics(batches(train)), train, test, labels, masks


def test_greedy_coreset_takes_the_farthest_point_each_time():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=np.float32)
    points = np.concatenate([c + rng.normal(0, 0.1, (50, 2)) for c in centres]).astype("float32")
    chosen = greedy_coreset(points, 4, None, np.random.default_rng(1))
    assert sorted(set(chosen // 50)) == [0, 1, 2, 3]  # one from each cluster
    assert np.array_equal(greedy_coreset(points, 500, None, rng), np.arange(200))
    # Projected (here from 2 to 2 dimensions: none), the same rule holds.
    projected = greedy_coreset(points, 4, 64, np.random.default_rng(1))
    assert sorted(set(projected // 50)) == [0, 1, 2, 3]


def test_memory_bank_holds_the_coreset_of_the_training_patches(fitted):
    model, train, *_ = fitted
    patches = np.asarray(model(train)).reshape(-1, model.feature_channels)
    assert patches.shape == (60 * 64, 256 + 512)  # 60 images of an 8x8 grid
    bank = model.memory_bank.numpy()
    assert model.memory_size == len(bank) == math.ceil(0.1 * len(patches))
    # Every row of the bank is a training patch.
    assert all(np.any(np.all(np.isclose(patches, row, atol=1e-5), axis=1)) for row in bank[:20])


def test_distances_are_to_the_nearest_bank_patch(fitted):
    model, _, test, *_ = fitted
    queries = np.asarray(model(test[:3]), dtype=np.float64).reshape(-1, model.feature_channels)
    bank = model.memory_bank.numpy().astype(np.float64)
    brute = np.sqrt(((queries[:, None, :] - bank[None]) ** 2).sum(-1)).min(axis=1)
    distances = np.asarray(model.patch_distances(test[:3]))
    assert distances.shape == (3, 8, 8)
    assert np.allclose(distances.ravel(), brute, rtol=1e-3, atol=1e-2 * brute.mean())
    assert np.allclose(model.score(test[:3]), distances.reshape(3, -1).max(axis=1))


def test_detects_rotated_patches_that_keep_the_images_energy(fitted):
    model, _, test, labels, masks = fitted
    scores = model.score(test, batch_size=8)
    assert roc_auc_score(labels, scores) > 0.9  # 1.0 measured
    maps = model.anomaly_map(test, batch_size=8)
    assert maps.shape == (40, 32, 32)
    defective = labels == 1
    assert roc_auc_score(masks[defective].ravel(), maps[defective].ravel()) > 0.75


def test_scores_do_not_depend_on_the_batch_size(fitted):
    model, _, test, *_ = fitted
    assert np.allclose(model.score(test, batch_size=40), model.score(test, batch_size=3), rtol=1e-5)


def test_save_and_load_reproduce_scores_exactly(fitted, tmp_path: Path):
    model, _, test, *_ = fitted
    model.save(tmp_path / "best.keras")
    loaded = load_checkpoint(tmp_path / "best.keras")
    assert type(loaded).__name__ == "PatchCore" and loaded.memory_size == model.memory_size
    assert np.array_equal(loaded.memory_bank.numpy(), model.memory_bank.numpy())
    assert np.array_equal(loaded.score(test, batch_size=8), model.score(test, batch_size=8))
    assert np.array_equal(loaded.anomaly_map(test[:4]), model.anomaly_map(test[:4]))


TINY_PATCHCORE = (
    "model=patchcore",
    "debug=tiny",
    "dataset.preprocess.image_size=32",
    "model.backbone.weights=none",
    f"model.backbone.layers=[{','.join(SMALL_RESNET)}]",
    "trainer.verbose=0",
)


def test_train_fits_in_one_pass_and_evaluate_and_resume_reuse_it(tmp_path: Path):
    result = run_adx_in_process("train", *TINY_PATCHCORE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = latest(tmp_path)
    missing = [name for name in RUN_ARTIFACTS if not (run / name).exists()]
    assert not missing, missing
    info = json.loads((run / "run.json").read_text())
    assert (info["epochs_run"], info["best_epoch"]) == (1, 1)
    assert json.loads((run / "metrics.json").read_text())["auroc"] > 0.8  # 0.99 measured
    history = pd.read_csv(run / "history.csv")
    assert list(history.epoch) == [1] and np.isfinite(history.loss).all()
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state["epochs_done"] == 1 and state["last_checkpoint"] is None
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.keras", "state.json"]
    scores = (run / "scores.csv").read_text()

    quick = ("trainer.verbose=0", "report.plots=[]", "logger=none")
    evaluated = run_adx_in_process("evaluate", f"run={run}", *quick, cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert (latest(tmp_path) / "scores.csv").read_text() == scores

    resumed = run_adx_in_process("train", f"resume={run}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "fitted its statistics already" in (run / "adx.log").read_text()
    assert (run / "scores.csv").read_text() == scores
