"""Every plot of report.plots: drawn from a hand-made assessment, skipped where it cannot
apply, and fed the right samples; one real run checks the path from a model to the files."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf
from PIL import Image

from anomaly_cli import runs
from anomaly_cli.data.base import ArraySplit
from anomaly_cli.errors import AdxUserError
from anomaly_cli.evaluation.calibration import calibrate
from anomaly_cli.evaluation.judge import judge
from anomaly_cli.reporting import plots
from anomaly_cli.reporting.artifacts import write_artifacts
from anomaly_cli.reporting.assessment import Assessment
from anomaly_cli.reporting.plots.registry import pyplot
from anomaly_cli.reporting.sample_view import (
    SampleView,
    build_view,
    extreme_positions,
    first_positions,
)
from anomaly_cli.scoring.scorer import Scores
from tests.conftest import REPO, latest, run_adx_in_process

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMAGE_PLOTS = ("reconstructions", "extremes", "difference_maps", "heatmaps", "saliency")
MC_PLOTS = ("uncertainty", "reliability")
SIDE = 8


def _assessment(*, images: bool = True, mc: bool = True, per_group: int = 2) -> Assessment:
    """Ten normal and six anomalous test samples with every part a plot may need."""
    rng = np.random.default_rng(0)
    labels = np.array([0] * 10 + [1] * 6)
    mean = rng.random(16) * 0.5 + labels * 0.4
    std = rng.random(16) * 0.05
    score = mean + std
    val_labels = np.array([0] * 8 + [1] * 4)
    val_scores = rng.random(12) * 0.5 + val_labels * 0.4
    judgement = judge(
        OmegaConf.create({"strategy": "fixed", "value": 0.6}),
        val_scores,
        val_labels,
        score,
        labels,
    )
    samples = None
    if images:
        x = rng.random((16, SIDE, SIDE, 3)).astype(np.float32)
        masks = np.zeros((16, SIDE, SIDE), np.float32)
        masks[10:, 2:5, 2:5] = 1.0
        samples = SampleView(
            positions=np.arange(16),
            images=x,
            extremes=extreme_positions(score, labels, per_group),
            firsts=first_positions(labels, per_group),
            reconstructions=x * 0.5,
            maps=np.abs(x - x * 0.5).mean(axis=-1),
            masks=masks,
            saliency=rng.random((16, SIDE, SIDE)),
            saliency_of="mse",
        )
    return Assessment(
        title="hand-made on squares",
        ids=np.array([f"s{i}" for i in range(16)]),
        labels=labels,
        scores=Scores(score, mean, std) if mc else Scores(score),
        judgement=judgement,
        history=pd.DataFrame(
            {"epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.4], "val_loss": [1, 0.7, 0.6]}
        ),
        samples=samples,
        calibration=calibrate(val_scores, val_labels, score, labels) if mc else None,
    )


def _valid_png(path: Path) -> None:
    """A PNG that PIL reads whole, of a few hundred pixels a side, not one flat colour."""
    assert path.read_bytes().startswith(PNG_MAGIC), path
    with Image.open(path) as image:
        image.load()
        assert min(image.size) >= 200, (path, image.size)
        extrema = image.convert("L").getextrema()
        assert extrema[1] - extrema[0] > 50, (path, extrema)


def test_the_default_config_lists_every_registered_plot():
    default = yaml.safe_load((REPO / "configs/report/default.yaml").read_text())
    assert plots.PLOT_FILES
    assert default["plots"] == list(plots.PLOT_FILES)
    assert set(default["plots"]) >= {"roc", "pr", "loss", *IMAGE_PLOTS, *MC_PLOTS}


def test_every_registered_plot_is_a_valid_png_of_its_own(tmp_path: Path):
    names = list(plots.PLOT_FILES)
    write_artifacts(tmp_path, _assessment(), names)
    files = {plots.PLOT_FILES[name] for name in names}
    assert len(files) == len(names)  # no plot overwrites another
    for name in names:
        _valid_png(tmp_path / plots.PLOT_FILES[name])
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(
        Path(f).name for f in files
    )


def test_runs_without_images_or_mc_dropout_skip_those_plots_with_one_info_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    # What assess gets for a table: no view, and the reason for each image part.
    split = ArraySplit(ids=np.arange(4), labels=np.array([0, 0, 1, 1]), x=np.zeros((4, 17)))
    view, missing = build_view(
        None, split, (17,), np.arange(4.0), plots.needs_of(plots.PLOT_FILES), 4, model_name="m"
    )
    assert view is None and set(missing) == {"images", "reconstructions", "maps", "saliency"}
    base = _assessment(images=False, mc=False)
    table = replace(base, missing=missing)
    with caplog.at_level(logging.INFO, logger="adx"):
        write_artifacts(tmp_path, table, list(plots.PLOT_FILES))
    drawn = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert drawn == ["loss.png", "pr.png", "roc.png", "score_hist.png"]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == len(IMAGE_PLOTS) + len(MC_PLOTS)
    assert "plot extremes skipped: the samples are 17 values, not images" in skipped[1]
    assert all(r.levelno == logging.INFO for r in caplog.records if "skipped" in r.getMessage())
    assert "ece" not in table.metrics


def test_extremes_are_the_lowest_and_highest_scores_of_each_class():
    scores = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6])
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    groups = extreme_positions(scores, labels, 2)
    assert list(groups) == [
        "lowest-scored normal",
        "highest-scored normal",
        "lowest-scored anomalous",
        "highest-scored anomalous",
    ]
    np.testing.assert_array_equal(groups["lowest-scored normal"], [1, 3])  # 0.1, 0.3
    np.testing.assert_array_equal(groups["highest-scored normal"], [2, 4])  # 0.9, 0.7
    np.testing.assert_array_equal(groups["lowest-scored anomalous"], [5, 7])  # 0.2, 0.4
    np.testing.assert_array_equal(groups["highest-scored anomalous"], [6, 8])  # 0.8, 0.6
    # Seed 000 sliced argsort(scores)[-1:n//2], which is empty: the highest never showed.
    assert len(np.argsort(scores)[-1 : 4 // 2]) == 0
    # A class smaller than two groups shows each sample once; a missing class shows none.
    few = extreme_positions(np.array([0.3, 0.1, 0.2]), np.array([0, 0, 0]), 2)
    np.testing.assert_array_equal(few["lowest-scored normal"], [1, 2])
    np.testing.assert_array_equal(few["highest-scored normal"], [0])
    assert len(few["highest-scored anomalous"]) == 0


def test_the_extremes_plot_captions_those_samples_with_score_and_prediction():
    assessment = _assessment(per_group=2)
    figure = plots.extremes(assessment)
    texts = [t.get_text() for t in figure.axes[0].texts]
    captions = [t for t in texts if "predicted" in t]
    expected = []
    for positions in extreme_positions(assessment.scores.score, assessment.labels, 2).values():
        for p in positions:
            label = ("normal", "anomaly")[assessment.labels[p]]
            predicted = "anomaly" if assessment.scores.score[p] > 0.6 else "normal"
            expected.append(f"{label}, {assessment.scores.score[p]:.4g}\npredicted {predicted}")
    assert captions == expected and len(expected) == 8
    for name in ("highest-scored anomalous", "lowest-scored normal", "reconstructed"):
        assert name in texts
    pyplot().close(figure)


def test_a_plot_needing_what_the_run_lacks_is_refused_by_draw_not_by_the_plot(tmp_path: Path):
    # A view without maps (a model that gives none): heatmaps is skipped, extremes drawn.
    base = _assessment()
    reasons = {"maps": "model=x gives no per-pixel anomaly maps"}
    view = replace(base.samples, maps=None, saliency=None)
    assessment = replace(base, samples=view, missing=reasons)
    assert plots.draw("heatmaps", assessment, tmp_path) is None
    assert assessment.lacks(("images", "maps")) == reasons["maps"]
    assert plots.draw("extremes", assessment, tmp_path) == tmp_path / "plots/extremes.png"


@pytest.mark.parametrize("samples", [0, -1, "four", 2.5])
def test_report_samples_must_be_a_positive_count(samples):
    with pytest.raises(AdxUserError, match=r"report.samples=.* must be a whole number"):
        plots.check_plots(OmegaConf.create({"plots": ["extremes"], "samples": samples}))


def test_a_tiny_image_run_draws_every_image_plot_and_skips_the_mc_ones(tiny_run: Path):
    for name in ("roc", "score_histogram", "pr", "loss", *IMAGE_PLOTS):
        _valid_png(tiny_run / plots.PLOT_FILES[name])
    for name in MC_PLOTS:
        assert not (tiny_run / plots.PLOT_FILES[name]).exists()
    log = (tiny_run / "adx.log").read_text()
    assert "plot uncertainty skipped: scores come from one pass" in log
    assert "ece" not in json.loads((tiny_run / "metrics.json").read_text())


def test_evaluate_with_mc_dropout_adds_ece_and_draws_the_source_runs_loss(
    tiny_run: Path, tmp_path: Path
):
    source = tmp_path / "source"
    shutil.copytree(tiny_run, source, ignore=shutil.ignore_patterns("tb"))
    plot_list = "report.plots=[loss,uncertainty,reliability,saliency]"
    result = run_adx_in_process(
        "evaluate", f"run={source}", "scoring.mc_dropout.samples=2", plot_list, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = latest(tmp_path)
    assert (run / runs.HISTORY).read_text() == (source / runs.HISTORY).read_text()
    for name in ("loss", "uncertainty", "reliability", "saliency"):
        _valid_png(run / plots.PLOT_FILES[name])
    assert sorted(p.name for p in (run / "plots").iterdir()) == sorted(
        ["loss.png", "uncertainty.png", "reliability.png", "saliency.png"]
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["ece"] <= 1.0
    assert f"| ECE (calibration)    | {metrics['ece']:.4f}" in (run / "metrics.txt").read_text()
    scores = pd.read_csv(run / "scores.csv")
    assert {"score_mean", "score_std"} <= set(scores.columns)


def test_a_plot_registered_with_an_unknown_need_is_refused_at_import():
    with pytest.raises(ValueError, match="'imgs'"):
        plots.plot("plots/x.png", needs=("imgs",))
