from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf

from anomaly_cli.data import mvtec
from anomaly_cli.data.base import LoadContext
from anomaly_cli.errors import AdxUserError
from tests.conftest import REPO, latest, run_adx, run_adx_in_process, run_dirs
from tests.data.fixtures_mvtec import make_mvtec_fixture

SEED = 555


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One untouched fake category (40 train good, 8 test good, 6 crack, 6 hole)."""
    root = tmp_path_factory.mktemp("mvtec")
    return root, make_mvtec_fixture(root)


@pytest.fixture
def own_tree(tmp_path: Path) -> Path:
    """A small category a test may damage."""
    make_mvtec_fixture(tmp_path, n_train=6, n_test_good=2, n_per_defect=2)
    return tmp_path


def config(root: Path, **overrides) -> DictConfig:
    """configs/dataset/mvtec.yaml (the schema) with `overrides` (dotted keys) applied."""
    cfg = OmegaConf.load(REPO / "configs" / "dataset" / "mvtec.yaml")
    cfg.root = str(root)
    cfg.preprocess.image_size = 32
    for key, value in overrides.items():
        OmegaConf.update(cfg, key.replace("__", "."), value, merge=False)
    return cfg


def load(root: Path, seed: int = SEED, **overrides):
    return mvtec.load(config(root, **overrides), LoadContext(seed=seed))


def test_keeps_mvtecs_own_division_and_records_it(tree):
    root, _ = tree
    splits = load(root)
    assert splits.input_shape == (32, 32, 3)
    assert splits.class_counts() == {
        "train": {"good": 32},
        "val": {"good": 8},
        "test": {"good": 8, "crack": 6, "hole": 6},
    }
    assert [len(s.ids) for s in (splits.train, splits.val, splits.test)] == [32, 8, 20]
    assert all(i.startswith("hazelnut/train/good/") for i in splits.train.ids)
    assert all(i.startswith("hazelnut/train/good/") for i in splits.val.ids)
    assert not set(splits.train.ids) & set(splits.val.ids)
    assert all(i.startswith("hazelnut/test/") for i in splits.test.ids)
    assert splits.test.labels.tolist() == [int(c != "good") for c in splits.test.classes]
    info = splits.info
    assert info["classes"] == ["good", "crack", "hole"]
    assert info["anomaly_classes"] == ["crack", "hole"] and info["normal_classes"] == ["good"]
    assert (info["category"], info["masks_found"], info["skipped_files"]) == ("hazelnut", 12, [])
    assert info["val_fraction"] == 0.2 and info["val_anomaly_fraction"] == 0.0
    assert info["preprocessing"]["image_size"] == 32 and info["preprocessing"]["channels"] == "rgb"


def test_val_is_seeded_and_can_borrow_test_anomalies_per_defect(tree):
    root, _ = tree
    a, b, c = (load(root, seed=s, val_anomaly_fraction=0.5) for s in (1, 1, 2))
    assert a.class_counts()["val"] == {"good": 8, "crack": 3, "hole": 3}
    assert a.class_counts()["test"] == {"good": 8, "crack": 3, "hole": 3}
    assert len(a.val.ids) == len(a.test.ids) == 14 and not set(a.val.ids) & set(a.test.ids)
    assert list(a.val.ids) == list(b.val.ids)
    assert list(a.val.ids) != list(c.val.ids)


@pytest.mark.parametrize("image_size", [32, 16])
def test_masks_lie_exactly_on_the_patches(tree, image_size):
    root, patches = tree
    test = load(root, preprocess__image_size=image_size).test
    masks = np.stack(list(test.mask_dataset().as_numpy_iterator()))
    assert masks.shape == (20, image_size, image_size)
    scale = 32 // image_size
    for sample_id, mask in zip(test.ids, masks, strict=True):
        expected = np.zeros((image_size, image_size))
        if sample_id in patches:
            top, left, side = (v // scale for v in patches[sample_id])
            expected[top : top + side, left : left + side] = 1
        assert np.array_equal(mask, expected), sample_id
    if image_size == 32:  # the bright pixels of each image are exactly its mask
        images = np.stack(list(test.dataset().as_numpy_iterator()))
        assert np.array_equal(images.min(axis=-1) > 0.9, masks > 0)


def test_anomaly_classes_pick_defects_by_name_or_index(tree):
    root, _ = tree
    crack = load(root, anomaly_classes="crack")
    assert crack.class_counts()["test"] == {"good": 8, "crack": 6}
    assert crack.info["anomaly_classes"] == ["crack"]
    assert load(root, anomaly_classes=[1]).class_counts()["test"] == {"good": 8, "hole": 6}


def test_n_anomalies_and_anomaly_ratio_subsample_test_anomalies(tree):
    root, _ = tree
    assert load(root, n_anomalies=4).test.counts() == {"normal": 8, "anomaly": 4}
    # 0.2 = anomalies / all: 2 anomalies beside 8 good images.
    assert load(root, anomaly_ratio=0.2).test.counts() == {"normal": 8, "anomaly": 2}


def test_unknown_defect_lists_the_defects_present(tree):
    root, _ = tree
    with pytest.raises(AdxUserError, match=r"anomaly_classes=scratch .*present: crack, hole$"):
        load(root, anomaly_classes="scratch")
    with pytest.raises(AdxUserError, match=r"names good, MVTec's normal class.*crack, hole"):
        load(root, anomaly_classes=["good", "crack"])


def test_missing_category_lists_the_categories_under_root(tree, tmp_path):
    root, _ = tree
    with pytest.raises(
        AdxUserError, match=r"dataset.category=bottle is not under .*; categories there: hazelnut$"
    ):
        load(root, category="bottle")
    with pytest.raises(AdxUserError, match=r"dataset.root=.*missing does not exist"):
        load(tmp_path / "missing")
    with pytest.raises(
        AdxUserError, match=re.escape(f"looks like a category itself; set dataset.root={root} ")
    ):
        load(root / "hazelnut")


def test_defect_image_without_mask_is_an_error_naming_it(own_tree):
    (own_tree / "hazelnut/ground_truth/hole/001_mask.png").unlink()
    with pytest.raises(
        AdxUserError,
        match=r"defect image \S+/test/hole/001.png has no mask \(expected "
        r"\S+/ground_truth/hole/001_mask.png\); add the mask or remove the image$",
    ):
        load(own_tree)


def test_mask_without_image_is_an_error_naming_it(own_tree):
    truth = own_tree / "hazelnut/ground_truth/crack"
    shutil.copy(truth / "000_mask.png", truth / "007_mask.png")
    with pytest.raises(
        AdxUserError,
        match=r"mask \S+/crack/007_mask.png has no image \(expected \S+/test/crack/007.png\)",
    ):
        load(own_tree)


def test_corrupt_files_are_skipped_and_recorded_or_fatal_when_strict(own_tree):
    broken_image = own_tree / "hazelnut/test/good/000.png"
    broken_mask = own_tree / "hazelnut/ground_truth/crack/000_mask.png"
    for path in (broken_image, broken_mask):
        path.write_bytes(path.read_bytes()[:40])  # truncated PNG
    splits = load(own_tree)
    assert splits.class_counts()["test"] == {"good": 1, "crack": 1, "hole": 2}
    assert {s["path"] for s in splits.info["skipped_files"]} == {
        str(broken_image),
        str(broken_mask),
    }
    assert "hazelnut/test/crack/000.png" not in splits.test.ids  # its mask is unreadable
    with pytest.raises(AdxUserError, match=r"cannot read image .* \(and 1 more\).*strict=false"):
        load(own_tree, strict=True)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"val_fraction": 0.0}, "dataset.val_fraction=0.0 must lie between 0 and 1"),
        ({"val_anomaly_fraction": 1}, "dataset.val_anomaly_fraction=1 must lie between 0"),
        ({"n_anomalies": 2, "anomaly_ratio": 0.1}, "both set; keep one of them"),
        ({"n_anomalies": 9}, "n_anomalies=9 must lie between 1 and the 4 anomalies"),
        ({"root": None}, "dataset.root is not set"),
    ],
)
def test_bad_settings_are_one_line_errors(own_tree, overrides, message):
    cfg = config(own_tree)
    cfg.merge_with(overrides)
    with pytest.raises(AdxUserError, match=message):
        mvtec.load(cfg, LoadContext(seed=SEED))


def test_only_the_clean_protocol_applies(own_tree):
    with pytest.raises(AdxUserError, match="protocol=transductive does not apply to dataset=mvtec"):
        mvtec.load(config(own_tree), LoadContext(seed=SEED, protocol="transductive"))


def test_train_finds_planted_defects_and_scores_pixels(tree, tmp_path):
    root, _ = tree
    args = ("dataset=mvtec", f"dataset.root={root}", "dataset.preprocess.image_size=32")
    result = run_adx_in_process(
        "train", *args, "trainer.epochs=3", "trainer.verbose=0", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = latest(tmp_path)
    assert json.loads((run / "metrics.json").read_text())["auroc"] >= 0.85
    pixel = json.loads((run / "pixel_metrics.json").read_text())
    assert pixel["pixel_auroc"] >= 0.8
    assert (pixel["images"], pixel["anomalous_pixels"]) == (20, 6 * 36 + 6 * 64)
    data = json.loads((run / "data.json").read_text())
    assert (data["dataset"], data["source"], data["category"]) == ("mvtec", "MVTec AD", "hazelnut")
    assert data["class_counts"]["test"] == {"crack": 6, "good": 8, "hole": 6}
    assert data["counts"]["val"] == {"normal": 8, "anomaly": 0}
    assert data["skipped_files"] == [] and data["preprocessing"]["image_size"] == 32


def test_cli_wrong_category_exits_2_and_leaves_no_run(tree, tmp_path):
    root, _ = tree
    result = run_adx(
        "train", "dataset=mvtec", f"dataset.root={root}", "dataset.category=bottle", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"adx: error: dataset.category=bottle is not under {root}; categories there: hazelnut"
    )
    assert run_dirs(tmp_path) == set()
