"""The stages chained by `assess`, with a stand-in model: no training, real tf.data splits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from anomaly_cli.data.base import ArraySplit, Splits
from anomaly_cli.reporting import plots
from anomaly_cli.reporting.assessment import Assessment
from anomaly_cli.reporting.plots.registry import pyplot
from anomaly_cli.scoring.scorer import Scores
from anomaly_cli.tasks import assess as assess_module
from anomaly_cli.tasks.assess import PLOTS_BEFORE_REPORT_GROUP, assess, plot_names
from anomaly_cli.tasks.lifecycle import current_stage, set_stage

SHAPE = (4, 4, 1)


@dataclass(frozen=True)
class MaskedSplit(ArraySplit):
    masks: np.ndarray | None = None

    def mask_dataset(self):
        import tensorflow as tf

        return None if self.masks is None else tf.data.Dataset.from_tensor_slices(self.masks)

    def _subset(self, indices: np.ndarray) -> dict:
        # As images.FileSplit does: the masks travel with their samples.
        masks = None if self.masks is None else self.masks[indices]
        return {**super()._subset(indices), "masks": masks}


class StandInModel:
    """A 'detector' whose score is the mean pixel and whose map is the image itself."""

    def __init__(self, produces_maps: bool) -> None:
        self.produces_maps = produces_maps
        self.map_calls = 0

    def anomaly_map(self, data, batch_size: int = 256) -> np.ndarray:
        self.map_calls += 1
        return np.concatenate([batch.numpy()[..., 0] for batch in data])


def _fake_score_samples(model, data, options) -> Scores:
    # The scorer's own tests cover the real one; here only the data's path through
    # the stages matters: one score per sample, in id order.
    return Scores(np.concatenate([b.numpy().reshape(len(b), -1).mean(axis=1) for b in data]))


def _split(rng: np.random.Generator, labels: list[int], masked: bool = False) -> MaskedSplit:
    labels_array = np.array(labels)
    x = rng.random((len(labels), *SHAPE)).astype(np.float32) * 0.5
    x[labels_array == 1] += 0.5  # anomalies are brighter
    return MaskedSplit(
        ids=np.array([f"id{i}" for i in range(len(labels))]),
        labels=labels_array,
        x=x,
        masks=(x[..., 0] > 0.6).astype(np.float32) if masked else None,
    )


def _splits(masked: bool) -> Splits:
    rng = np.random.default_rng(0)
    return Splits(
        train=_split(rng, [0, 0]),
        val=_split(rng, [0, 0, 0, 0, 1]),
        test=_split(rng, [0, 0, 0, 1, 1, 1], masked=masked),
        input_shape=SHAPE,
        reports=lambda scores: {"extra.csv": pd.DataFrame({"score": scores})},
    )


def _cfg(plot_list: list[str]):
    return OmegaConf.create(
        {
            "trainer": {"batch_size": 4},
            "threshold": {"strategy": "percentile", "q": 95},
            "scoring": None,
            "report": {"plots": plot_list},
            "model": {"name": "stand_in"},
            "optimizer": {"lr": 0.001},
        }
    )


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Assessment, str]]:
    """A registered plot that records what it receives and the stage it is drawn in."""
    received: list[tuple[Assessment, str]] = []

    def maps_probe(assessment: Assessment):
        received.append((assessment, current_stage()))
        return pyplot().subplots(figsize=(1, 1))[0]

    monkeypatch.setattr(assess_module, "score_samples", _fake_score_samples)
    monkeypatch.setitem(plots.PLOT_FILES, "maps_probe", "plots/maps.png")
    monkeypatch.setattr(plots, "maps_probe", maps_probe, raising=False)
    set_stage("scoring")
    return received


def test_maps_computed_for_pixel_metrics_reach_the_plots(probe, tmp_path: Path):
    splits, model = _splits(masked=True), StandInModel(produces_maps=True)
    result = assess(model, splits, _cfg(["maps_probe"]), tmp_path, "stand-in on squares")

    ((seen, stage),) = probe
    assert seen is result and stage == "drawing plots"
    assert model.map_calls == 1  # computed once, for the metrics and the plots alike
    np.testing.assert_array_equal(result.maps, splits.test.x[..., 0])
    np.testing.assert_array_equal(result.masks, splits.test.masks)
    pixel = json.loads((tmp_path / "pixel_metrics.json").read_text())
    assert pixel == result.pixel_metrics and pixel["images"] == 6
    assert (tmp_path / "plots/maps.png").is_file()

    expected = splits.test.x.reshape(6, -1).mean(axis=1)
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores["id"]) == list(splits.test.ids)
    np.testing.assert_allclose(scores["score"], expected, rtol=1e-6)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "extra.csv")["score"], expected, rtol=1e-6)
    threshold = json.loads((tmp_path / "threshold.json").read_text())
    assert threshold["val_counts"] == {"normal": 4, "anomaly": 1}
    assert result.metrics["auroc"] == 1.0  # the brighter anomalies all score higher


def test_without_masks_or_maps_nothing_pixel_level_is_made(probe, tmp_path: Path):
    for masked, produces_maps in ((False, True), (True, False)):
        run_dir = tmp_path / f"{masked}_{produces_maps}"
        model = StandInModel(produces_maps)
        result = assess(model, _splits(masked), _cfg(["maps_probe"]), run_dir, "t")
        assert model.map_calls == 0
        assert result.maps is None and result.pixel_metrics is None
        assert not (run_dir / "pixel_metrics.json").exists()
    assert [seen.maps for seen, _ in probe] == [None, None]


def test_an_empty_plot_list_never_enters_the_drawing_stage(probe, tmp_path: Path):
    assess(StandInModel(False), _splits(False), _cfg([]), tmp_path, "t")
    assert probe == [] and current_stage() == "threshold and metrics"
    assert (tmp_path / "metrics.json").is_file() and not (tmp_path / "plots").exists()


def test_runs_configured_before_the_report_group_draw_the_two_plots_they_always_drew():
    old = OmegaConf.create({"threshold": {"strategy": "percentile", "q": 95}})
    assert plot_names(old) == list(PLOTS_BEFORE_REPORT_GROUP) == ["roc", "score_histogram"]
    assert plot_names(_cfg(["roc"])) == ["roc"]


class ImageStandIn:
    """Reconstructs an image as half of itself; records what it is asked for."""

    produces_maps = True
    score_name = "mse"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        self.calls.append(("reconstruct", len(x)))
        return x * 0.5

    def anomaly_map(self, x, batch_size: int = 256) -> np.ndarray:
        if not isinstance(x, np.ndarray):  # the pixel metrics' pass over the whole split
            return StandInModel(True).anomaly_map(x)
        self.calls.append(("anomaly_map", len(x)))
        return x[..., 0]

    def score_gradient(self, x: np.ndarray, top_k: float = 0.1) -> np.ndarray:
        self.calls.append(("score_gradient", len(x)))
        return np.ones_like(x)


def test_image_plots_get_a_few_samples_computed_only_for_what_they_need(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setattr(assess_module, "score_samples", _fake_score_samples)
    splits = _splits(masked=True)
    report = {"plots": ["extremes"], "samples": 1}
    model = ImageStandIn()
    only_extremes = assess(model, splits, _cfg_with(report), tmp_path / "a", "t")
    view = only_extremes.samples
    # One per group: lowest and highest of each class, and the first of each class.
    scores = splits.test.x.reshape(6, -1).mean(axis=1)
    normal, anomalous = np.argsort(scores[:3]), 3 + np.argsort(scores[3:])
    shown = {normal[0], normal[-1], anomalous[0], anomalous[-1], 0, 3}
    assert list(view.positions) == sorted(shown) and len(view.images) == len(shown) < 6
    assert model.calls == [
        ("reconstruct", len(shown))
    ]  # no maps, no gradient: nothing listed needs them
    np.testing.assert_array_equal(view.images, splits.test.x[view.positions])
    assert view.maps is None and view.saliency is None

    model = ImageStandIn()
    report = {"plots": ["heatmaps", "saliency"], "samples": 1}
    both = assess(model, splits, _cfg_with(report), tmp_path / "b", "t")
    assert sorted(name for name, _ in model.calls) == [
        "anomaly_map",
        "reconstruct",
        "score_gradient",
    ]
    np.testing.assert_array_equal(both.samples.masks, splits.test.masks[both.samples.positions])
    assert (tmp_path / "b/plots/heatmaps.png").is_file()
    assert (tmp_path / "b/plots/saliency.png").is_file()

    assert assess(ImageStandIn(), splits, _cfg(["roc"]), tmp_path / "c", "t").samples is None


def test_the_loss_plot_reads_the_run_folders_history(probe, tmp_path: Path):
    pd.DataFrame({"epoch": [1, 2], "loss": [0.5, 0.4], "val_loss": [0.6, 0.5]}).to_csv(
        tmp_path / "history.csv", index=False
    )
    with_loss = assess(StandInModel(False), _splits(False), _cfg(["loss"]), tmp_path, "t")
    assert list(with_loss.history["epoch"]) == [1, 2]
    assert (tmp_path / "plots/loss.png").is_file()
    other = tmp_path / "no_history"
    without = assess(StandInModel(False), _splits(False), _cfg(["loss"]), other, "t")
    assert without.history is None and "history.csv is not in the run folder" in without.lacks(
        ("history",)
    )
    assert not (other / "plots").exists()


def _cfg_with(report: dict):
    cfg = _cfg([])
    cfg.report = report
    return cfg


def test_a_failure_preparing_the_sample_images_costs_the_image_plots_not_the_numbers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setattr(assess_module, "score_samples", _fake_score_samples)

    def broken_view(*args, **kwargs):
        raise RuntimeError("the test split could not be read again")

    monkeypatch.setattr(assess_module, "build_view", broken_view)
    report = {"plots": ["roc", "extremes"], "samples": 1}
    with caplog.at_level("INFO", logger="adx"):
        result = assess(ImageStandIn(), _splits(masked=False), _cfg_with(report), tmp_path, "t")
    assert result.samples is None
    assert "could not be read again" in result.lacks(("images",))
    for name in ("scores.csv", "metrics.json", "threshold.json", "plots/roc.png"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "plots/extremes.png").exists()
    assert "image plots skipped" in caplog.text and "plot extremes skipped" in caplog.text
