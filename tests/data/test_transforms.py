"""Fitted transforms: fit on train, apply to new data, save and load as a run's JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anomaly_cli.data.tabular_transform import TabularTransform
from anomaly_cli.data.transforms import (
    MedianImputer,
    Pca,
    SavedTransformError,
    Scaler,
    ZScore,
)

# data_transform.json as a run trained before the transform classes wrote it.
SAVED_TABULAR = {
    "kind": "tabular",
    "settings": {
        "feature_columns": None,
        "categorical": "onehot",
        "scaler": "minmax",
        "pca_components": None,
    },
    "numeric_columns": ["a", "b"],
    "medians": [1.0, 10.0],
    "scaler": {"kind": "minmax", "min": [0.0, 10.0], "max": [2.0, 10.0]},
    "categories": {"site": ["x", "y"]},
    "features": ["a", "b", "site=x", "site=y"],
    "pca": None,
}
SAVED_ZSCORE = {"kind": "zscore", "columns": ["s"], "mean": [1.0], "std": [2.0]}


def test_zscore_is_fitted_on_the_values_given_and_survives_json():
    values = np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    fitted = ZScore.fit(values, ["a", "b"])
    assert fitted.mean == [2.0, 5.0]
    assert fitted.std[1] == 1.0  # a constant column is not divided by zero
    np.testing.assert_allclose(fitted.apply(values)[:, 0], [-1.2247449, 0.0, 1.2247449])
    assert fitted.apply(values).dtype == np.float32
    again = ZScore.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert again == fitted
    by_column = fitted.by_column()
    assert by_column["mean"] == {"a": 2.0, "b": 5.0}
    assert by_column["std"] == {"a": pytest.approx(np.sqrt(8 / 3)), "b": 1.0}


def test_a_saved_zscore_of_an_older_run_loads_and_applies():
    zscore = ZScore.from_dict(SAVED_ZSCORE)
    assert zscore.to_dict() == SAVED_ZSCORE
    np.testing.assert_allclose(zscore.apply(np.array([[3.0], [-1.0]])), [[1.0], [-1.0]])


@pytest.mark.parametrize(
    ("load", "state", "message"),
    [
        (ZScore.from_dict, SAVED_TABULAR, "expected a zscore transform, found tabular"),
        (TabularTransform.from_dict, SAVED_ZSCORE, "expected a tabular transform, found zscore"),
        (ZScore.from_dict, {"kind": "zscore", "columns": []}, "lacks mean, std"),
        (ZScore.from_dict, [1, 2], "expected a zscore transform, found list"),
        (Scaler.from_dict, {"kind": "robust"}, "unknown scaler robust"),
    ],
)
def test_a_saved_transform_of_another_kind_is_refused(load, state, message):
    with pytest.raises(SavedTransformError, match=message):
        load(state)


def test_a_saved_tabular_transform_of_an_older_run_loads_and_applies():
    fitted = TabularTransform.from_dict(json.loads(json.dumps(SAVED_TABULAR)))
    assert fitted.to_dict() == SAVED_TABULAR
    assert fitted.columns == ["a", "b", "site"] and fitted.width == 4
    rows = pd.DataFrame({"a": [np.nan, 2.0], "b": [10.0, 12.0], "site": ["y", "unseen"]})
    # a: gap -> median 1 -> 0.5; b: constant in train -> (b - 10) / 1; unseen site -> zeros.
    np.testing.assert_allclose(fitted.apply(rows), [[0.5, 0.0, 0.0, 1.0], [1.0, 2.0, 0.0, 0.0]])


def test_tabular_fit_matches_its_parts_and_pca_comes_last():
    train = pd.DataFrame(
        {"a": [1.0, 2.0, np.nan, 4.0, 6.0], "b": [0.0, 1.0, 0.0, 1.0, 3.0], "c": list("pqppq")}
    )
    settings = {"feature_columns": None, "categorical": "onehot", "scaler": "standard"}
    fitted = TabularTransform.fit(train, ["a", "b"], ["c"], {**settings, "pca_components": 2})
    values = train[["a", "b"]].to_numpy()
    imputer = MedianImputer.fit(values)
    assert imputer.medians == [3.0, 1.0] and fitted.imputer == imputer
    assert fitted.scaler == Scaler.fit(imputer.apply(values), "standard")
    assert fitted.features == ["a", "b", "c=p", "c=q"] and fitted.pca is None
    reduced = fitted.with_pca(train, 2, seed=0)
    assert reduced.width == 2 and reduced.apply(train).shape == (5, 2)
    assert reduced.pca == Pca.fit(fitted.encode(train), 2, seed=0)
    assert TabularTransform.from_dict(json.loads(json.dumps(reduced.to_dict()))) == reduced


def test_a_scaler_without_numeric_columns_passes_the_one_hot_columns_through():
    train = pd.DataFrame({"c": ["p", "q"]})
    settings = {"scaler": "standard"}
    fitted = TabularTransform.fit(train, [], ["c"], settings)
    assert fitted.to_dict()["scaler"] == {"kind": "standard"}
    np.testing.assert_array_equal(fitted.apply(train), [[1.0, 0.0], [0.0, 1.0]])
