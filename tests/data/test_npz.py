from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf

from anomaly_cli.data import npz
from anomaly_cli.data.base import CLEAN, TRANSDUCTIVE, LoadContext
from anomaly_cli.errors import AdxUserError
from tests.conftest import latest, run_adx, run_adx_in_process, run_dirs
from tests.data.fixtures_npz import COUNTS, make_arrays, make_npz_fixture

DEFAULTS = OmegaConf.load(Path(__file__).resolve().parents[2] / "configs/dataset/npz.yaml")
N_BLOB = sum(c[0] for c in COUNTS.values())
N_TOTAL = sum(sum(c) for c in COUNTS.values())


@pytest.fixture(scope="module")
def npz_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_npz_fixture(tmp_path_factory.mktemp("npz"))


def config(file: Path, **overrides: Any) -> Any:
    cfg = OmegaConf.merge(DEFAULTS, {"path": str(file)})
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def load(file: Path, protocol: str = CLEAN, **overrides: Any):
    return npz.load(config(file, **overrides), LoadContext(seed=3, protocol=protocol))


def write(tmp_path: Path, **changes: Any) -> Path:
    """The fixture's arrays with some replaced (None drops an array)."""
    arrays = {**make_arrays(), **changes}
    path = tmp_path / "custom.npz"
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_file_splits_are_kept_and_train_drops_its_anomalies(npz_file: Path):
    splits = load(npz_file)
    blob, patch, bar = COUNTS["train"]
    assert splits.counts() == {
        "train": {"normal": blob, "anomaly": 0},
        "val": {"normal": 40, "anomaly": 12 + 4},
        "test": {"normal": 60, "anomaly": 30 + 4},
    }
    assert splits.class_counts()["test"] == {"0": 60, "1": 30, "2": 4}
    assert splits.info["dropped_train_anomalies"] == patch + bar
    assert splits.info["file_counts"] == {"train": 186, "val": 56, "test": 94}
    assert splits.info["normal_classes"] == ["0"] and splits.info["anomaly_classes"] == ["1", "2"]
    # Ids point back at the file's arrays; split order is the file's order.
    assert len(splits.test.ids) == 94 and all(i.startswith("test-") for i in splits.test.ids)
    assert list(splits.test.ids) == sorted(splits.test.ids)


def test_anomaly_classes_leave_other_labels_out(npz_file: Path):
    splits = load(npz_file, anomaly_classes=[1])
    assert splits.counts()["val"] == {"normal": 40, "anomaly": 12}
    assert splits.class_counts()["test"] == {"0": 60, "1": 30}
    assert splits.info["dropped_train_anomalies"] == COUNTS["train"][1]
    assert splits.info["unused_samples"] == 6 + 4 + 4


def test_labels_by_class_name_and_lists(npz_file: Path):
    splits = load(npz_file, class_names=["blob", "patch", "bar"], normal_class=["blob", 2])
    assert splits.info["normal_classes"] == ["blob", "bar"]
    assert splits.info["anomaly_classes"] == ["patch"]
    assert splits.class_counts()["train"] == {"blob": 160, "bar": 6}


def test_n_anomalies_and_anomaly_ratio_on_file_splits(npz_file: Path):
    drawn = load(npz_file, n_anomalies=10).counts()
    assert drawn["val"]["anomaly"] + drawn["test"]["anomaly"] == 10
    assert drawn["test"]["normal"] == 60
    capped = load(npz_file, anomaly_ratio=0.1).counts()
    assert capped["test"] == {"normal": 60, "anomaly": 7}  # 0.1 / 0.9 * 60 = 6.7
    with pytest.raises(AdxUserError, match=r"n_anomalies=999 must lie between 1 and the 50 "):
        load(npz_file, n_anomalies=999)


def test_pooled_mode_splits_every_sample_by_fractions(npz_file: Path):
    splits = load(npz_file, use_file_splits=False)
    counts = splits.counts()
    assert counts["train"] == {"normal": round(N_BLOB * 0.6), "anomaly": 0}
    assert sum(sum(c.values()) for c in counts.values()) == N_TOTAL
    ids = np.concatenate([s.ids for s in (splits.train, splits.val, splits.test)])
    assert len(set(ids)) == N_TOTAL
    assert {i.split("-")[0] for i in splits.train.ids} == {"train", "val", "test"}


def test_pooled_mode_follows_the_protocol(npz_file: Path):
    splits = load(npz_file, protocol=TRANSDUCTIVE, use_file_splits=False)
    assert splits.protocol == TRANSDUCTIVE
    assert splits.counts()["train"] == {"normal": N_BLOB, "anomaly": 0}
    assert np.array_equal(splits.val.ids, splits.test.ids)


def test_preprocessing_sets_shape_range_and_channels(npz_file: Path, tmp_path: Path):
    prep = {"image_size": 32, "channels": "rgb", "value_range": [-1, 1]}
    splits = load(npz_file, preprocess=prep, augment={"flip": True, "rotation": 0.0})
    assert splits.augment is not None and splits.info["preprocessing"]["image_size"] == 32
    assert splits.input_shape == (32, 32, 3) and splits.train.x.shape[1:] == (32, 32, 3)
    x = splits.test.x
    assert x.min() >= -1.0 and x.max() == pytest.approx(1.0)  # patches are 255
    assert x.min() < -0.9  # the dark background maps near -1
    # Floats in [0, 1] and uint8 give the same inputs; RGB files become grayscale.
    arrays = make_arrays()
    as_float = {k: v / 255.0 if k.endswith("images") else v for k, v in arrays.items()}
    from_uint8 = load(npz_file).test.x
    assert np.allclose(load(write(tmp_path, **as_float)).test.x, from_uint8, atol=1e-6)
    rgb = {k: np.repeat(v[..., None], 3, -1) for k, v in arrays.items() if k.endswith("images")}
    gray = load(write(tmp_path, **rgb)).test.x
    assert gray.shape == from_uint8.shape and np.allclose(gray, from_uint8, atol=2e-3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"normal_class": 7},
            r"dataset.normal_class=7 is not a label in .*; labels present: 0, 1, 2$",
        ),
        (
            {"class_names": ["a", "b", "c"], "anomaly_classes": ["d"]},
            r"dataset.anomaly_classes=\['d'\] is not a label .*labels present: 0 \(a\), 1 \(b\)",
        ),
        ({"class_names": ["a", "b"]}, "class_names has 2 names but .* has label 2"),
        ({"anomaly_classes": [0]}, "anomaly_classes repeats the normal label 0"),
        ({"normal_class": [0, 1, 2]}, r"normal_class=\[0, 1, 2\] leaves no anomaly label"),
        ({"path": None}, "dataset.path is not set; pass dataset.path=<file>.npz"),
    ],
)
def test_bad_label_settings_name_the_key(npz_file: Path, overrides: dict, message: str):
    with pytest.raises(AdxUserError, match=message):
        load(npz_file, **overrides)


def test_file_splits_need_the_clean_protocol(npz_file: Path):
    with pytest.raises(
        AdxUserError,
        match=r"use_file_splits=true keeps .* only protocol=clean uses; "
        r"set dataset.use_file_splits=false for protocol=transductive",
    ):
        load(npz_file, protocol=TRANSDUCTIVE)


def test_bad_files_name_the_file_and_the_fix(tmp_path: Path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(AdxUserError, match=r"dataset.path=.*nope.npz does not exist"):
        load(missing)
    path = write(tmp_path, val_images=None, val_labels=None, extra=np.zeros(2))
    with pytest.raises(
        AdxUserError,
        match=r"custom.npz lacks val_images, val_labels; it holds extra, test_images, "
        r"test_labels, train_images, train_labels; expected train_images, train_labels, "
        r"val_images, val_labels, test_images, test_labels$",
    ):
        load(path)
    short = make_arrays()["test_labels"][:-5]
    with pytest.raises(
        AdxUserError, match="test_images has 94 images but test_labels has 89 labels"
    ):
        load(write(tmp_path, test_labels=short))
    with pytest.raises(AdxUserError, match=r"train_images holds floats 2..2; scale them"):
        load(write(tmp_path, train_images=np.full((186, 28, 28), 2.0)))
    with pytest.raises(AdxUserError, match=r"val_labels has shape \(56, 14\).*multi-label"):
        load(write(tmp_path, val_labels=np.zeros((56, 14), np.uint8)))
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(AdxUserError, match=r"text.npz cannot be read as an .npz of arrays"):
        load(tmp_path / "text.npz")


def test_cli_trains_on_an_npz_file(tmp_path: Path):
    make_npz_fixture(tmp_path)
    result = run_adx_in_process(
        "train",
        "dataset=npz",
        "dataset.path=pneumoniamnist.npz",
        "dataset.normal_class=0",
        "dataset.preprocess.image_size=32",
        "trainer.epochs=5",
        "trainer.verbose=0",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = latest(tmp_path)
    assert json.loads((run / "metrics.json").read_text())["auroc"] >= 0.85
    data = json.loads((run / "data.json").read_text())
    assert data["counts"]["train"] == {"normal": 160, "anomaly": 0}
    assert data["counts"]["test"] == {"normal": 60, "anomaly": 34}
    assert data["dropped_train_anomalies"] == 26
    assert data["input_shape"] == [32, 32, 1]


def test_cli_bad_label_exits_2_with_one_line_and_no_run(tmp_path: Path):
    make_npz_fixture(tmp_path)
    result = run_adx(
        "train",
        "dataset=npz",
        "dataset.path=pneumoniamnist.npz",
        "dataset.normal_class=5",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        "adx: error: dataset.normal_class=5 is not a label in pneumoniamnist.npz; "
        "labels present: 0, 1, 2"
    )
    assert run_dirs(tmp_path) == set()
