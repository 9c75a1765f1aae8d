"""Synthetic anomalies for DRAEM: Perlin masks, texture pasting, the anomaly-source folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf
from PIL import Image

from anomaly_cli.checks import check_anomaly_source
from anomaly_cli.data.synthetic_anomalies import (
    misaligned_textures,
    noise_textures,
    perlin_masks,
    perlin_noise,
    perlin_resolutions,
    read_source_images,
    smoothed,
    synthesize_anomalies,
)
from anomaly_cli.errors import AdxUserError


def seed(a: int, b: int = 0) -> tf.Tensor:
    return tf.constant([a, b], tf.int64)


def images(n: int = 16, size: int = 32, channels: int = 1) -> np.ndarray:
    return np.random.default_rng(0).uniform(0.2, 0.8, (n, size, size, channels)).astype("float32")


def test_resolutions_keep_cells_of_at_least_four_pixels():
    assert perlin_resolutions(16) == [1, 2, 4]
    assert perlin_resolutions(64) == [1, 2, 4, 8, 16]
    assert perlin_resolutions(256) == [1, 2, 4, 8, 16, 32]  # the paper's 2^0..2^5


def test_perlin_noise_is_smooth_gradient_noise_in_about_minus_one_to_one():
    noise = np.asarray(perlin_noise(tf.constant(8), 32, 32, 4, 4, seed(1)))
    assert noise.shape == (8, 32, 32)
    assert np.abs(noise).max() <= np.sqrt(2) and noise.std() > 0.1
    # Zero at every grid corner (the offset from its own corner is 0).
    assert np.allclose(noise[:, ::8, ::8], 0, atol=1e-6)
    # Neighbours differ far less than the noise does overall.
    assert np.abs(np.diff(noise, axis=2)).mean() < 0.3 * noise.std()


def test_masks_are_reproducible_for_a_seed_and_differ_across_seeds():
    first = np.asarray(perlin_masks(tf.constant(32), 32, 32, seed(3)))
    again = np.asarray(perlin_masks(tf.constant(32), 32, 32, seed(3)))
    other = np.asarray(perlin_masks(tf.constant(32), 32, 32, seed(4)))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert set(np.unique(first)) <= {0.0, 1.0}


def test_masks_cover_a_reasonable_share_and_vary_in_scale():
    masks = np.asarray(perlin_masks(tf.constant(256), 64, 64, seed(5)))
    cover = masks.mean(axis=(1, 2))
    shown = cover[cover > 0]
    # Most masks hold something, none swallows the image, their mean is a few to
    # a few tens of per cent (the paper's masks look like this at 256 px).
    assert len(shown) > 0.6 * len(cover)
    assert 0.03 < shown.mean() < 0.35 and cover.max() < 0.8
    # Coarse and fine grids both appear: large blobs and many small ones.
    assert shown.min() < 0.05 and shown.max() > 0.2


def test_synthesis_changes_pixels_inside_the_mask_only():
    x = images(32)
    damaged, masks = synthesize_anomalies(x, seed(7))
    damaged, masks = np.asarray(damaged), np.asarray(masks)
    assert damaged.shape == x.shape and masks.shape == x.shape[:3]
    outside = masks[..., None] == 0
    assert np.array_equal(np.broadcast_to(outside, x.shape) * damaged, outside * x)
    changed = np.abs(damaged - x).max(axis=-1) > 1e-6
    assert changed.any() and not (changed & (masks == 0)).any()
    # Inside, nearly every pixel moved (the texture rarely equals the image).
    assert changed[masks == 1].mean() > 0.9


def test_about_the_anomaly_fraction_of_samples_is_damaged():
    _, masks = synthesize_anomalies(images(64), seed(8), anomaly_fraction=0.5)
    damaged = (np.asarray(masks).sum(axis=(1, 2)) > 0).mean()
    assert 0.2 < damaged < 0.6  # half drawn, a few of those with an empty mask
    _, none = synthesize_anomalies(images(64), seed(8), anomaly_fraction=1e-9)
    assert np.asarray(none).sum() == 0


def test_synthesis_is_reproducible_for_a_seed():
    x = images(8)
    first = [np.asarray(t) for t in synthesize_anomalies(x, seed(9))]
    again = [np.asarray(t) for t in synthesize_anomalies(x, seed(9))]
    other = [np.asarray(t) for t in synthesize_anomalies(x, seed(10))]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])


def test_batch_textures_are_not_aligned_with_their_source_and_keep_its_range():
    x = images(16, channels=3)
    texture = np.asarray(misaligned_textures(x, seed(11)))
    assert texture.shape == x.shape
    assert texture.min() >= x.min() - 1e-6 and texture.max() <= x.max() + 1e-6
    assert not np.allclose(texture, x, atol=0.05)


def test_smoothed_fills_lose_the_texture_and_noise_fills_bring_another():
    x = images(8)
    flat = np.asarray(smoothed(tf.constant(x), 32, 32))
    assert np.abs(np.diff(flat, axis=2)).mean() < 0.1 * np.abs(np.diff(x, axis=2)).mean()
    assert np.isclose(flat.mean(), x.mean(), atol=0.02)
    noise = np.asarray(noise_textures(x, seed(13)))
    assert noise.shape == x.shape and x.min() <= noise.min() and noise.max() <= x.max()
    assert noise.std() > 0.05 and np.abs(noise - x).mean() > 0.1


def test_a_source_bank_fills_masks_with_its_texture():
    x = np.full((16, 32, 32, 1), 0.5, dtype="float32")
    bank = np.zeros((2, 32, 32, 1), dtype="float32")  # a black texture everywhere
    bank[:, ::2] = 1.0  # horizontal stripes
    damaged, masks = synthesize_anomalies(x, seed(12), source_bank=bank, anomaly_fraction=1.0)
    inside = np.asarray(damaged)[np.asarray(masks) == 1]
    assert len(inside) and np.abs(inside - 0.5).max() > 0.05


def write_images(folder: Path, count: int = 3, size: tuple[int, int] = (40, 24)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"texture{i}.png")


def test_source_images_are_resized_and_cropped_to_the_sample_shape(tmp_path: Path):
    write_images(tmp_path)
    paths = check_anomaly_source(str(tmp_path))
    bank = read_source_images(paths, (16, 16, 1))
    assert bank.shape == (3, 16, 16, 1) and bank.dtype == np.float32
    assert bank.min() >= 0 and bank.max() <= 1 and bank.std() > 0.05


def test_anomaly_source_is_checked_before_any_data(tmp_path: Path):
    missing = tmp_path / "nowhere"
    with pytest.raises(AdxUserError, match=rf"^model.anomaly_source={missing} does not exist"):
        check_anomaly_source(str(missing))
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdxUserError, match=r"model.anomaly_source=.*empty holds no images"):
        check_anomaly_source(str(tmp_path / "empty"))
    write_images(tmp_path / "broken", count=1)
    (tmp_path / "broken" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(AdxUserError, match=r"holds an unreadable image, \S*/broken/bad.png"):
        check_anomaly_source(str(tmp_path / "broken"))
    assert check_anomaly_source(None) == []


def test_anomaly_source_reads_sub_folders_and_keeps_an_even_spread(tmp_path: Path, monkeypatch):
    import anomaly_cli.checks

    for texture in ("banded", "dotted", "woven"):  # DTD's layout: images/<texture>/*.jpg
        write_images(tmp_path / "images" / texture, count=3)
    monkeypatch.setattr(anomaly_cli.checks, "MAX_SOURCE_IMAGES", 3)
    paths = check_anomaly_source(str(tmp_path / "images"))
    assert [p.parent.name for p in paths] == ["banded", "dotted", "woven"]
    assert [p.name for p in paths] == ["texture0.png", "texture1.png", "texture2.png"]


def test_train_config_check_names_a_missing_anomaly_source(tmp_path: Path):
    from anomaly_cli.checks import check_train_config
    from tests.conftest import compose_config

    cfg = compose_config("train", "model=draem", f"model.anomaly_source={tmp_path}/none")
    with pytest.raises(AdxUserError, match=r"^model.anomaly_source=.*/none does not exist"):
        check_train_config(OmegaConf.create(OmegaConf.to_container(cfg)))
