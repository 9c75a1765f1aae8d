"""PatchCore: coreset selection, nearest-neighbour distances, its memory bank, and
`adx train model=patchcore` through the CLI (what it shares with PaDiM is tested
in test_feature_embedding.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly_cli.models.loading import load_checkpoint
from anomaly_cli.models.patchcore import greedy_coreset
from tests.conftest import RUN_ARTIFACTS, latest, run_adx_in_process
from tests.models.conftest import batches
from tests.models.test_backbone import SMALL_RESNET


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


def test_greedy_coreset_stops_at_the_distinct_rows():
    rows = np.repeat(np.eye(3, 5, dtype=np.float32), 40, axis=0)  # 3 distinct rows, 120 in all
    chosen = greedy_coreset(rows, 10, None, np.random.default_rng(0))
    assert len(chosen) == 3 and sorted(set(chosen // 40)) == [0, 1, 2]


def test_memory_bank_holds_the_coreset_of_the_training_patches(fitted_patchcore):
    model, train, *_ = fitted_patchcore
    patches = np.asarray(model(train)).reshape(-1, model.feature_channels)
    assert patches.shape == (60 * 64, 256 + 512)  # 60 images of an 8x8 grid
    bank = model.memory_bank.numpy()
    assert model.memory_size == len(bank) == math.ceil(0.1 * len(patches))
    # Every row of the bank is a training patch.
    assert all(np.any(np.all(np.isclose(patches, row, atol=1e-5), axis=1)) for row in bank[:20])


def test_distances_are_to_the_nearest_bank_patch(fitted_patchcore):
    model, _, test, *_ = fitted_patchcore
    queries = np.asarray(model(test[:3]), dtype=np.float64).reshape(-1, model.feature_channels)
    bank = model.memory_bank.numpy().astype(np.float64)
    brute = np.sqrt(((queries[:, None, :] - bank[None]) ** 2).sum(-1)).min(axis=1)
    distances = np.asarray(model.patch_distances(test[:3]))
    assert distances.shape == (3, 8, 8)
    assert np.allclose(distances.ravel(), brute, rtol=1e-3, atol=1e-2 * brute.mean())
    assert np.allclose(model.score(test[:3]), distances.reshape(3, -1).max(axis=1))


def test_reloads_its_memory_bank(fitted_patchcore, tmp_path: Path):
    model, *_ = fitted_patchcore
    model.save(tmp_path / "best.keras")
    loaded = load_checkpoint(tmp_path / "best.keras")
    assert type(loaded).__name__ == "PatchCore" and loaded.memory_size == model.memory_size > 1
    assert np.array_equal(loaded.memory_bank.numpy(), model.memory_bank.numpy())


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


def test_more_training_patches_than_memory_allows_are_sampled_from_the_whole_split(
    fitted_patchcore,
):
    model, train, *_ = fitted_patchcore
    patches = np.asarray(model(train)).reshape(-1, model.feature_channels)  # 60 x 64 rows
    every = model._training_patches(batches(train), 10_000, np.random.default_rng(0))
    assert np.array_equal(every, patches)
    sampled = model._training_patches(batches(train), 300, np.random.default_rng(0))
    assert sampled.shape == (300, model.feature_channels)
    # Each kept row is a training patch; they come from all over the split, not its start.
    sources = [int(np.argmin(np.abs(patches - row).sum(axis=1))) for row in sampled]
    assert np.allclose(patches[sources], sampled)
    assert np.mean(np.array(sources) >= 300) > 0.8  # uniform: 3540 of 3840 rows lie past 300
