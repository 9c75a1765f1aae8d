"""`adx compare`: a column per run equal to its metrics.json, multirun folders, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf
from PIL import Image

from anomaly_cli.reporting import compare as content
from tests.conftest import assert_one_line_error, run_adx_in_process


def _copy(run: Path, to: Path, drop: tuple[str, ...] = ()) -> Path:
    """A run's files without its checkpoints (compare never reads them)."""
    shutil.copytree(run, to, ignore=shutil.ignore_patterns("checkpoints", "tb", "plots"))
    for name in drop:
        (to / name).unlink()
    return to


def _compare(cwd: Path, runs: str) -> tuple[str, Path]:
    result = run_adx_in_process("compare", f"runs={runs}", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = [p for p in (cwd / "outputs").iterdir() if "_compare_" in p.name]
    return result.stdout, folder


def _png_size(path: Path) -> tuple[int, int]:
    assert path.stat().st_size > 5_000, path
    with Image.open(path) as image:
        image.verify()
        return image.size


def test_two_runs_give_columns_equal_to_each_metrics_json(
    tiny_run: Path, digits_run: Path, tmp_path: Path
):
    stdout, folder = _compare(tmp_path, f"[{tiny_run},{digits_run}]")
    assert folder.name.endswith("_compare_conv_ae_2_runs")
    frame = pd.read_csv(folder / "compare.csv").set_index("metric")
    # Both are conv_ae, so the columns are named by the overrides that differ.
    assert len(frame.columns) == 2 and "dataset=digits" in frame.columns[1]
    for column, run in zip(frame.columns, (tiny_run, digits_run), strict=True):
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics and {k: frame.loc[k, column] for k in metrics} == metrics
        seconds = json.loads((run / "run.json").read_text())["train_seconds"]
        assert frame.loc["train_seconds", column] == seconds
        assert str(run) in stdout
    assert list(frame.index[-1:]) == ["train_seconds"]
    # synthetic vs digits: flagged above the table, in every form of it.
    for text in (stdout, (folder / "compare.txt").read_text(), (folder / "compare.md").read_text()):
        head = text.split("| Metric")[0]
        assert "DIFFERENT DATA" in head and "synthetic" in head and "digits" in head
    assert "\n|:--" in (folder / "compare.md").read_text()  # a pipe table
    assert _png_size(folder / "plots/roc.png") == (600, 600)
    assert _png_size(folder / "plots/train_time.png")[0] >= 500
    report = (folder / "report.html").read_text()
    assert all(name in report for name in frame.columns) and "DIFFERENT DATA" in report


def test_a_multirun_folder_compares_its_finished_runs_and_lists_the_rest(
    tiny_run: Path, digits_run: Path, tmp_path: Path
):
    sweep = tmp_path / "outputs" / "multirun" / "2026-01-01_00-00-00_train"
    _copy(tiny_run, sweep / "10_conv_ae_synthetic")
    _copy(digits_run, sweep / "2_conv_ae_digits")
    failed = _copy(tiny_run, sweep / "3_conv_ae_synthetic", drop=("metrics.json",))
    status = json.loads((failed / "status.json").read_text())
    (failed / "status.json").write_text(json.dumps({**status, "status": "failed"}))
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    stdout, folder = _compare(tmp_path, str(tmp_path / "outputs" / "multirun"))
    frame = pd.read_csv(folder / "compare.csv")
    # Hydra's job numbers in order (2 before 10), the unfinished job skipped, not fatal.
    assert "dataset=digits" in frame.columns[1] and "dataset=synthetic" in frame.columns[2]
    assert f"skipped {failed}: train failed" in stdout
    assert f"skipped {failed}" in (folder / "compare.txt").read_text()


def _summary(name: str, model: str, overrides: tuple[str, ...], **config: object):
    return content.RunSummary(
        path=Path("/runs") / name,
        model=model,
        dataset="digits",
        verb="train",
        overrides=overrides,
        metrics={"auroc": 0.5},
        train_seconds=1.0,
        test_counts={"normal": 1, "anomaly": 1},
        config=OmegaConf.create(config),
    )


def test_columns_are_named_by_model_else_by_the_overrides_that_differ():
    by_model = content.with_column_names(
        [_summary("a", "conv_ae", ("model=conv_ae",)), _summary("b", "vae", ("model=vae",))]
    )
    assert [s.name for s in by_model] == ["conv_ae", "vae"]
    by_overrides = content.with_column_names(
        [
            _summary("a", "vae", ("model=vae", "trainer.epochs=5", "trainer.verbose=0")),
            _summary("b", "vae", ("model=vae",), trainer={"epochs": 30}),
            _summary("c", "vae", ("model=vae", "trainer.epochs=5", "hydra.run.dir=x")),
        ]
    )
    # Where a run has no override, its config says the value; repeats get their folder.
    assert [s.name for s in by_overrides] == [
        "trainer.epochs=5 (a)",
        "trainer.epochs=30",
        "trainer.epochs=5 (c)",
    ]


def test_an_evaluate_run_shows_its_source_runs_training_time(tiny_run: Path, tmp_path: Path):
    run = tmp_path / "evaluate"
    run.mkdir()
    shutil.copy(tiny_run / "metrics.json", run)
    info = {"verb": "evaluate", "source_run": str(tiny_run), "model": "conv_ae"}
    (run / "run.json").write_text(json.dumps(info))
    seconds = json.loads((tiny_run / "run.json").read_text())["train_seconds"]
    assert seconds > 0 and content.read_run(run).train_seconds == seconds
    info["source_run"] = str(tmp_path / "gone")
    (run / "run.json").write_text(json.dumps(info))
    assert content.read_run(run).train_seconds is None  # blank, not an error


def test_the_roc_overlay_draws_one_curve_per_run_from_its_roc_csv(tiny_run: Path, digits_run: Path):
    summaries = content.with_column_names([content.read_run(p) for p in (tiny_run, digits_run)])
    curves = content.roc_curves(summaries)
    assert [c.name for c in curves] == [s.name for s in summaries]
    for curve, run in zip(curves, (tiny_run, digits_run), strict=True):
        points = pd.read_csv(run / "roc.csv")
        assert list(curve.fpr) == list(points["fpr"]) and list(curve.tpr) == list(points["tpr"])
        assert curve.auroc == json.loads((run / "metrics.json").read_text())["auroc"]
    figure = content.roc_figure(curves)
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    import matplotlib.pyplot as plt

    plt.close(figure)
    assert labels == [f"{c.name} (AUROC = {c.auroc:.3f})" for c in curves] + ["chance"]


def _unfinished_sweep(tiny_run: Path, tmp_path: Path) -> str:
    _copy(tiny_run, tmp_path / "sweep" / "0_conv_ae_synthetic", drop=("metrics.json",))
    return str(tmp_path / "sweep")


def _sweep_folder(run: Path, tmp: Path) -> str:
    (tmp / "s" / ".hydra").mkdir(parents=True)
    (tmp / "s" / "status.json").write_text('{"verb": "sweep", "status": "finished"}')
    return f"[{run},{tmp / 's'}]"


BAD_RUNS = {
    "no runs": (lambda run, tmp: None, ("name the runs",)),
    "missing path": (lambda run, tmp: str(tmp / "nope"), ("does not exist",)),
    "not a run": (lambda run, tmp: str(tmp), ("holds no adx runs",)),
    "unfinished run": (
        lambda run, tmp: f"[{_copy(run, tmp / 'r', drop=('metrics.json',))},{run}]",
        ("cannot be compared (no metrics.json)", "finished train or evaluate runs"),
    ),
    "a sweep folder": (_sweep_folder, ("cannot be compared (an adx sweep folder)",)),
    "one run": (lambda run, tmp: f"[{run}]", ("at least two finished runs", "gives 1")),
    "no finished run in a folder": (
        _unfinished_sweep,
        ("at least two finished runs", "gives 0", "skipped 1"),
    ),
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_bad_runs_are_one_line_and_leave_no_folder(case: str, tiny_run: Path, tmp_path: Path):
    make, fragments = BAD_RUNS[case]
    (tmp_path / "in").mkdir()
    runs = make(tiny_run, tmp_path / "in")
    args = ("compare",) if runs is None else ("compare", f"runs={runs}")
    result = run_adx_in_process(*args, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "outputs").exists()
