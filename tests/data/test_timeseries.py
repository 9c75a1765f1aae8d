"""dataset=timeseries: time-ordered cuts, sliding windows, z-score, per-point scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from anomaly_cli.config_dir import config_dir
from anomaly_cli.data import timeseries
from anomaly_cli.data.base import CLEAN, TRANSDUCTIVE, UNSUPERVISED, LoadContext
from anomaly_cli.errors import AdxUserError
from tests.conftest import latest, run_adx, run_adx_in_process, run_dirs, train_run
from tests.data.fixtures_timeseries import (
    ANOMALY_INTERVALS,
    make_series,
    make_timeseries_csv,
    make_timeseries_fixture,
)


def config(path: Path, **overrides) -> OmegaConf:
    cfg = OmegaConf.load(config_dir() / "dataset" / "timeseries.yaml")
    cfg.path = str(path)
    cfg.anomaly_column = "label"
    cfg.value_columns = ["sensor_a", "sensor_b"]  # not time: these tests name windows by index
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def load(path: Path, protocol: str = CLEAN, transform: dict | None = None, **overrides):
    ctx = LoadContext(seed=0, protocol=protocol, transform=transform)
    return timeseries.load(config(path, **overrides), ctx)


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    return make_timeseries_csv(tmp_path)


def starts_of(split) -> np.ndarray:
    return np.array([int(i.removeprefix("t=")) for i in split.ids])


def test_windows_are_cut_in_time_order_and_never_cross_a_cut(csv: Path):
    splits = load(csv)
    assert splits.input_shape == (32, 2)
    assert splits.info["columns"] == ["sensor_a", "sensor_b"]
    assert splits.info["point_ranges"] == {
        "train": [0, 1799],
        "val": [1800, 2399],
        "test": [2400, 2999],
    }
    # (600 - 32) // 8 + 1 = 72 windows in val and in test; 222 in train, none dropped.
    assert [len(s) for s in (splits.train, splits.val, splits.test)] == [222, 72, 72]
    assert splits.info["dropped_train_windows"] == 0
    for split, (begin, end) in zip(
        (splits.train, splits.val, splits.test), splits.info["point_ranges"].values(), strict=True
    ):
        starts = starts_of(split)
        assert np.all(np.diff(starts) == 8)
        assert starts.min() >= begin and starts.max() + 31 <= end
    assert starts_of(splits.train).max() < starts_of(splits.val).min()


def test_a_window_is_anomalous_when_any_point_is(csv: Path):
    splits = load(csv)
    labels = make_series()["label"].to_numpy()
    for split in (splits.val, splits.test):
        expected = [int(labels[s : s + 32].any()) for s in starts_of(split)]
        assert split.labels.tolist() == expected
        assert split.x.shape == (len(split), 32, 2) and len(split) == 72
    assert splits.counts()["test"] == {"normal": 52, "anomaly": 20}
    assert splits.test.class_counts() == {"anomaly": 20, "normal": 52}
    # The window at t=2496 covers the spike at 2500-2507: sensor_a far above the rest.
    at = list(splits.test.ids).index("t=2496")
    assert splits.test.labels[at] == 1 and splits.test.x[at, 4:12, 0].min() > 3.0


def test_clean_protocol_drops_anomalous_train_windows_and_unsupervised_keeps_them(
    tmp_path: Path,
):
    path = make_timeseries_csv(tmp_path, intervals=((100, 100), *ANOMALY_INTERVALS))
    clean = load(path)
    # Point 100 lies in the windows starting at 72, 80, ..., 96 (stride 8, window 32).
    assert clean.info["dropped_train_windows"] == 4
    assert len(clean.train) == 218 and clean.train.counts()["anomaly"] == 0
    unsupervised = load(path, protocol=UNSUPERVISED)
    assert unsupervised.info["dropped_train_windows"] == 0
    assert unsupervised.train.counts() == {"normal": 218, "anomaly": 4}
    assert unsupervised.protocol == UNSUPERVISED
    assert unsupervised.info["zscore"]["fitted_on"] == "train part"


def test_zscore_is_fitted_on_normal_train_points_and_saved_json_ready(csv: Path):
    splits = load(csv)
    raw = make_series()[["sensor_a", "sensor_b"]].to_numpy()[:1800]
    assert splits.transform["columns"] == ["sensor_a", "sensor_b"]
    np.testing.assert_allclose(splits.transform["mean"], raw.mean(axis=0))
    np.testing.assert_allclose(splits.transform["std"], raw.std(axis=0))
    assert json.loads(json.dumps(splits.transform)) == splits.transform
    assert splits.info["zscore"]["mean"]["sensor_b"] == pytest.approx(3.0, abs=0.05)
    train_points = splits.train.x.reshape(-1, 2)
    np.testing.assert_allclose(train_points.mean(axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose(train_points.std(axis=0), 1.0, atol=0.02)


def test_a_given_transform_is_applied_instead_of_refitting(csv: Path):
    identity = {
        "kind": "zscore",
        "columns": ["sensor_a", "sensor_b"],
        "mean": [0, 0],
        "std": [1, 1],
    }
    splits = load(csv, transform=identity)
    raw = make_series()[["sensor_a", "sensor_b"]].to_numpy()
    np.testing.assert_allclose(splits.test.x[0], raw[2400:2432], rtol=1e-6)
    assert splits.transform == identity
    assert splits.info["zscore"]["fitted_on"] == "data_transform.json of the trained run"
    other = {**identity, "columns": ["sensor_a", "pressure"]}
    with pytest.raises(AdxUserError, match="trained run z-scored columns sensor_a, pressure"):
        load(csv, transform=other)


def test_rows_are_sorted_by_time_and_named_by_it(tmp_path: Path):
    frame = make_series()
    frame.sample(frac=1.0, random_state=1).to_csv(tmp_path / "shuffled.csv", index=False)
    # value_columns=null: every numeric column except the anomaly and time columns.
    splits = load(tmp_path / "shuffled.csv", time_column="time", value_columns=None)
    assert splits.info["columns"] == ["sensor_a", "sensor_b"]
    assert splits.test.ids[:2].tolist() == ["t=1200.0", "t=1204.0"]
    assert splits.counts()["test"] == {"normal": 52, "anomaly": 20}
    expected = load(make_timeseries_csv(tmp_path))
    np.testing.assert_allclose(splits.test.x, expected.test.x, rtol=1e-6)


def test_intervals_inline_or_from_a_file_give_the_same_labels(tmp_path: Path):
    path = make_timeseries_csv(tmp_path)
    by_column = load(path)
    inline = load(
        path,
        anomaly_column=None,
        value_columns=["sensor_a", "sensor_b"],
        intervals=[list(i) for i in ANOMALY_INTERVALS],
    )
    pd.DataFrame(ANOMALY_INTERVALS, columns=["start", "end"]).to_csv(
        tmp_path / "iv.csv", index=False
    )
    from_file = load(
        path,
        anomaly_column=None,
        value_columns=["sensor_a", "sensor_b"],
        intervals_path=str(tmp_path / "iv.csv"),
    )
    for splits in (inline, from_file):
        for name in ("train", "val", "test"):
            assert getattr(splits, name).labels.tolist() == getattr(by_column, name).labels.tolist()
    assert from_file.info["labels_from"].startswith("intervals_path ")


def test_true_false_labels_are_read_and_other_values_are_named(tmp_path: Path):
    frame = make_series()
    frame["label"] = np.where(frame["label"] == 1, "True", "false")
    frame.to_csv(tmp_path / "tf.csv", index=False)
    assert load(tmp_path / "tf.csv").counts()["test"]["anomaly"] == 20
    frame.loc[5, "label"] = "2"
    frame.loc[6, "label"] = None
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(AdxUserError, match="must hold 0/1 or true/false, found 2, <empty>"):
        load(tmp_path / "bad.csv")


def test_missing_values_are_interpolated_or_refused(tmp_path: Path):
    frame = make_series()
    frame.loc[[0, 1], "sensor_a"] = np.nan  # an edge: takes the nearest value
    truth = frame.loc[[99, 101], "sensor_a"].mean()
    frame.loc[100, "sensor_a"] = np.nan  # inside: the mean of its neighbours
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    splits = load(tmp_path / "gaps.csv", transform=_identity())
    assert splits.info["missing_values_filled"] == {"sensor_a": 3, "sensor_b": 0}
    first = splits.train.x[0, :, 0]
    assert first[0] == first[1] == pytest.approx(frame.loc[2, "sensor_a"])
    window = list(splits.train.ids).index("t=96")
    assert splits.train.x[window, 4, 0] == pytest.approx(truth, rel=1e-5)
    with pytest.raises(
        AdxUserError, match=r"column sensor_a in .* has 3 empty cells \(first at row 0\)"
    ):
        load(tmp_path / "gaps.csv", missing="error")


def _identity() -> dict:
    return {"kind": "zscore", "columns": ["sensor_a", "sensor_b"], "mean": [0, 0], "std": [1, 1]}


def test_point_scores_average_the_windows_covering_each_test_point(csv: Path):
    splits = load(csv, window=4, stride=2, time_column="time")
    starts = np.arange(2400, 2997, 2)  # windows of 4 every 2 points in 2400-2999
    assert len(splits.test) == len(starts)
    scores = starts.astype(float)  # each window scores its own start
    table = splits.reports(scores)["point_scores.csv"]
    assert list(table.columns) == ["index", "time", "label", "score", "score_max", "windows"]
    assert table["index"].tolist() == list(range(2400, 3000))
    row = table.set_index("index")
    # Point 2403 lies in the windows starting at 2400 and 2402.
    assert row.loc[2403, "score"] == 2401.0 and row.loc[2403, "score_max"] == 2402.0
    assert row.loc[2403, "windows"] == 2 and row.loc[2400, "windows"] == 1
    assert row.loc[2403, "time"] == 1201.5
    assert row.loc[2500, "label"] == 1 and row.loc[2499, "label"] == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"window": 5000}, r"dataset.window=5000 is longer than the series \(3000 points in "),
        ({"stride": 0}, "dataset.stride=0 must be at least 1 point"),
        ({"window": 0}, "dataset.window=0 must be at least 1 point"),
        (
            {"value_columns": ["sensor_a", "pressure"]},
            "dataset.value_columns: no column pressure in .*; its columns are "
            "time, sensor_a, sensor_b, label",
        ),
        ({"anomaly_column": None}, "needs point labels to evaluate; set dataset.anomaly_column"),
        (
            {"intervals": [[1, 2]]},
            "dataset.anomaly_column and dataset.intervals are all set; keep one source of labels",
        ),
        (
            {"anomaly_column": None, "intervals": [[10, 3000]]},
            r"interval \[10, 3000\] must satisfy 0 <= start <= end < 3000",
        ),
        ({"missing": "drop"}, "dataset.missing=drop is unknown"),
        (
            {"split": {"train": 0.6, "val": 0.39, "test": 0.01}},
            r"the test part has 30 points \(dataset.split.test=0.01 of 3000\), fewer than "
            "dataset.window=32; raise dataset.split.test or lower dataset.window",
        ),
        (
            {"split": {"train": 0.6, "val": 0.0, "test": 0.4}},
            "must give train, val and test a positive fraction",
        ),
        (
            {"split": {"train": 0.5, "val": 0.48, "test": 0.02}},
            r"the test part \(points 2940-2999\) needs normal and anomalous windows, "
            "it has 4 normal, 0 anomalous; change dataset.split fractions",
        ),
    ],
)
def test_bad_settings_are_one_line_errors(csv: Path, overrides: dict, message: str):
    with pytest.raises(AdxUserError, match=message) as error:
        load(csv, **overrides)
    assert "\n" not in str(error.value)


def test_bad_files_and_columns_are_named(tmp_path: Path):
    with pytest.raises(AdxUserError, match=r"dataset.path=.*nope.csv does not exist"):
        load(tmp_path / "nope.csv")
    frame = make_series(n=40)
    frame["mode"] = "run"
    frame["empty"] = np.nan
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    with pytest.raises(
        AdxUserError, match=r"column mode in .* is not numeric \(e.g. 'run' at row 0"
    ):
        load(tmp_path / "mixed.csv", value_columns=["sensor_a", "mode"])
    with pytest.raises(AdxUserError, match=r"column empty in .* has no value at all"):
        load(tmp_path / "mixed.csv", value_columns=None)  # picks every numeric column
    (tmp_path / "header.csv").write_text("sensor_a,label\n")
    with pytest.raises(AdxUserError, match="holds no rows"):
        load(tmp_path / "header.csv")


def test_a_train_part_without_normal_windows_and_transductive_are_refused(tmp_path: Path):
    path = make_timeseries_csv(tmp_path, intervals=((0, 1799), (2500, 2507)))
    with pytest.raises(
        AdxUserError,
        match=r"the train part \(points 0-1799\) has no normal window of 32 points "
        r"\(222 windows with anomalies dropped\)",
    ):
        load(path)
    with pytest.raises(AdxUserError, match="protocol=transductive would score the training"):
        load(path, protocol=TRANSDUCTIVE)


def test_cli_bad_window_exits_2_with_one_line_and_no_run_dir(tmp_path: Path):
    make_timeseries_csv(tmp_path)
    result = run_adx(
        "train",
        "dataset=timeseries",
        "dataset.path=series.csv",
        "dataset.anomaly_column=label",
        "dataset.window=4000",
        "model=dense_ae",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("adx: error:")]
    assert errors == [
        "adx: error: dataset.window=4000 is longer than the series (3000 points in "
        "series.csv); lower dataset.window or use a longer series"
    ]
    assert run_dirs(tmp_path) == set()


def test_train_dense_ae_on_windows_then_evaluate_reuses_the_transform(tmp_path: Path):
    make_timeseries_fixture(tmp_path)
    common = (
        "dataset=timeseries",
        "dataset.path=timeseries/series.csv",
        "dataset.time_column=time",
        "dataset.intervals_path=timeseries/anomalies.csv",
        "dataset.window=32",
        "dataset.stride=8",
    )
    run = train_run(tmp_path, *common, "model=dense_ae", "trainer.epochs=4")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["auroc"] >= 0.85, metrics
    data = json.loads((run / "data.json").read_text())
    assert data["counts"]["test"] == {"normal": 52, "anomaly": 20}
    assert data["missing_values_filled"] == {"sensor_a": 3, "sensor_b": 0}
    assert data["input_shape"] == [32, 2]
    transform = json.loads((run / "data_transform.json").read_text())
    assert transform["columns"] == ["sensor_a", "sensor_b"]
    points = pd.read_csv(run / "point_scores.csv")
    assert list(points.columns) == ["index", "time", "label", "score", "score_max", "windows"]
    assert points["index"].tolist() == list(range(2400, 3000))
    assert int(points["label"].sum()) == 8 + 50 + 12
    # Points inside the planted anomalies score higher than the rest on average.
    assert (
        points.loc[points.label == 1, "score"].mean()
        > points.loc[points.label == 0, "score"].mean()
    )

    result = run_adx_in_process("evaluate", f"run={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    evaluated = latest(tmp_path)
    assert evaluated != run and (evaluated / "point_scores.csv").is_file()
    again = json.loads((evaluated / "data.json").read_text())
    assert again["zscore"]["fitted_on"] == "data_transform.json of the trained run"
    assert json.loads((evaluated / "metrics.json").read_text())["auroc"] == metrics["auroc"]
