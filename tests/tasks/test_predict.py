"""`adx predict`: new data scored by a trained run, exactly as the run scored its own test split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import (
    assert_one_line_error,
    compose_config,
    run_adx_in_process,
    run_dirs,
    shared_folder,
    train_run,
)
from tests.data.fixtures_folder import make_folder_fixture, write_corrupt, write_truncated
from tests.data.fixtures_tabular import FEATURES, make_rows
from tests.data.fixtures_timeseries import make_series


def _folder_run(cwd: Path) -> Path:
    make_folder_fixture(cwd / "data", n_normal=40, n_abnormal=12, size=24)
    return train_run(
        cwd, "dataset=folder", "dataset.root=data/images", "dataset.normal_class=normal",
        "dataset.preprocess.image_size=16", "dataset.preprocess.channels=grayscale",
        "trainer.epochs=2", "report.plots=[]",
    )  # fmt: skip


def _tabular_run(cwd: Path) -> Path:
    make_rows(160, 40, seed=0).to_csv(cwd / "rows.csv", index=False)
    return train_run(
        cwd, "dataset=tabular", "dataset.path=rows.csv", "dataset.normal_class=normal",
        "model=dense_ae", "trainer.batch_size=16", "trainer.epochs=2", "report.plots=[]",
    )  # fmt: skip


@pytest.fixture(scope="session")
def folder_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-epoch conv AE on a folder of 52 PNGs (root/data/images/{normal,abnormal})."""
    return shared_folder(tmp_path_factory, "predict_folder", _folder_run)


@pytest.fixture(scope="session")
def tabular_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_folder(tmp_path_factory, "predict_tabular", _tabular_run)


def _predict(cwd: Path, *args: str) -> Path:
    before = run_dirs(cwd)
    result = run_adx_in_process("predict", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    (made,) = run_dirs(cwd) - before
    assert "_predict_" in made
    return cwd / "outputs" / made


def _data_root(run: Path) -> Path:
    return run.parents[1]


def test_predict_on_a_runs_test_images_equals_its_scores_csv(folder_run: Path, tmp_path: Path):
    predicted = _predict(
        tmp_path, f"run={folder_run}", f"input={_data_root(folder_run)}/data/images"
    )
    rows = pd.read_csv(predicted / "predictions.csv")
    scores = pd.read_csv(folder_run / "scores.csv")
    assert len(rows) == 52 and list(rows.columns[:3]) == ["path", "score", "label"]
    merged = scores.merge(rows, left_on="id", right_on="path", suffixes=("_run", ""))
    assert len(merged) == len(scores) > 0  # scores.csv ids are paths below data/images
    # The same decode, preprocessing, checkpoint and batch size: bit for bit the same.
    assert (merged["score_run"].to_numpy() == merged["score"].to_numpy()).all()
    assert ((merged["label"] == "anomaly") == (merged["prediction"] == 1)).all()
    info = json.loads((predicted / "run.json").read_text())
    threshold = json.loads((folder_run / "threshold.json").read_text())["value"]
    assert info["threshold"]["value"] == threshold and info["counts"]["scored"] == 52
    assert not (predicted / "unreadable.csv").exists()


def test_unreadable_files_are_skipped_listed_and_the_rest_scored(folder_run: Path, tmp_path: Path):
    source = _data_root(folder_run) / "data" / "images" / "normal"
    new = tmp_path / "new"
    (new / "day2").mkdir(parents=True)
    kept = sorted(p.name for p in source.iterdir())[:5]
    for name in kept:
        shutil.copy(source / name, new / "day2" / name)
    write_corrupt(new / "day2" / "broken.png")
    write_truncated(new / "cut.png")
    (new / "notes.txt").write_text("not an image, not listed")
    (new / ".thumbs").mkdir()  # a hidden folder is not the user's data: left out
    shutil.copy(source / kept[0], new / ".thumbs" / kept[0])
    before = run_dirs(tmp_path)
    result = run_adx_in_process("predict", f"run={folder_run}", "input=new", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (made,) = run_dirs(tmp_path) - before
    predicted = tmp_path / "outputs" / made
    rows = pd.read_csv(predicted / "predictions.csv")
    assert list(rows["path"]) == [f"day2/{name}" for name in kept]  # in sorted order
    assert np.isfinite(rows["score"]).all()
    bad = pd.read_csv(predicted / "unreadable.csv")
    assert list(bad["path"]) == ["cut.png", "day2/broken.png"]
    assert bad["error"].str.len().min() > 0
    assert "skipped 2 unreadable input(s)" in result.stderr
    assert "day2/broken.png" in result.stderr and "cut.png" in result.stderr


def test_threshold_override_relabels_and_heatmaps_are_capped_to_flagged_images(
    folder_run: Path, tmp_path: Path
):
    images = f"{_data_root(folder_run)}/data/images"
    test_scores = np.sort(pd.read_csv(folder_run / "scores.csv")["score"].to_numpy())
    threshold = float((test_scores[-6] + test_scores[-5]) / 2)  # five test images above it
    predicted = _predict(
        tmp_path, f"run={folder_run}", f"input={images}", f"threshold={threshold}",
        "predict.max_heatmaps=3",
    )  # fmt: skip
    rows = pd.read_csv(predicted / "predictions.csv", keep_default_na=False)
    flagged = rows["score"] > threshold
    assert ((rows["label"] == "anomaly") == flagged).all()
    assert 5 <= flagged.sum() < len(rows)
    written = sorted(p.relative_to(predicted).as_posix() for p in predicted.rglob("*.png"))
    assert len(written) == 3  # capped, though more images are flagged
    top = rows.nlargest(3, "score")
    assert sorted(top["heatmap"]) == written  # the three highest-scored flagged images
    assert (rows.drop(top.index)["heatmap"] == "").all()
    with Image.open(predicted / written[0]) as overlay:
        assert overlay.size == (16, 16) and overlay.mode == "RGB"
    info = json.loads((predicted / "run.json").read_text())
    assert info["threshold"] == {"value": threshold, "from": "threshold.value"}


def test_an_image_of_any_size_goes_to_an_array_source_run_and_mc_dropout_adds_score_std(
    tiny_run: Path, tmp_path: Path
):
    """dataset=synthetic trained on 16x16 grayscale arrays; a 40x30 RGBA photo still scores."""
    run = tmp_path / "mc_run"
    shutil.copytree(tiny_run, run)
    config = (run / "config.yaml").read_text()
    assert "samples: 0" in config
    (run / "config.yaml").write_text(config.replace("samples: 0", "samples: 3", 1))
    pixels = np.random.default_rng(0).integers(0, 256, (30, 40, 4), dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").save(tmp_path / "photo.png")
    predicted = _predict(tmp_path, f"run={run}", "input=photo.png")
    rows = pd.read_csv(predicted / "predictions.csv")
    assert list(rows["path"]) == ["photo.png"] and np.isfinite(rows["score"]).all()
    assert {"score_mean", "score_std"} <= set(rows.columns)
    assert (rows["score_std"] >= 0).all()


def test_tabular_predict_equals_scores_csv_and_ignores_the_class_column(
    tabular_run: Path, tmp_path: Path
):
    table = _data_root(tabular_run) / "rows.csv"
    shuffled = pd.read_csv(table)[[*reversed(FEATURES), "label"]]  # column order is free
    shuffled.to_parquet(tmp_path / "rows.parquet")
    predicted = _predict(tmp_path, f"run={tabular_run}", "input=rows.parquet")
    rows = pd.read_csv(predicted / "predictions.csv")
    scores = pd.read_csv(tabular_run / "scores.csv")
    assert len(rows) == 200 and rows["id"].iloc[0] == "row-000000"
    merged = scores.merge(rows, on="id", suffixes=("_run", ""))
    assert len(merged) == len(scores) > 0
    np.testing.assert_array_equal(merged["score_run"], merged["score"])


SERIES = ("dataset.time_column=time", "dataset.anomaly_column=label", "dataset.window=16",
          "dataset.stride=8")  # fmt: skip


def _series_csv(folder: Path) -> Path:
    frame = make_series(n=600, intervals=((100, 104), (420, 430), (520, 527)))
    frame.to_csv(folder / "series.csv", index=False)
    return folder / "series.csv"


def test_series_windows_are_the_windows_the_run_scored(tmp_path: Path):
    """What predict feeds the model equals the run's test windows, so the scores are equal
    (checked end to end by the slow test below); no model needed."""
    from anomaly_cli.data.loader import load_splits
    from anomaly_cli.prediction.inputs import open_reader
    from anomaly_cli.prediction.source import SERIES as SERIES_KIND
    from anomaly_cli.prediction.source import TrainedRun, check_input

    path = _series_csv(tmp_path)
    cfg = compose_config("train", "dataset=timeseries", f"dataset.path={path}", *SERIES)
    splits = load_splits(cfg.dataset, cfg.protocol)
    trained = TrainedRun(
        tmp_path, cfg, SERIES_KIND, splits.input_shape, 0.0, "test", splits.transform
    )
    reader = open_reader(trained, check_input(trained, str(path)))
    x = np.concatenate(list(reader.batches(64, lambda n: None)))
    assert len(x) == len(reader.ids) == (600 - 16) // 8 + 1 and reader.ids[1] == "t=4.0"
    where = {name: i for i, name in enumerate(reader.ids)}
    assert len(splits.test.ids) > 0  # the test part starts at point 480, a multiple of 8
    np.testing.assert_array_equal(x[[where[i] for i in splits.test.ids]], splits.test.x)


@pytest.mark.slow
def test_series_predict_scores_windows_as_the_run_did(tmp_path: Path):
    _series_csv(tmp_path)
    run = train_run(
        tmp_path, "dataset=timeseries", "dataset.path=series.csv", *SERIES, "model=conv1d_ae",
        "trainer.epochs=2",
    )  # fmt: skip
    predicted = _predict(tmp_path, f"run={run}", "input=series.csv")
    rows = pd.read_csv(predicted / "predictions.csv")
    merged = pd.read_csv(run / "scores.csv").merge(rows, on="id", suffixes=("_run", ""))
    assert len(merged) > 0
    np.testing.assert_array_equal(merged["score_run"], merged["score"])


# case -> (the run, the arguments after run=, what the one line must say)
WRONG_INPUT = {
    "no input": ("folder", [], ("input is not set", "images of shape (16, 16, 1)")),
    "missing path": ("folder", ["input=nowhere"], ("input=nowhere does not exist",)),
    "a table for an image run": ("folder", ["input=rows.csv"], ("is not an image", "input=")),
    "an empty folder": ("folder", ["input=empty"], ("holds no images", "sub-folders")),
    "images for a table run": ("tabular", ["input=pics"], ("is a folder", "(dataset=tabular)")),
    "missing feature columns": ("tabular", ["input=few.csv"], ("lacks column(s) f03, f07",)),
    "bad threshold": ("folder", ["input=pics", "threshold=high"], ("must be a finite number",)),
    "only unreadable files": ("folder", ["input=junk"], ("none of its 1 input(s) could be read",)),
}


@pytest.mark.parametrize("case", list(WRONG_INPUT))
def test_wrong_input_is_one_line_exit_2_and_leaves_no_folder(
    request: pytest.FixtureRequest, tmp_path: Path, case: str
):
    run_name, args, fragments = WRONG_INPUT[case]
    run = request.getfixturevalue(f"{run_name}_run")
    make_rows(5, 1, seed=2).to_csv(tmp_path / "rows.csv", index=False)
    make_rows(5, 1, seed=2).drop(columns=["f03", "f07"]).to_csv(tmp_path / "few.csv", index=False)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.txt").write_text("no images here")
    (tmp_path / "pics").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "pics" / "a.png")
    write_corrupt(tmp_path / "junk" / "x.png")
    result = run_adx_in_process("predict", f"run={run}", *args, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "outputs").exists(), case  # not even an empty outputs/
