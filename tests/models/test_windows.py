"""Full-size images through windows: the window grid, stitching, crops in the
training pipeline, and a conv autoencoder built for windows that finds a small
defect in larger images."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from anomaly_cli.data.base import ArraySplit
from anomaly_cli.data.pipeline import training_batches, validation_batches
from anomaly_cli.errors import AdxUserError
from anomaly_cli.models import windows as windows_module
from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.models.windows import (
    cut_windows,
    smooth_maps,
    stitch,
    window_grid,
    window_starts,
)
from anomaly_cli.scoring.reconstruction import top_fraction_mean
from tests.conftest import RUN_ARTIFACTS, latest, run_adx_in_process, train_run
from tests.models.planted import fit_briefly

CFG = OmegaConf.create(
    {
        "_target_": "anomaly_cli.models.conv_ae.ConvAutoencoder",
        "name": "conv_ae",
        "num_hidden_layers": 2,
        "filters": 8,
        "units": [],
        "latent_dim": 16,
        "loss": "mse",
        "score": "top_k_mean",
        "window_size": 16,
        "window_stride": None,
        "map_sigma": None,
    }
)


@pytest.mark.parametrize(("length", "size", "stride"), [(32, 16, 8), (30, 16, 8), (20, 8, 7)])
def test_windows_cover_every_pixel_and_end_at_the_edge(length: int, size: int, stride: int):
    starts = window_starts(length, size, stride)
    covered = np.zeros(length, dtype=bool)
    for start in starts:
        covered[start : start + size] = True
    assert covered.all() and starts[0] == 0 and starts[-1] == length - size
    assert all(0 < b - a <= stride for a, b in itertools.pairwise(starts))


@pytest.mark.parametrize(("size", "stride"), [(8, 4), (8, 8), (8, 3), (20, 20)])
def test_stitching_the_windows_of_an_image_gives_the_image_back(size: int, stride: int):
    images = np.random.default_rng(1).uniform(size=(3, 20, 26, 2))
    grid = window_grid(20, 26, size, stride)
    assert np.allclose(stitch(cut_windows(images, grid, size), grid, images.shape[1:]), images)


def test_stitching_averages_overlapping_windows():
    # Three 4x4 windows across an 4x8 map (starts 0, 2, 4), holding 0, 3 and 6:
    # columns 0-1 see window 0, 2-3 windows 0 and 1, 4-5 windows 1 and 2, 6-7 window 2.
    grid = window_grid(4, 8, 4, 2)
    assert grid == [(0, 0), (0, 2), (0, 4)]
    windows = np.stack([np.full((4, 4), value, dtype=float) for value in (0.0, 3.0, 6.0)])
    expected = np.tile([0.0, 0.0, 1.5, 1.5, 4.5, 4.5, 6.0, 6.0], (4, 1))
    assert np.array_equal(stitch(windows, grid, (4, 8))[0], expected)


def test_smoothing_keeps_the_mean_and_top_fraction_takes_the_largest():
    maps = np.zeros((2, 16, 16))
    maps[0, 8, 8] = 1.0
    smoothed = smooth_maps(maps, 2.0)
    assert smoothed[0].max() < 1.0 and np.isclose(smoothed[0].sum(), 1.0)
    assert smooth_maps(maps, 0.0) is maps
    values = np.arange(100, dtype=float).reshape(1, 10, 10)
    assert top_fraction_mean(values, 0.05)[0] == np.mean([95, 96, 97, 98, 99])


def split_of(images: np.ndarray) -> ArraySplit:
    count = len(images)
    return ArraySplit(
        x=images,
        labels=np.zeros(count, dtype=np.int8),
        ids=np.arange(count).astype(str),
        classes=np.full(count, "normal"),
    )


def test_training_crops_are_random_per_epoch_and_reproducible():
    images = np.random.default_rng(0).uniform(size=(6, 24, 24, 1)).astype("float32")
    split = split_of(images)

    def crops(seed: int) -> np.ndarray:
        return np.concatenate([x for x, _ in training_batches(split, 3, seed, 0, 2, window=8)])

    first = crops(0)
    assert first.shape == (12, 8, 8, 1)
    assert np.array_equal(first, crops(0)) and not np.array_equal(first, crops(1))
    # Every crop is a window of some image.
    windows = cut_windows(images, window_grid(24, 24, 8, 1), 8)
    assert all(np.isclose(windows, crop).all(axis=(1, 2, 3)).any() for crop in first)
    validation = [np.concatenate([x for x, _ in validation_batches(split, 4, 8)]) for _ in "ab"]
    assert validation[0].shape == (6, 8, 8, 1) and np.array_equal(*validation)


def test_a_windowed_model_reconstructs_maps_and_reloads_whole_images(tmp_path: Path):
    model = build_model(CFG, (40, 40, 1))
    assert model.network_shape == (16, 16, 1) and model.map_smoothing == 4.0
    x = np.random.default_rng(0).uniform(size=(3, 40, 40, 1)).astype("float32")
    assert model.reconstruct(x).shape == x.shape
    assert model.anomaly_map(x).shape == (3, 40, 40)
    path = tmp_path / "best.keras"
    model.save(path)
    loaded = load_checkpoint(path)
    assert loaded.window_size == 16 and loaded.sample_shape == (40, 40, 1)
    assert np.array_equal(model.score(x, batch_size=1), loaded.score(x, batch_size=3))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"window_size": 64}, r"model.window_size=64 is larger than the 40x40 images"),
        ({"window_size": None, "window_stride": 8}, r"model.window_stride=8 needs"),
        ({"window_stride": 20}, r"model.window_stride=20 is larger than model.window_size=16"),
        ({"window_size": 4}, r"model.window_size=4 must be >= 8"),
        # The sides the network cannot halve are the window's, and the message says so.
        ({"window_size": 10}, r"divisible by 4; model.window_size=10 gives windows of 10x10$"),
    ],
)
def test_window_settings_that_cannot_work_are_refused(settings: dict, message: str):
    with pytest.raises(AdxUserError, match=message):
        build_model(OmegaConf.merge(CFG, settings), (40, 40, 1))


def textured(count: int, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """Stripes of random phase and light noise: every window looks alike."""
    cols = np.arange(size)[None, None, :]
    phase = rng.uniform(0, 2 * np.pi, (count, 1, 1))
    stripes = 0.5 + 0.3 * np.sin(2 * np.pi * cols / 6 + phase)
    images = np.repeat(stripes, size, axis=1) + 0.03 * rng.normal(size=(count, size, size))
    return images[..., None].astype("float32")


def test_windows_find_a_small_defect_that_keeps_the_image_energy():
    """A 6x6 patch turned by 90 degrees (same pixels, so the same energy) in 48 px
    stripes; the model sees 16 px windows only."""
    rng = np.random.default_rng(0)
    train, test = textured(160, rng), textured(40, rng)
    labels = np.r_[np.zeros(20), np.ones(20)].astype(int)
    for image in test[20:]:
        top, left = rng.integers(4, 38, size=2)
        image[top : top + 6, left : left + 6] = np.rot90(image[top : top + 6, left : left + 6])
    model = build_model(CFG, (48, 48, 1))
    crops = np.concatenate(
        [x for x, _ in training_batches(split_of(train), 32, 0, 0, 6, window=16)]
    )
    fit_briefly(model, crops, epochs=3, batch_size=32, learning_rate=3e-3)
    auroc = roc_auc_score(labels, model.score(test, top_k=0.01))
    assert auroc > 0.8, auroc


def test_train_and_evaluate_with_windows_end_to_end(tmp_path: Path):
    run = train_run(
        tmp_path,
        "debug=tiny",
        "dataset.preprocess.image_size=32",
        "model.num_hidden_layers=2",
        "model.window_size=16",
        "model.score=top_k_mean",
    )
    for name in RUN_ARTIFACTS:
        assert (run / name).is_file(), f"{run.name} lacks {name}"
    trained = pd.read_csv(run / "scores.csv")
    assert len(trained) > 0 and trained["score"].notna().all()
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["window_size"] == 16
    result = run_adx_in_process("evaluate", f"run={run}", "trainer.verbose=0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    evaluated = pd.read_csv(latest(tmp_path) / "scores.csv")
    assert np.array_equal(evaluated["score"], trained["score"])


def test_sliding_reconstruction_calls_the_network_on_bounded_chunks(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(windows_module, "WINDOW_BATCH", 50)
    images = np.random.default_rng(0).uniform(size=(3, 40, 40, 2)).astype("float32")
    seen: list[int] = []

    def identity(windows: np.ndarray) -> np.ndarray:
        seen.append(len(windows))
        return windows

    rebuilt = windows_module.sliding_reconstruction(images, 8, 4, identity)
    assert np.allclose(rebuilt, images, atol=1e-6)
    # 9 x 9 windows per image, 243 in all: chunks of at most WINDOW_BATCH.
    assert sum(seen) == 3 * 81 and len(seen) > 1
    assert max(seen) == 50
