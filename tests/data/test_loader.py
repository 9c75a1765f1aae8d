"""What every source's samples must be before training: finite numbers, never unpickled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anomaly_cli.data.base import ArraySplit, Splits
from anomaly_cli.data.loader import check_finite, load_splits
from anomaly_cli.errors import AdxUserError
from tests.conftest import compose_config
from tests.data.fixtures_tabular import make_rows


def _split(x: np.ndarray) -> ArraySplit:
    n = len(x)
    return ArraySplit(ids=np.array([f"s{i}" for i in range(n)]), labels=np.zeros(n), x=x)


def test_samples_with_nan_or_infinity_are_refused_naming_the_first():
    good = _split(np.ones((3, 2), np.float32))
    bad = _split(np.array([[1, 2], [np.inf, 0], [np.nan, 1]], np.float32))
    check_finite(Splits(good, good, good, (2,)), "npz")
    with pytest.raises(AdxUserError, match=r"dataset=npz: 2 val sample\(s\) .* \(first: s1\)"):
        check_finite(Splits(good, bad, good, (2,)), "npz")


def test_a_table_with_infinite_values_is_refused_before_training(tmp_path: Path):
    frame = make_rows(60, 20, seed=0)
    frame.loc[frame.index[:3], "f04"] = np.inf
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    cfg = compose_config(
        "train", "dataset=tabular", f"dataset.path={path}", "dataset.normal_class=normal"
    )
    with pytest.raises(AdxUserError, match=r"column\(s\) f04 of .*rows.csv hold infinite values"):
        load_splits(cfg.dataset, cfg.protocol)


def test_npz_arrays_that_would_need_pickle_are_refused(tmp_path: Path):
    path = tmp_path / "objects.npz"
    arrays = {f"{split}_{kind}": np.zeros(4) for split in ("train", "val", "test")
              for kind in ("images", "labels")}  # fmt: skip
    arrays["train_images"] = np.empty(4, dtype=object)  # object arrays are stored pickled
    np.savez(path, **arrays)
    cfg = compose_config("train", "dataset=npz", f"dataset.path={path}")
    with pytest.raises(
        AdxUserError, match=r"objects.npz cannot be read as an .npz of arrays \(Val"
    ):
        load_splits(cfg.dataset, cfg.protocol)


def _test_ids(*overrides: str) -> list[str]:
    cfg = compose_config("train", "dataset=synthetic", *overrides)
    return list(load_splits(cfg.dataset, cfg.protocol).test.ids)


def test_the_data_seed_alone_decides_the_split():
    default = _test_ids()
    assert _test_ids("trainer.seed=1") == default  # training's seed leaves the data alone
    assert _test_ids("dataset.seed=1") != default


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ("null", "dataset.seed is not set; add seed: 555 to the dataset config"),
        ("-1", r"dataset.seed=-1 must be a whole number from 0 to 2\*\*32 - 1"),
        ("1.5", r"dataset.seed=1.5 must be a whole number"),
    ],
)
def test_a_bad_data_seed_is_refused_before_any_data_is_read(seed: str, message: str):
    from anomaly_cli.data.splits import check_sampling

    cfg = compose_config("train", "dataset=synthetic", f"dataset.seed={seed}")
    with pytest.raises(AdxUserError, match=message):
        check_sampling(cfg.dataset, cfg.protocol)
