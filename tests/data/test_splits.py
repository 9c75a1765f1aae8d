from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from anomaly_cli.data import digits, synthetic
from anomaly_cli.data.base import LoadContext
from anomaly_cli.data.splits import split_indices
from anomaly_cli.errors import AdxUserError

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def test_splits_are_disjoint_stratified_and_train_is_normal_only():
    labels = np.array([0] * 100 + [1] * 40)
    parts = split_indices(labels, FRACTIONS, seed=1)
    all_idx = np.concatenate(list(parts.values()))
    assert len(all_idx) == len(set(all_idx)) == 140
    assert np.all(labels[parts["train"]] == 0) and len(parts["train"]) == 60
    for name in ("val", "test"):
        assert np.sum(labels[parts[name]] == 0) == 20
        assert np.sum(labels[parts[name]] == 1) == 20


def test_same_seed_same_split_other_seed_other_split():
    labels = np.array([0] * 50 + [1] * 10)
    a, b, c = (split_indices(labels, FRACTIONS, seed=s) for s in (7, 7, 8))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train"], c["train"])


def test_a_test_split_without_anomalies_names_the_counts():
    # One anomaly, and val takes 0.35 / 0.40 of the anomalies: test gets none.
    fractions = {"train": 0.6, "val": 0.35, "test": 0.05}
    labels = np.array([0] * 40 + [1])
    with pytest.raises(
        AdxUserError,
        match="test split needs normal and anomaly samples, it has 2 normal, 0 anomalies",
    ):
        split_indices(labels, fractions, seed=0)


def test_data_of_one_class_says_so_instead_of_asking_for_a_bigger_split():
    with pytest.raises(AdxUserError, match=r"the data holds no anomaly \(10 normal") as raised:
        split_indices(np.zeros(10, dtype=int), FRACTIONS, seed=0)
    assert "dataset.split" not in str(raised.value)


def test_no_normal_training_sample_is_an_error():
    with pytest.raises(AdxUserError, match="train split has no normal sample"):
        split_indices(np.array([1, 1, 1, 1]), FRACTIONS, seed=0)


def test_digits_one_vs_rest_in_unit_range():
    cfg = OmegaConf.create(
        {"normal_class": 3, "preprocess": {"image_size": 32}, "split": FRACTIONS}
    )
    splits = digits.load(cfg, LoadContext(seed=555))
    assert splits.input_shape == (32, 32, 1)
    assert splits.train.counts()["anomaly"] == 0
    x = np.concatenate([s.x for s in (splits.train, splits.val, splits.test)])
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert len(x) == 1797
    assert splits.info["normal_classes"] == ["3"]
    assert splits.info["anomaly_classes"] == [str(d) for d in range(10) if d != 3]


def test_digits_list_of_normal_classes_and_unknown_class():
    cfg = OmegaConf.create(
        {"normal_class": [0, 1], "preprocess": {"image_size": 8}, "split": FRACTIONS}
    )
    splits = digits.load(cfg, LoadContext(seed=555))
    normal = sum(s.counts()["normal"] for s in (splits.train, splits.val, splits.test))
    assert normal == 178 + 182  # zeros and ones in the bundled set
    with pytest.raises(AdxUserError, match="classes present: 0, 1, 2"):
        digits.load(
            OmegaConf.create(
                {"normal_class": "airplane", "preprocess": {"image_size": 8}, "split": FRACTIONS}
            ),
            LoadContext(seed=0),
        )


def test_synthetic_anomalies_carry_the_planted_patch():
    x, labels = synthetic.make_images(50, 20, size=16, channels=1, patch=4, seed=0)
    assert x.shape == (70, 16, 16, 1) and labels.sum() == 20
    # Normal blobs peak below 0.9; every anomaly holds a saturated 4x4 patch.
    assert np.all(x[labels == 0].max(axis=(1, 2, 3)) < 0.9)
    assert np.all((x[labels == 1] == 1.0).sum(axis=(1, 2, 3)) >= 16)
    again, _ = synthetic.make_images(50, 20, size=16, channels=1, patch=4, seed=0)
    assert np.array_equal(x, again)


def test_digits_upscaling_keeps_the_picture():
    images = np.zeros((1, 8, 8))
    images[0, 2:6, 3] = 1.0  # a vertical stroke
    big = digits.upscale(images, 32)
    assert big.shape == (1, 32, 32) and big.min() >= 0.0 and big.max() <= 1.0
    # The stroke stays where it was: column 3 of 8 covers columns 12..15 of 32.
    assert big[0, 12:20, 12:16].mean() > 0.5 and big[0, :, 24:].max() == 0.0
    assert np.array_equal(digits.upscale(images, 8), images.astype(np.float32))
