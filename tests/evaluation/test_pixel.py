"""Pixel metrics (anomaly_cli/evaluation/pixel.py): overall, and per defect class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from anomaly_cli.evaluation.pixel import image_auroc, per_class_metrics, pixel_metrics
from tests.conftest import latest, run_adx_in_process
from tests.data.fixtures_mvtec import make_mvtec_fixture

SIDE = 8


def planted() -> tuple[np.ndarray, ...]:
    """2 good images, 3 of class "seen" the map finds, 3 of class "blind" it inverts."""
    rng = np.random.default_rng(0)
    masks = np.zeros((8, SIDE, SIDE), np.float32)
    masks[2:, 2:5, 3:6] = 1
    maps = 0.1 * rng.random(masks.shape).astype(np.float32)
    maps[2:5] += masks[2:5]  # "seen": its defect pixels score highest
    # "blind": everything but the defect scores high, the defect lowest of all.
    maps[5:] = 0.5 * (1 - masks[5:]) - 0.01
    classes = np.array(["good", "good", *["seen"] * 3, *["blind"] * 3])
    labels = (classes != "good").astype(int)
    scores = np.array([0.2, 0.3, 0.9, 0.8, 0.7, 0.1, 0.15, 0.05])
    return maps, masks, classes, labels, scores


def test_each_class_is_measured_against_the_good_images():
    maps, masks, classes, labels, scores = planted()
    result = pixel_metrics(maps, masks, classes, labels, scores=scores)
    per_class = result["per_class"]
    assert list(per_class) == ["blind", "seen"]
    assert per_class["seen"]["pixel_auroc"] == 1.0 and per_class["seen"]["image_auroc"] == 1.0
    assert per_class["blind"]["pixel_auroc"] == 0.0 and per_class["blind"]["image_auroc"] == 0.0
    assert (per_class["seen"]["images"], per_class["seen"]["normal_images"]) == (3, 2)
    assert per_class["seen"]["pixel_aupr"] == pytest.approx(1.0)
    # The overall AUROC mixes both and hides the blind class.
    assert 0.0 < result["pixel_auroc"] < 1.0
    assert (result["images"], result["anomalous_pixels"]) == (8, 6 * 9)


def test_without_classes_the_result_is_as_before():
    maps, masks, *_ = planted()
    result = pixel_metrics(maps, masks)
    assert set(result) == {"pixel_auroc", "pixel_aupr", "images", "anomalous_pixels"}


def test_without_image_scores_only_pixel_metrics_per_class():
    maps, masks, classes, labels, _ = planted()
    per_class = per_class_metrics(maps, masks, classes, labels)
    assert per_class["seen"]["pixel_auroc"] == 1.0
    assert "image_auroc" not in per_class["seen"]


def test_mismatched_lengths_are_refused():
    maps, masks, classes, labels, _ = planted()
    with pytest.raises(ValueError, match="differ in number"):
        per_class_metrics(maps, masks, classes[:-1], labels)


def test_image_auroc_of_one_kind_only_is_undefined():
    assert image_auroc(np.array([0.1, 0.2]), np.array([True, True])) is None
    assert image_auroc(np.array([0.1, 0.2]), np.array([False, True])) == 1.0


def test_train_on_mvtec_writes_the_per_defect_breakdown(tmp_path: Path):
    root = tmp_path / "data"
    make_mvtec_fixture(root, n_train=16, n_test_good=6, n_per_defect=4, size=16)
    result = run_adx_in_process(
        "train",
        "dataset=mvtec",
        f"dataset.root={root}",
        "dataset.preprocess.image_size=16",
        "trainer.epochs=1",
        "trainer.verbose=0",
        "logger=none",
        "report.plots=[]",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = latest(tmp_path)
    pixel = json.loads((run / "pixel_metrics.json").read_text())
    assert set(pixel["per_class"]) == {"crack", "hole"}
    scores = pd.read_csv(run / "scores.csv")
    for defect, entry in pixel["per_class"].items():
        assert (entry["images"], entry["normal_images"]) == (4, 6)
        assert 0.0 <= entry["pixel_auroc"] <= 1.0
        # The image AUROC is good against that defect only, as scores.csv gives it.
        chosen = scores[scores.id.str.contains("/good/") | scores.id.str.contains(f"/{defect}/")]
        expected = roc_auc_score(chosen.label, chosen.score)
        assert entry["image_auroc"] == pytest.approx(expected)
