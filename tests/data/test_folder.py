"""`dataset=folder`: layouts, formats, preprocessing, bad data, and two CLI runs."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf

from anomaly_cli.data import folder
from anomaly_cli.data.base import LoadContext, Splits
from anomaly_cli.errors import AdxUserError
from tests.conftest import FAST_TRAIN, REPO, latest, run_adx, run_adx_in_process, run_dirs
from tests.data.fixtures_folder import (
    blob_image,
    make_folder_fixture,
    save_png,
    write_corrupt,
    write_truncated,
)

SMALL = {"preprocess.image_size": 16, "preprocess.channels": "grayscale"}


def folder_cfg(settings: dict[str, Any]) -> DictConfig:
    """configs/dataset/folder.yaml with dotted-key settings, locked like Hydra's."""
    cfg = OmegaConf.load(REPO / "configs" / "dataset" / "folder.yaml")
    for key, value in settings.items():
        OmegaConf.update(cfg, key, value, merge=False)
    OmegaConf.set_struct(cfg, True)
    return cfg


def load(settings: dict[str, Any], seed: int = 0) -> Splits:
    return folder.load(folder_cfg({**SMALL, **settings}), LoadContext(seed=seed))


def dirs(fx: Any, masks: bool = True) -> dict[str, Any]:
    return {
        "normal_dir": str(fx.normal),
        "abnormal_dirs": str(fx.abnormal),
        "mask_dir": str(fx.masks) if masks else None,
    }


def samples(split: Any) -> np.ndarray:
    return np.stack(list(split.dataset().as_numpy_iterator()))


def test_yaml_offers_every_documented_key():
    cfg = OmegaConf.load(REPO / "configs" / "dataset" / "folder.yaml")
    keys = {"normal_dir", "abnormal_dirs", "mask_dir", "root", "normal_class", "anomaly_classes"}
    keys |= {"n_anomalies", "anomaly_ratio", "split", "preprocess", "augment", "strict", "cache"}
    assert keys | {"recursive"} <= set(cfg)
    assert OmegaConf.to_container(cfg.preprocess) == {
        "image_size": 64, "crop": "center", "channels": "rgb", "value_range": [0, 1], "gcn": False
    }  # fmt: skip
    assert cfg.recursive is False and cfg.strict is False and cfg.cache is False


def test_normal_and_abnormal_dirs_counts_classes_and_masks(tmp_path: Path):
    fx = make_folder_fixture(tmp_path, n_normal=20, n_abnormal=10, size=24)
    splits = load({**dirs(fx), "cache": True})
    assert splits.counts() == {
        "train": {"normal": 12, "anomaly": 0},
        "val": {"normal": 4, "anomaly": 5},
        "test": {"normal": 4, "anomaly": 5},
    }
    assert splits.class_counts()["test"] == {"abnormal": 5, "normal": 4}
    assert splits.input_shape == (16, 16, 1) and splits.train.cache is True
    test = splits.test
    assert all(i.startswith("normal/normal_") for i in test.ids[test.labels == 0])
    # every anomaly carries its own mask, normal images none
    for image_id, mask in zip(test.ids, test.masks, strict=True):
        stem = Path(image_id).stem
        assert mask == (str(fx.masks / f"{stem}_mask.png") if "abnormal" in image_id else "")
    truth = np.stack(list(test.mask_dataset().as_numpy_iterator()))
    assert truth.shape == (9, 16, 16)
    assert np.all(truth[test.labels == 0] == 0) and np.all(truth[test.labels == 1].sum((1, 2)) > 0)
    info = splits.info
    assert info["source"] == "folder" and info["mask_dir"] == str(fx.masks.resolve())
    assert info["abnormal_dirs"] == [str(fx.abnormal.resolve())] and info["skipped_files"] == []
    assert info["preprocessing"]["image_size"] == 16
    assert info["normal_classes"] == ["normal"] and info["anomaly_classes"] == ["abnormal"]


def test_root_layout_reads_only_the_chosen_classes(tmp_path: Path):
    rng = np.random.default_rng(0)
    for name, count in {"cat": 10, "dog": 3, "fox": 6}.items():
        for i in range(count):
            save_png(blob_image(20, 20, rng)[0], tmp_path / name / f"{i}.png")
    write_corrupt(tmp_path / "dog" / "broken.png")  # dog is not chosen, so never read
    splits = load({"root": str(tmp_path), "normal_class": "cat", "anomaly_classes": ["fox"]})
    assert splits.info["classes"] == ["cat", "dog", "fox"]
    assert splits.info["anomaly_classes"] == ["fox"] and splits.info["skipped_files"] == []
    counts = splits.counts()
    assert sum(c["normal"] for c in counts.values()) == 10
    assert sum(c["anomaly"] for c in counts.values()) == 6
    # a list of normal classes, anomalies by default all the others
    both = load({"root": str(tmp_path), "normal_class": ["cat", "fox"], "split.val": 0})
    assert both.counts()["train"]["normal"] == round(16 * 0.6 / 0.8)
    assert sum(both.test.labels == 1) == 3  # dog's readable images, all in test (no val)
    assert len(both.info["skipped_files"]) == 1


def test_non_image_files_and_subfolders_are_ignored_unless_recursive(tmp_path: Path):
    fx = make_folder_fixture(tmp_path, n_normal=10, n_abnormal=4, size=16)
    for name in ("notes.txt", ".DS_Store", "labels.csv", "README"):
        (fx.normal / name).write_text("not an image")
    save_png(blob_image(16, 16, np.random.default_rng(0))[0], fx.normal / "more" / "deep.png")
    flat = load(dirs(fx, masks=False))
    assert sum(len(s) for s in (flat.train, flat.val, flat.test)) == 14
    assert flat.info["images_found"] == 14
    deep = load({**dirs(fx, masks=False), "recursive": True})
    assert deep.info["images_found"] == 15
    ids = np.concatenate([deep.train.ids, deep.val.ids, deep.test.ids])
    assert "normal/more/deep.png" in ids


def test_mixed_sizes_modes_and_formats_come_out_at_preprocess_shape(tmp_path: Path):
    rng = np.random.default_rng(3)
    files = [
        ("a.png", (30, 40), "L"), ("b.png", (50, 50), "RGB"), ("c.png", (40, 30), "RGBA"),
        ("d.jpg", (33, 47), "RGB"), ("e.jpeg", (20, 20), "L"), ("f.bmp", (24, 36), "RGB"),
        ("g.tif", (48, 32), "L"), ("h.png", (16, 64), "LA"),
    ]  # fmt: skip
    for name, (h, w), mode in files:
        save_png(blob_image(h, w, rng)[0], tmp_path / "normal" / name, mode)
        save_png(blob_image(h, w, rng, patch=4)[0], tmp_path / "bad" / name, mode)
    for channels, depth in (("rgb", 3), ("grayscale", 1)):
        splits = load(
            {
                "normal_dir": str(tmp_path / "normal"),
                "abnormal_dirs": [str(tmp_path / "bad")],
                "preprocess.channels": channels,
                "split": {"train": 0.5, "val": 0.0, "test": 0.5},
            }
        )
        x = np.concatenate([samples(splits.train), samples(splits.test)])
        assert x.shape == (16, 16, 16, depth) and x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.5


def test_value_range_minus_one_to_one(tmp_path: Path):
    fx = make_folder_fixture(tmp_path, n_normal=6, n_abnormal=4, size=16)
    x = samples(load({**dirs(fx), "preprocess.value_range": [-1, 1]}).test)
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert x.min() < -0.9 and x.max() > 0.9  # dark background and bright patch reach the ends


def test_center_crop_keeps_the_centre(tmp_path: Path):
    # 20 x 60: a white centre square between black side bands
    image = np.zeros((20, 60), np.uint8)
    image[:, 20:40] = 255
    for cls in ("normal", "bad"):
        for i in range(4):
            save_png(image, tmp_path / cls / f"{i}.png")
    base = {"normal_dir": str(tmp_path / "normal"), "abnormal_dirs": str(tmp_path / "bad")}
    centre = samples(load(base).train)
    whole = samples(load({**base, "preprocess.crop": "none"}).train)
    assert centre.min() > 0.95
    assert 0.2 < whole.mean() < 0.5 and whole.min() < 0.05


def test_corrupt_files_are_skipped_with_a_warning_or_fail_with_strict(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    fx = make_folder_fixture(tmp_path, n_normal=10, n_abnormal=4, size=16)
    truncated = write_truncated(fx.normal / "normal_cut.png")
    garbage = write_corrupt(fx.abnormal / "abnormal_junk.png")
    write_truncated(fx.masks / "abnormal_junk_mask.png")
    broken_mask = write_corrupt(fx.masks / "abnormal_003_mask.png")
    with caplog.at_level(logging.WARNING, logger="adx"):
        splits = load(dirs(fx))
    assert sum(len(s) for s in (splits.train, splits.val, splits.test)) == 13
    skipped = {s["path"]: s["error"] for s in splits.info["skipped_files"]}
    assert skipped[str(truncated)] == "OSError: image file is truncated"
    assert skipped[str(garbage)].startswith("UnidentifiedImageError: cannot identify image file")
    assert skipped[str(fx.abnormal / "abnormal_003.png")] == f"its mask {broken_mask} is unreadable"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(truncated) in warnings[0] and str(garbage) in warnings[0]
    with pytest.raises(AdxUserError, match=r"cannot read image .*\(and 3 more\).*strict=false"):
        load({**dirs(fx), "strict": True})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "dataset.normal_dir and dataset.root are both unset; dataset=folder needs"),
        ({"root": "{t}/images", "normal_dir": "{t}/images/normal"}, "are both set; use"),
        ({"normal_dir": "{t}/nowhere", "abnormal_dirs": "{t}/images/abnormal"},
         "dataset.normal_dir={t}/nowhere does not exist; point it at a folder of images"),
        ({"normal_dir": "{t}/empty", "abnormal_dirs": "{t}/images/abnormal"},
         "dataset.normal_dir={t}/empty holds no images (.png"),
        ({"normal_dir": "{t}/images/normal"},
         "dataset.abnormal_dirs is not set; the test split needs anomalies"),
        ({"normal_dir": "{t}/images/normal", "abnormal_dirs": ["{t}/empty/normal"]},
         "the class name 'normal' is already taken by {t}/images/normal"),
        ({"normal_dir": "{t}/images/normal", "abnormal_dirs": "{t}/images/abnormal",
          "normal_class": "abnormal"}, "dataset.normal_class=abnormal only applies with"),
        ({"root": "{t}/images"}, "dataset.normal_class is not set; choose the normal class "
         "among the sub-folders of dataset.root={t}/images: abnormal, normal"),
        ({"root": "{t}/images", "normal_class": "good"},
         "dataset.normal_class=good is not a class of this dataset; classes present: "
         "abnormal, normal"),
        ({"root": "{t}/empty", "normal_class": "normal"},
         "class folder {t}/empty/normal under dataset.root={t}/empty holds no images"),
        ({"root": "{t}/masks", "normal_class": "x"}, "dataset.root={t}/masks has no sub-folders"),
    ],
)  # fmt: skip
def test_bad_folder_settings_name_the_key_and_the_fix(
    tmp_path: Path, settings: dict[str, Any], message: str
):
    make_folder_fixture(tmp_path, n_normal=4, n_abnormal=2, size=8)
    (tmp_path / "empty" / "normal").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    resolved = {
        k: [v.format(t=tmp_path) for v in val] if isinstance(val, list) else
        (val.format(t=tmp_path) if isinstance(val, str) else val)
        for k, val in settings.items()
    }  # fmt: skip
    with pytest.raises(AdxUserError) as error:
        load(resolved)
    assert message.format(t=tmp_path) in str(error.value)
    assert "\n" not in str(error.value)


def test_mask_pairing_errors_name_the_file(tmp_path: Path):
    fx = make_folder_fixture(tmp_path, n_normal=4, n_abnormal=3, size=8)
    (fx.masks / "abnormal_001_mask.png").unlink()
    with pytest.raises(AdxUserError, match=r"abnormal image .*abnormal_001\.png has no mask in"):
        load(dirs(fx))
    save_png(np.zeros((8, 8), np.uint8), fx.masks / "abnormal_001.png")  # plain stem also matches
    assert load(dirs(fx)).info["skipped_files"] == []
    stray = save_png(np.zeros((8, 8), np.uint8), fx.masks / "abnormal_999_mask.png")
    with pytest.raises(AdxUserError, match=re.escape(f"mask {stray} matches no abnormal image")):
        load(dirs(fx))
    stray.unlink()
    twin = save_png(np.zeros((8, 8), np.uint8), fx.masks / "abnormal_002.png")
    pair = f"{twin} and {fx.masks / 'abnormal_002_mask.png'} share the file stem 'abnormal_002'"
    with pytest.raises(AdxUserError, match=re.escape(pair)):
        load(dirs(fx))


def test_mask_subfolder_per_abnormal_folder(tmp_path: Path):
    """MVTec's layout: test/<defect>/000.png with ground_truth/<defect>/000_mask.png."""
    rng = np.random.default_rng(0)
    for i in range(6):
        save_png(blob_image(16, 16, rng)[0], tmp_path / "good" / f"{i:03d}.png")
    for defect in ("crack", "hole"):
        for i in range(3):
            image, mask = blob_image(16, 16, rng, patch=4)
            save_png(image, tmp_path / "test" / defect / f"{i:03d}.png")
            save_png(mask, tmp_path / "ground_truth" / defect / f"{i:03d}_mask.png")
    splits = load(
        {
            "normal_dir": str(tmp_path / "good"),
            "abnormal_dirs": [str(tmp_path / "test" / d) for d in ("crack", "hole")],
            "mask_dir": str(tmp_path / "ground_truth"),
        }
    )
    assert splits.info["classes"] == ["normal", "crack", "hole"]
    test = splits.test
    checked = 0
    for image_id, mask in zip(test.ids, test.masks, strict=True):
        if not image_id.startswith("normal/"):
            assert mask == str(tmp_path / "ground_truth" / image_id.replace(".png", "_mask.png"))
            checked += 1
    assert checked == test.counts()["anomaly"] > 0


def test_train_on_a_folder_finds_the_patches_and_writes_pixel_metrics(tmp_path: Path):
    fx = make_folder_fixture(tmp_path / "data", n_normal=120, n_abnormal=40, size=32)
    write_corrupt(fx.normal / "normal_broken.png")
    result = run_adx_in_process(
        "train", *FAST_TRAIN, "dataset=folder", "trainer.epochs=10", "trainer.batch_size=16",
        "dataset.normal_dir=data/images/normal", "dataset.abnormal_dirs=data/images/abnormal",
        "dataset.mask_dir=data/masks", "dataset.preprocess.image_size=32",
        "dataset.preprocess.channels=grayscale", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run = latest(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["auroc"] >= 0.85
    data = json.loads((run / "data.json").read_text())
    assert data["dataset"] == "folder" and data["input_shape"] == [32, 32, 1]
    assert data["counts"]["train"] == {"normal": 72, "anomaly": 0}
    assert data["class_counts"]["test"] == {"abnormal": 20, "normal": 24}
    assert data["normal_dir"] == str((fx.normal).resolve())
    assert data["preprocessing"]["channels"] == "grayscale"
    broken = str(Path("data/images/normal/normal_broken.png"))
    assert [s["path"] for s in data["skipped_files"]] == [broken]
    assert "skipped 1 unreadable image(s)" in (run / "adx.log").read_text()
    assert broken in (run / "adx.log").read_text()
    pixel = json.loads((run / "pixel_metrics.json").read_text())
    assert pixel["pixel_auroc"] > 0.5 and pixel["images"] == 44


def test_cli_bad_folder_exits_2_with_one_line_and_no_run_dir(tmp_path: Path):
    result = run_adx(
        "train", "dataset=folder", "dataset.normal_dir=missing", "dataset.abnormal_dirs=bad",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "adx: error: dataset.normal_dir=missing does not exist; point it at a folder of images"
    ]
    assert run_dirs(tmp_path) == set()
