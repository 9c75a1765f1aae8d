"""The generated defect benchmark (anomaly_cli/data/defects.py): layout, seeds, masks, defects."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from anomaly_cli.data import defects, mvtec
from anomaly_cli.data.base import LoadContext
from anomaly_cli.errors import AdxUserError
from tests.conftest import REPO

SIZE = 32
SMALL = {"image_size": SIZE, "n_train": 6, "n_test_good": 3, "n_test_per_defect": 2}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A texture photo, the procedural texture and the object, 32 px."""
    root = tmp_path_factory.mktemp("defects")
    return root, defects.build_defect_dataset(
        root, categories=["gravel", "weave", "pill"], seed=3, **SMALL
    )


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_dataset_mvtec_reads_every_category_with_its_masks(built):
    root, written = built
    for category in written["categories"]:
        cfg = OmegaConf.load(REPO / "configs" / "dataset" / "mvtec.yaml")
        cfg.root, cfg.category, cfg.preprocess.image_size = str(root), category, SIZE
        splits = mvtec.load(cfg, LoadContext(seed=0))
        assert splits.class_counts()["test"] == {"good": 3, **dict.fromkeys(defects.DEFECTS, 2)}
        masks = np.stack(list(splits.test.mask_dataset().as_numpy_iterator()))
        images = np.stack(list(splits.test.dataset().as_numpy_iterator()))
        assert masks.shape == images.shape[:3] == (3 + 2 * len(defects.DEFECTS), SIZE, SIZE)
        anomalous = splits.test.labels == 1
        # Every defect image has some defect pixels, no good image has any.
        assert (masks[anomalous].reshape(int(anomalous.sum()), -1).max(axis=1) > 0).all()
        assert masks[~anomalous].max() == 0


def test_every_defect_folder_has_images_with_masks_of_their_size(built):
    root, written = built
    for category in written["categories"]:
        for defect in defects.DEFECTS:
            images = sorted((root / category / "test" / defect).glob("*.png"))
            assert len(images) == 2
            for image in images:
                mask = pixels(root / category / "ground_truth" / defect / f"{image.stem}_mask.png")
                assert mask.shape == pixels(image).shape[:2] == (SIZE, SIZE)
                assert set(np.unique(mask)) == {0, 255}


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path):
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}

    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        defects.build_defect_dataset(
            tmp_path / name, categories=["weave", "pill"], seed=seed, **SMALL
        )
    first, again, other = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert len(first) == 2 * (6 + 3 + 2 * 2 * len(defects.DEFECTS))
    assert first == again
    assert first.keys() == other.keys() and first != other


def texture_image(seed: int = 0, size: int = 64) -> np.ndarray:
    sheet = defects.texture_sheet("weave", seed)
    box = {"top": 10, "left": 20, "side": defects.CROP, "flip": 0, "turns": 0}
    return defects.crop_sheet(sheet, box, size)


@pytest.mark.parametrize("kind", defects.DEFECT_KINDS)
@pytest.mark.parametrize("size", list(defects.DEFECT_SIZES))
def test_the_mask_covers_every_changed_pixel(kind: str, size: str):
    image = texture_image()
    for seed in range(4):
        damaged, mask = defects.apply_defect(image, kind, size, np.random.default_rng(seed))
        changed = np.abs(damaged - image).max(axis=2) > 1e-6
        assert changed.any(), f"{kind} {size} seed {seed} changed nothing"
        assert not (changed & ~mask).any(), f"{kind} {size} seed {seed} changed unmasked pixels"
        # Most of the mask is really changed (it is not a loose box).
        assert changed[mask].mean() > 0.6


def test_sizes_follow_their_share_of_the_side():
    image = texture_image(size=128)
    areas = {}
    for size in defects.DEFECT_SIZES:
        masks = [
            defects.apply_defect(image, "missing_texture", size, np.random.default_rng(s))[1]
            for s in range(6)
        ]
        areas[size] = np.mean([m.sum() for m in masks])
    # Diameters 3-6 % and 12-25 % of 128 px: areas about 10-30 and 150-800 pixels.
    assert 4 <= areas["small"] <= 40 and 100 <= areas["large"] <= 900


def test_missing_texture_flattens_the_region():
    image = texture_image(size=128)
    damaged, mask = defects.apply_defect(
        image, "missing_texture", "large", np.random.default_rng(0)
    )
    before, after = image[mask].var(axis=0).sum(), damaged[mask].var(axis=0).sum()
    assert after < 0.1 * before
    # Brightness stays: only the texture goes.
    assert abs(damaged[mask].mean() - image[mask].mean()) < 0.03


@pytest.mark.parametrize("kind", ["foreign_texture", "colour_spot"])
def test_energy_neutral_kinds_keep_the_regions_brightness(kind: str):
    assert defects.ENERGY_NEUTRAL[kind]
    image = texture_image(size=128)
    for seed in range(3):
        damaged, mask = defects.apply_defect(image, kind, "large", np.random.default_rng(seed))
        luma_before, luma_after = image[mask] @ defects.LUMA, damaged[mask] @ defects.LUMA
        assert abs(luma_after.mean() - luma_before.mean()) < 0.03
        assert np.abs(damaged[mask] - image[mask]).mean() > 0.02  # yet it changed


def test_held_out_test_normals_are_not_crops_of_the_train_region(built):
    root, written = built
    crops = written["categories"]["gravel"]["crops"]
    train = [box for path, box in crops.items() if "/train/" in path]
    test = {path: box for path, box in crops.items() if "/test/" in path}
    assert len(train) == 6 and len(test) == 3 + 2 * len(defects.DEFECTS)

    def overlap(a: dict[str, int], b: dict[str, int]) -> bool:
        return all(
            a[start] < b[start] + b["side"] and b[start] < a[start] + a["side"]
            for start in ("top", "left")
        )

    for box in test.values():
        assert not any(overlap(box, seen) for seen in train), box
    assert overlap(train[0], train[0])  # the check can fail
    # Both sides draw from two opposite quadrants: the photo's left and right alike.
    assert {box["left"] < defects.QUADRANT for box in train} == {True, False}
    # The recorded box is where a test normal really comes from.
    sheet = defects.texture_sheet("gravel", 3)
    for i in range(3):
        box = crops[f"gravel/test/good/{i:03d}.png"]
        expected = np.round(defects.crop_sheet(sheet, box, SIZE) * 255)
        saved = pixels(root / "gravel" / "test" / "good" / f"{i:03d}.png").astype(float)
        assert np.abs(saved - expected).max() <= 1
    train_images = [pixels(p) for p in (root / "gravel" / "train" / "good").glob("*.png")]
    for path in (root / "gravel" / "test" / "good").glob("*.png"):
        assert all(np.abs(pixels(path).astype(int) - t).mean() > 5 for t in train_images)


def test_object_defects_sit_on_the_object(built):
    root, _ = built
    folder = root / "pill" / "ground_truth"
    for defect in ("missing_texture_large", "colour_spot_large", "foreign_texture_large"):
        for mask_path in folder.joinpath(defect).glob("*.png"):
            rows, cols = np.nonzero(pixels(mask_path))
            # The pill fills the middle: its body spans about 20-80 % x 35-65 % of the image.
            assert 0.15 * SIZE <= cols.mean() <= 0.85 * SIZE
            assert 0.25 * SIZE <= rows.mean() <= 0.75 * SIZE


def test_bad_arguments_are_one_line_errors(tmp_path: Path):
    with pytest.raises(AdxUserError, match=r"choose among brick, grass, gravel, weave, pill"):
        defects.build_defect_dataset(tmp_path, categories=["marble"])
    with pytest.raises(AdxUserError, match="n_train=0 must be at least 1"):
        defects.build_defect_dataset(tmp_path, categories=["weave"], n_train=0)


def test_photographs_without_scikit_image_say_what_to_install(tmp_path, monkeypatch):
    # None in sys.modules makes `import skimage` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(AdxUserError, match=r"pip install \"scikit-image>=0.22\".*weave, pill"):
        defects.build_defect_dataset(tmp_path, categories=["brick"], **SMALL)
    # The procedural categories need no scikit-image, foreign patches included.
    written = defects.build_defect_dataset(tmp_path, categories=["weave"], **SMALL)
    assert written["categories"]["weave"]["train"] == 6
