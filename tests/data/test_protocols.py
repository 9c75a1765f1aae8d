"""Class selection, anomaly sampling and the three protocols, on labelled pools."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from anomaly_cli.data.base import CLEAN, TRANSDUCTIVE, UNSUPERVISED, LoadContext
from anomaly_cli.data.splits import class_labels, protocol_indices, resolve_classes
from anomaly_cli.errors import AdxUserError

NAMES = ["cat", "dog", "airplanes", "car"]
# 100 airplanes, 300 of each other class
CLASSES = np.array(["airplanes"] * 100 + ["cat"] * 300 + ["dog"] * 300 + ["car"] * 300)


def cfg(**extra):
    base = {
        "normal_class": "airplanes",
        "anomaly_classes": None,
        "n_anomalies": None,
        "anomaly_ratio": None,
        "split": {"train": 0.6, "val": 0.2, "test": 0.2},
    }
    return OmegaConf.create({**base, **extra})


def parts_for(protocol: str, seed: int = 0, contamination: float = 0.1, **extra):
    c = cfg(**extra)
    labels = class_labels(CLASSES, NAMES, c)
    ctx = LoadContext(seed=seed, protocol=protocol, contamination=contamination)
    return labels, protocol_indices(labels, c, ctx)


def test_names_or_indices_select_classes_and_unknown_lists_them():
    assert resolve_classes("dog", NAMES, "k") == ["dog"]
    assert resolve_classes(2, NAMES, "k") == ["airplanes"]  # tfds-style label index
    assert resolve_classes(["car", 0], NAMES, "k") == ["car", "cat"]
    with pytest.raises(AdxUserError, match=r"k=plane is not a class .* present: cat, dog"):
        resolve_classes("plane", NAMES, "k")


def test_anomaly_classes_restrict_the_anomalies_and_may_not_repeat_normal():
    labels = class_labels(CLASSES, NAMES, cfg(anomaly_classes=["car"]))
    assert np.sum(labels == 1) == 300 and np.sum(labels == 0) == 100 and np.sum(labels == -1) == 600
    with pytest.raises(AdxUserError, match="repeats the normal class airplanes"):
        class_labels(CLASSES, NAMES, cfg(anomaly_classes=["airplanes", "car"]))


def test_seed_000_transductive_protocol():
    labels, parts = parts_for(TRANSDUCTIVE, n_anomalies=800)
    assert np.array_equal(parts["train"], np.arange(100))  # every airplane trains
    assert np.array_equal(parts["val"], parts["test"])
    test = labels[parts["test"]]
    assert np.sum(test == 0) == 100 and np.sum(test == 1) == 800
    # anomalies come from every other class, drawn by the seed
    _, again = parts_for(TRANSDUCTIVE, n_anomalies=800)
    _, other = parts_for(TRANSDUCTIVE, seed=1, n_anomalies=800)
    assert np.array_equal(parts["test"], again["test"])
    assert not np.array_equal(parts["test"], other["test"])


@pytest.mark.parametrize("rho", [0.05, 0.1, 0.25])
def test_seed_001_unsupervised_protocol_contaminates_training(rho: float):
    labels, parts = parts_for(UNSUPERVISED, contamination=rho)
    assert np.array_equal(parts["train"], parts["test"]) and np.array_equal(
        parts["val"], parts["test"]
    )
    train = labels[parts["train"]]
    assert np.sum(train == 0) == 100
    assert np.sum(train == 1) / len(train) == pytest.approx(rho, abs=0.01)


def test_unsupervised_refuses_other_anomaly_counts_and_impossible_rho():
    with pytest.raises(AdxUserError, match=r"draws anomalies by protocol.contamination"):
        parts_for(UNSUPERVISED, n_anomalies=10)
    few = np.array(["airplanes"] * 100 + ["cat"] * 5)
    with pytest.raises(AdxUserError, match=r"needs 11 anomalies for 100 normal .* has 5"):
        protocol_indices(
            class_labels(few, ["airplanes", "cat"], cfg()),
            cfg(),
            LoadContext(seed=0, protocol=UNSUPERVISED),
        )


def test_clean_protocol_n_anomalies_and_anomaly_ratio():
    labels, parts = parts_for(CLEAN, n_anomalies=50)
    assert sum(np.sum(labels[parts[k]] == 1) for k in ("val", "test")) == 50
    assert np.sum(labels[parts["train"]] == 1) == 0
    labels, parts = parts_for(CLEAN, anomaly_ratio=0.2)
    for name in ("val", "test"):
        split = labels[parts[name]]
        assert np.sum(split == 1) == round(0.25 * np.sum(split == 0))  # 20 % of the split
    with pytest.raises(AdxUserError, match="both set; keep one"):
        parts_for(CLEAN, anomaly_ratio=0.2, n_anomalies=50)
    with pytest.raises(AdxUserError, match="n_anomalies=5000 must lie between 1 and the 900"):
        parts_for(CLEAN, n_anomalies=5000)
