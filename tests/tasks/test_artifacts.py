"""The writing stage and the plot registry, on a hand-made assessment (no model, no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from anomaly_cli import runs
from anomaly_cli.errors import AdxUserError
from anomaly_cli.evaluation.judge import judge
from anomaly_cli.reporting import plots
from anomaly_cli.reporting.artifacts import write_artifacts
from anomaly_cli.reporting.assessment import Assessment
from anomaly_cli.scoring.scorer import Scores

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The data files write_artifacts writes before any plot.
FILES = (
    runs.SCORES,
    runs.ROC,
    runs.PR,
    runs.THRESHOLD,
    runs.METRICS_JSON,
    runs.METRICS_CSV,
    runs.METRICS_TXT,
)


def _assessment(**extra) -> Assessment:
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.05, 0.25, 0.35, 0.5, 0.8, 0.2])
    judgement = judge(
        OmegaConf.create({"strategy": "fixed", "value": 0.3}),
        np.array([0.1, 0.2]),
        np.array([0, 0]),
        scores,
        labels,
    )
    return Assessment(
        title="hand-made",
        ids=np.array([f"s{i}" for i in range(6)]),
        labels=labels,
        scores=Scores(scores),
        judgement=judgement,
        **extra,
    )


def _register(monkeypatch: pytest.MonkeyPatch, name: str, file_name: str, draw) -> None:
    """A plot of the test's own, registered as a module would register it, undone after."""
    monkeypatch.setitem(plots.PLOT_FILES, name, file_name)  # first: undoing it deletes the key
    draw.__name__ = name
    monkeypatch.setattr(plots, name, plots.plot(file_name)(draw), raising=False)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(1, 1))[0]


def test_the_writer_writes_every_file_and_only_the_plots_listed(tmp_path: Path):
    assessment = _assessment()
    write_artifacts(tmp_path, assessment, ["score_histogram"])
    for name in FILES:
        assert (tmp_path / name).is_file(), name
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == ["id", "label", "score", "prediction"]
    assert list(scores["prediction"]) == [0, 0, 1, 1, 1, 0]  # strictly above 0.3
    assert json.loads((tmp_path / "threshold.json").read_text()) == {
        "value": 0.3,
        "strategy": "fixed",
        "requested": "fixed",
        "fallback_reason": None,
        "fitted_on": "val",
        "val_counts": {"normal": 2, "anomaly": 0},
    }
    assert json.loads((tmp_path / "metrics.json").read_text()) == assessment.metrics
    assert (tmp_path / "metrics.txt").read_text() == assessment.table + "\n"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["score_hist.png"]
    assert (tmp_path / "plots/score_hist.png").read_bytes().startswith(PNG_MAGIC)
    assert not (tmp_path / "pixel_metrics.json").exists()


def test_an_empty_plot_list_draws_nothing(tmp_path: Path):
    write_artifacts(tmp_path, _assessment(), [])
    assert (tmp_path / "scores.csv").is_file() and not (tmp_path / "plots").exists()


def test_the_default_plots_keep_their_file_names(tmp_path: Path):
    write_artifacts(tmp_path, _assessment(), ["roc", "score_histogram"])
    for name in ("plots/roc.png", "plots/score_hist.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC), name


def test_a_new_plot_is_one_registered_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    seen = []

    def draw(assessment: Assessment):
        # Plots come after every file: an interrupt while drawing keeps the numbers.
        seen.append((assessment.title, (tmp_path / "scores.csv").is_file()))
        return _figure()

    _register(monkeypatch, "probe", "plots/probe.png", draw)
    write_artifacts(tmp_path, _assessment(), ["probe"])
    assert seen == [("hand-made", True)]
    assert (tmp_path / "plots/probe.png").read_bytes().startswith(PNG_MAGIC)


def test_plots_get_the_anomaly_maps_and_pixel_metrics_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    maps = np.random.default_rng(0).random((6, 4, 4))
    masks = (maps > 0.5).astype(np.float32)
    pixel = {"pixel_auroc": 1.0, "pixel_aupr": 1.0, "images": 6, "anomalous_pixels": 40}
    received = []

    def draw(assessment: Assessment):
        received.append((assessment.maps, assessment.masks))
        return _figure()

    _register(monkeypatch, "maps_probe", "plots/maps.png", draw)
    write_artifacts(
        tmp_path, _assessment(maps=maps, masks=masks, pixel_metrics=pixel), ["maps_probe"]
    )
    ((got_maps, got_masks),) = received
    assert got_maps is maps and got_masks is masks
    assert json.loads((tmp_path / "pixel_metrics.json").read_text()) == pixel


def test_source_reports_are_written_beside_the_scores(tmp_path: Path):
    report = pd.DataFrame({"point": [0, 1], "score": [0.5, 0.25]})
    write_artifacts(tmp_path, _assessment(source_reports={"point_scores.csv": report}), [])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "point_scores.csv"), report)


@pytest.mark.parametrize(
    ("report", "fragments"),
    [
        ({"plots": ["roc", "heatmap"]}, ("unknown plot 'heatmap'", "roc, score_histogram")),
        ({"plots": "roc"}, ("report.plots=roc must be a list", "report.plots=[roc]")),
        ({"plots": None}, ("report.plots=None must be a list",)),
    ],
)
def test_check_plots_refuses_what_cannot_be_drawn(report: dict, fragments: tuple[str, ...]):
    with pytest.raises(AdxUserError) as refused:
        plots.check_plots(OmegaConf.create(report))
    for fragment in fragments:
        assert fragment in str(refused.value)


@pytest.mark.parametrize("report", [None, {"plots": []}, {"plots": ["score_histogram", "roc"]}])
def test_check_plots_accepts_known_names_none_and_old_configs(report: dict | None):
    plots.check_plots(None if report is None else OmegaConf.create(report))
