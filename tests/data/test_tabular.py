"""The tabular source: rows of a CSV / parquet table, transform fitted on train and reused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from anomaly_cli.data.base import LoadContext, Splits
from anomaly_cli.data.tabular import FITTED, REUSED, load
from anomaly_cli.errors import AdxUserError
from tests.conftest import REPO, latest, run_adx, run_adx_in_process, run_dirs
from tests.data.fixtures_tabular import FEATURES, make_rows, make_tabular_fixture

SEED = 7


def tabular_cfg(path: Path, *overrides: str) -> Any:
    """configs/dataset/tabular.yaml with `key=value` overrides, as Hydra would compose it."""
    base = OmegaConf.load(REPO / "configs" / "dataset" / "tabular.yaml")
    extra = OmegaConf.from_dotlist([f"path={path}", "normal_class=normal", *overrides])
    cfg = OmegaConf.merge(base, extra)
    OmegaConf.set_struct(cfg, True)
    return cfg


def load_table(
    path: Path, *overrides: str, transform: dict | None = None, seed: int = SEED
) -> Splits:
    return load(tabular_cfg(path, *overrides), LoadContext(seed=seed, transform=transform))


def rows_by_id(frame: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """The raw rows behind row-NNNNNN ids."""
    return frame.iloc[[int(i.removeprefix("row-")) for i in ids]]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    frame = make_rows(200, 40, seed=0)
    path = tmp_path_factory.mktemp("tabular") / "rows.csv"
    frame.to_csv(path, index=False)
    return path, frame


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "rows.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_rows_become_standardised_samples_fitted_on_train_only(table):
    path, frame = table
    splits = load_table(path)
    assert splits.input_shape == (17,)
    assert splits.counts() == {
        "train": {"normal": 120, "anomaly": 0},
        "val": {"normal": 40, "anomaly": 20},
        "test": {"normal": 40, "anomaly": 20},
    }
    ids = np.concatenate([splits.train.ids, splits.val.ids, splits.test.ids])
    assert len(set(ids)) == 240 and all(i.startswith("row-") and len(i) == 10 for i in ids)
    # Train is standardised exactly; test keeps train's mean and scale, so it is not.
    np.testing.assert_allclose(splits.train.x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(splits.train.x.std(axis=0), 1, atol=1e-4)
    assert np.abs(splits.test.x.mean(axis=0)).max() > 0.05
    train_raw = rows_by_id(frame, splits.train.ids)[FEATURES].to_numpy()
    np.testing.assert_allclose(splits.transform["scaler"]["mean"], train_raw.mean(axis=0))
    test_raw = rows_by_id(frame, splits.test.ids)[FEATURES].to_numpy()
    expected = (test_raw - train_raw.mean(axis=0)) / train_raw.std(axis=0)
    np.testing.assert_allclose(splits.test.x, expected, rtol=1e-4, atol=1e-4)
    assert splits.info["source"] == "tabular" and splits.info["transform"] == FITTED
    assert splits.info["features"] == FEATURES and splits.info["scaler"] == "standard"
    assert splits.info["normal_classes"] == ["normal"]
    assert splits.info["anomaly_classes"] == ["anomaly"]


def test_minmax_maps_train_onto_zero_to_one(table):
    path, _ = table
    splits = load_table(path, "scaler=minmax")
    np.testing.assert_allclose(splits.train.x.min(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(splits.train.x.max(axis=0), 1, atol=1e-6)
    assert splits.test.x.min() < 0 or splits.test.x.max() > 1  # test is not refitted


def test_pca_is_fitted_on_scaled_train_rows(table):
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    path, frame = table
    splits = load_table(path, "pca_components=3")
    assert splits.input_shape == (3,)
    assert splits.info["pca"]["components"] == 3
    assert splits.info["pca"]["explained_variance"] > 0.99  # the rows are rank 3 plus noise
    train_raw = rows_by_id(frame, splits.train.ids)[FEATURES].to_numpy()
    scaled = StandardScaler().fit_transform(train_raw)
    pca = PCA(n_components=3, svd_solver="full").fit(scaled)
    np.testing.assert_allclose(splits.train.x, pca.transform(scaled), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(splits.train.x.mean(axis=0), 0, atol=1e-5)


def test_too_many_pca_components_is_an_error(table):
    path, _ = table
    with pytest.raises(AdxUserError, match=r"dataset.pca_components=18 must be a whole number"):
        load_table(path, "pca_components=18")


def test_evaluate_reapplies_the_saved_transform_instead_of_refitting(table, tmp_path):
    path, _ = table
    trained = load_table(path, "pca_components=4")
    state = json.loads(json.dumps(trained.transform))  # JSON-ready, as saved with the run
    shifted = make_rows(100, 20, seed=5, shift=3.0)
    again = load_table(write(tmp_path, shifted), "pca_components=4", transform=state)
    assert again.transform == state and again.info["transform"] == REUSED
    # Shifted rows stay shifted under the training run's transform; a refit would centre them.
    assert np.abs(again.train.x.mean(axis=0)).max() > 1.0
    # The same rows give the same inputs under the saved state as when it was fitted.
    same = load_table(path, "pca_components=4", transform=state)
    np.testing.assert_array_equal(same.test.x, trained.test.x)


def test_evaluate_names_the_columns_the_new_table_lacks(table, tmp_path):
    path, frame = table
    state = load_table(path).transform
    lacking = write(tmp_path, frame.drop(columns=["f03", "f11"]))
    with pytest.raises(
        AdxUserError, match=r"lacks column\(s\) f03, f11 that the training run used"
    ):
        load_table(lacking, transform=state)


def test_evaluate_refuses_a_different_scaler(table):
    path, _ = table
    state = load_table(path).transform
    with pytest.raises(
        AdxUserError, match=r"^dataset.scaler=minmax differs from the training run's standard"
    ):
        load_table(path, "scaler=minmax", transform=state)


def test_a_table_without_the_class_column_lists_its_columns(tmp_path):
    path = write(tmp_path, pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
    with pytest.raises(AdxUserError) as error:
        load_table(path)
    assert str(error.value) == (
        f"dataset.class_column=label is not a column of {path}; columns: a, b"
    )


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(AdxUserError, match=r"^dataset.path=.*nowhere.csv does not exist"):
        load_table(tmp_path / "nowhere.csv")


def test_text_columns_need_categorical_onehot(table, tmp_path):
    _, frame = table
    path = write(tmp_path, frame.assign(site=np.where(np.arange(len(frame)) % 2, "a", "b")))
    with pytest.raises(AdxUserError) as error:
        load_table(path)
    assert str(error.value).startswith(f"column(s) site of {path} hold text, not numbers; ")
    assert "dataset.categorical=onehot" in str(error.value)
    with pytest.raises(AdxUserError, match=r"column\(s\) site .* drop it from dataset.feature"):
        load_table(path, "feature_columns=[f00,site]")
    assert load_table(path, "feature_columns=[f00,f01]").input_shape == (2,)


def test_onehot_categories_come_from_train_and_unseen_ones_are_zero(table, tmp_path):
    path, frame = table
    splits = load_table(path)
    # Train rows get site a or b; val/test rows also see c, which train never saw.
    in_train = set(splits.train.ids)
    site = ["a" if i % 2 else "b" for i in range(len(frame))]
    site = [s if f"row-{i:06d}" in in_train else "c" for i, s in enumerate(site)]
    coded = load_table(write(tmp_path, frame.assign(site=site)), "categorical=onehot")
    assert coded.transform["categories"] == {"site": ["a", "b"]}
    assert coded.info["features"][-2:] == ["site=a", "site=b"]
    np.testing.assert_array_equal(coded.train.x[:, -2:].sum(axis=1), 1)
    np.testing.assert_array_equal(coded.test.x[:, -2:], 0)


def test_an_all_empty_column_is_named(table, tmp_path):
    _, frame = table
    path = write(tmp_path, frame.assign(blank=np.nan))
    with pytest.raises(AdxUserError, match=r"^column\(s\) blank of .* hold no value at all"):
        load_table(path)


def test_missing_values_are_an_error_or_imputed_with_the_train_median(table, tmp_path):
    path, frame = table
    train_ids = load_table(path).train.ids
    holes = frame.copy()
    holes.loc[[3, 5, 9, 11], "f02"] = np.nan
    holed = write(tmp_path, holes)
    with pytest.raises(AdxUserError) as error:
        load_table(holed)
    assert str(error.value) == (
        f"{holed} has missing values in f02 (4 rows); set dataset.missing=impute "
        "to fill them with the train median, or fill them in the file"
    )
    splits = load_table(holed, "missing=impute", "scaler=none")
    median = rows_by_id(holes, train_ids)["f02"].median()
    assert splits.transform["medians"][2] == pytest.approx(median)
    filled = dict(zip(splits.test.ids, splits.test.x[:, 2], strict=True))
    filled.update(zip(splits.val.ids, splits.val.x[:, 2], strict=True))
    filled.update(zip(splits.train.ids, splits.train.x[:, 2], strict=True))
    assert [filled[f"row-{i:06d}"] for i in (3, 5, 9, 11)] == pytest.approx([median] * 4)
    assert splits.info["imputed_values"] == {"f02": 4}


def test_an_unknown_normal_class_lists_the_classes_present(table):
    path, _ = table
    with pytest.raises(AdxUserError) as error:
        load_table(path, "normal_class=ok")
    assert str(error.value) == (
        "dataset.normal_class=ok is not a class of this dataset; classes present: anomaly, normal"
    )


def test_numeric_labels_with_gaps_and_an_id_column(tmp_path):
    frame = make_rows(60, 12, seed=2)
    frame["label"] = np.where(frame["label"] == "normal", 0, 1).astype(float)
    frame.loc[[0, 1], "label"] = np.nan  # pandas now reads the column as floats
    frame.insert(0, "key", [f"k{i}" for i in range(len(frame))])
    path = write(tmp_path, frame)
    splits = load_table(path, "normal_class=0", "id_column=key")
    assert splits.info["rows"] == 72 and splits.info["rows_dropped"] == 2
    assert splits.info["classes"] == ["0", "1"] and "key" not in splits.info["features"]
    assert sum(len(s) for s in (splits.train, splits.val, splits.test)) == 70
    assert splits.test.ids[0].startswith("k")
    dup = write(tmp_path, frame.assign(key="same"), "dup.csv")
    with pytest.raises(AdxUserError, match=r"^dataset.id_column=key repeats ids in .*'same'"):
        load_table(dup, "normal_class=0", "id_column=key")


def test_parquet_reads_like_csv(table, tmp_path):
    pytest.importorskip("pyarrow")
    path, frame = table
    parquet = tmp_path / "rows.parquet"
    frame.to_parquet(parquet)
    from_csv, from_parquet = load_table(path), load_table(parquet)
    np.testing.assert_array_equal(from_parquet.test.x, from_csv.test.x)
    assert from_parquet.info["path"] == str(parquet)


def test_cli_rejects_a_table_without_the_class_column(tmp_path):
    pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]}).to_csv(tmp_path / "rows.csv", index=False)
    result = run_adx(
        "train", "dataset=tabular", "dataset.path=rows.csv", "dataset.normal_class=normal",
        "model=dense_ae", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "adx: error: dataset.class_column=label is not a column of rows.csv; columns: x, y"
    )
    assert run_dirs(tmp_path) == set()


def test_train_then_evaluate_a_new_table_with_the_saved_transform(tmp_path):
    make_tabular_fixture(tmp_path)
    dataset = ("dataset=tabular", "dataset.class_column=label", "dataset.normal_class=normal")
    result = run_adx_in_process(
        "train", *dataset, "dataset.path=rows.csv", "model=dense_ae", "trainer.epochs=15",
        "trainer.batch_size=16", "trainer.verbose=0", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run = latest(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["auroc"] >= 0.85, metrics
    data = json.loads((run / "data.json").read_text())
    assert data["source"] == "tabular" and data["input_shape"] == [17]
    assert data["counts"]["train"] == {"normal": 300, "anomaly": 0}
    assert data["features"] == FEATURES and data["transform"] == FITTED
    transform = json.loads((run / "data_transform.json").read_text())
    assert transform["kind"] == "tabular" and len(transform["scaler"]["mean"]) == 17
    scored = pd.read_csv(run / "scores.csv")["id"]
    assert len(scored) == 150 and scored.str.fullmatch(r"row-\d{6}").all()

    # evaluate composes with the run's own dataset group, so the new path is all it needs.
    new_table = "dataset.path=rows_new.csv"
    result = run_adx_in_process("evaluate", f"run={run}", new_table, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = latest(tmp_path)
    assert evaluated != run
    assert (evaluated / "data_transform.json").read_text() == (
        run / "data_transform.json"
    ).read_text()
    new_data = json.loads((evaluated / "data.json").read_text())
    assert new_data["transform"] == REUSED and new_data["path"] == "rows_new.csv"
    assert new_data["counts"]["test"] == {"normal": 60, "anomaly": 30}
    assert json.loads((evaluated / "metrics.json").read_text())["auroc"] >= 0.85
