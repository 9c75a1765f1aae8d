"""Property-based checks of the promise that bad input is one line, never a traceback.

Hypothesis generates sweep grids, threshold settings and CSV contents; for each,
the stages `adx` runs before any training (override check, pre-flight, the
data source, the sweep itself) must either succeed with a sane result or raise
AdxUserError with a one-line message. Anything else (a KeyError, a pandas
error, a message over several lines) is a traceback a user would have seen.
The stages run in-process, as `adx` calls them, without Hydra's decorated main.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from anomaly_cli.errors import AdxUserError
from tests.conftest import assert_one_line_error, compose_config, run_adx

# Examples that go through the CLI's front compose configs (about half a second each);
# the pure functions behind it take many more.
SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
MANY = settings(max_examples=400, deadline=None)


def _one_line(error: AdxUserError) -> None:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text, text


def _front(verb: str, args: list[str]) -> None:
    """What `adx VERB ARGS` runs before Hydra: rewrite, override check, pre-flight."""
    import importlib

    from anomaly_cli.overrides import check_overrides
    from anomaly_cli.preflight import preflight

    rewrite = importlib.import_module(f"anomaly_cli.tasks.{verb}").rewrite_overrides
    args = rewrite(args)
    check_overrides(verb, args)
    preflight(verb, args)


# Sweep grids: the three written forms, built from numbers, plus free text.
_number = st.one_of(
    st.integers(-5, 5).map(str),
    st.decimals(-2, 2, places=4, allow_nan=False).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "a", "1e400", "-0", "0x10", "1_000", "${oc.env:HOME}", "nan"]),
)
_grid = st.one_of(
    st.builds(lambda a, b: f"{a}:{b}", _number, _number),
    st.builds(lambda a, b, c: f"{a}:{b}:{c}", _number, _number, _number),
    st.lists(_number, max_size=5).map(lambda xs: "[" + ",".join(xs) + "]"),
    st.text(alphabet=string.printable, max_size=16),
)


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("scored") / "run"
    run.mkdir()
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(40, int), np.ones(10, int)]
    scores = rng.random(50) + labels * 0.5
    frame = pd.DataFrame({"id": range(50), "label": labels, "score": scores, "prediction": 0})
    frame.to_csv(run / "scores.csv", index=False)
    return run


@SETTINGS
@given(grid=_grid)
def test_any_sweep_grid_is_swept_or_refused_in_one_line(grid: str, scored_run: Path, tmp_path):
    from anomaly_cli.tasks.sweep import sweep

    args = [f"threshold={grid}", f"run={scored_run}"]
    try:
        _front("sweep", args)
        frame = sweep(compose_config("sweep", *args[1:], *_quoted_grid(grid)), tmp_path)
    except AdxUserError as error:
        _one_line(error)
        return
    values = frame.drop(columns=frame.columns[0]).to_numpy(dtype=float)  # column 0: names
    assert values.size and np.isfinite(values).all()


@MANY
@given(grid=_grid, steps=st.integers(-3, 2000))
def test_any_grid_text_parses_to_finite_thresholds_or_one_line(grid: str, steps: int):
    from anomaly_cli.evaluation.grid import format_threshold, parse_grid

    try:
        thresholds = parse_grid(grid, steps)
    except AdxUserError as error:
        _one_line(error)
        return
    assert 1 <= len(thresholds) <= 1000
    assert all(np.isfinite(float(t)) for t in thresholds)
    assert thresholds == sorted(thresholds) or grid.strip().startswith("[")
    assert all("E" not in format_threshold(t) for t in thresholds)


def _quoted_grid(grid: str) -> list[str]:
    from anomaly_cli.tasks.sweep import rewrite_overrides

    return [a for a in rewrite_overrides([f"threshold={grid}"]) if a.startswith("threshold.")]


_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-1000, 1000).map(str),
    st.sampled_from(["null", "true", "abc", "[1,2]", "{a: 1}", "''", "1e309", "-inf"]),
)


@MANY
@given(
    strategy=st.sampled_from(["fixed", "percentile", "youden", "best_f1", "roc_optimal"]),
    value=st.one_of(st.floats(), st.integers(), st.booleans(), st.none(), st.text(max_size=4)),
    scores=st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=20),
)
# Integers NumPy cannot hold (found by Hypothesis), and one no float can.
@example(strategy="fixed", value=-(2**63) - 1, scores=[0.0, 0.0])
@example(strategy="fixed", value=10**400, scores=[0.0, 0.0])
@example(strategy="percentile", value=10**400, scores=[0.0, 0.0])
@example(strategy="youden", value=-(2**63) - 1, scores=[0.0, 0.0])
def test_any_threshold_config_fits_or_is_one_line(
    strategy: str, value: object, scores: list[float]
):
    from omegaconf import OmegaConf

    from anomaly_cli.evaluation.thresholds import check_threshold, fit_threshold

    key = {"fixed": "value", "percentile": "q"}.get(strategy, "fallback_q")
    cfg = OmegaConf.create({"strategy": strategy, key: value})
    labels = np.arange(len(scores)) % 2
    try:
        check_threshold(cfg)
    except AdxUserError as error:
        _one_line(error)
        return
    assert np.isfinite(fit_threshold(cfg, np.array(scores), labels).value)


@SETTINGS
@given(
    strategy=st.sampled_from(["fixed", "percentile", "youden", "best_f1", "roc_optimal"]),
    value=_value,
)
def test_any_threshold_setting_is_accepted_whole_or_refused_in_one_line(strategy: str, value: str):
    from anomaly_cli.evaluation.thresholds import fit_threshold

    key = {"fixed": "value", "percentile": "q"}.get(strategy, "fallback_q")
    args = [f"threshold={strategy}", f"threshold.{key}={value}"]
    try:
        _front("train", args)
    except AdxUserError as error:
        _one_line(error)
        return
    # Accepted: fitting it on real scores must work and give a usable number.
    cfg = compose_config("train", *args)
    rng = np.random.default_rng(1)
    threshold = fit_threshold(cfg.threshold, rng.random(30), np.r_[np.zeros(20), np.ones(10)])
    assert np.isfinite(threshold.value)


_cell = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**6), 10**6),
    st.text(alphabet=string.ascii_letters + " ,;\"'\n", max_size=6),
    st.none(),
)


@st.composite
def _tables(draw: st.DrawFn, names: tuple[str, ...], labels: tuple[object, ...]) -> bytes:
    """CSV bytes: a table of columns drawn from `names` (the label column's values from
    `labels`, the rest random cells), or an empty file, or random bytes."""
    kind = draw(st.sampled_from(["table", "table", "table", "empty", "bytes"]))
    if kind == "empty":
        return b""
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    rows = draw(st.integers(0, 30))
    columns = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    cells = {"label": st.sampled_from(labels)}
    data = {c: draw(st.lists(cells.get(c, _cell), min_size=rows, max_size=rows)) for c in columns}
    return pd.DataFrame(data).to_csv(index=False).encode()


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


# A table that loads, so the success branch below always runs at least once.
_GOOD_TABLE = _csv(
    pd.DataFrame(
        {
            "label": ["n"] * 30 + ["x"] * 10,
            "a": np.linspace(0, 1, 40),
            "b": np.linspace(1, 2, 40) ** 2,
        }
    )
)


@SETTINGS
@example(content=_GOOD_TABLE, normal="n")
@given(
    content=_tables(("label", "a", "b", "c", "d"), ("n", "x", None, 1)),
    normal=st.sampled_from(["n", "x", "1"]),
)
def test_any_csv_table_loads_finite_samples_or_is_refused_in_one_line(
    content: bytes, normal: str, tmp_path_factory: pytest.TempPathFactory
):
    from anomaly_cli.data.loader import load_splits

    path = tmp_path_factory.mktemp("csv") / "rows.csv"
    path.write_bytes(content)
    cfg = compose_config("train", "dataset=tabular", f"dataset.path={path}",
                         f"dataset.normal_class={normal}")  # fmt: skip
    try:
        splits = load_splits(cfg.dataset, cfg.protocol)
    except AdxUserError as error:
        _one_line(error)
        return
    for split in (splits.train, splits.val, splits.test):
        assert len(split) and np.isfinite(split.x).all()
    assert splits.test.counts()["normal"] and splits.test.counts()["anomaly"]


@SETTINGS
@example(content=_csv(pd.DataFrame({"id": range(4), "label": [0, 1, 0, 1], "score": [0.1] * 4})))
@given(content=_tables(("id", "label", "score", "prediction"), (0, 1, 2, "x", None)))
def test_any_scores_file_is_swept_or_refused_in_one_line(
    content: bytes, tmp_path_factory: pytest.TempPathFactory
):
    from anomaly_cli.tasks.sweep import read_scores

    path = tmp_path_factory.mktemp("scores") / "scores.csv"
    path.write_bytes(content)
    try:
        labels, values = read_scores(path)
    except AdxUserError as error:
        _one_line(error)
        return
    assert len(values) == len(labels) > 0
    assert set(np.unique(labels)) == {0, 1} and np.isfinite(values).all()


@settings(max_examples=8, deadline=None)
@given(grid=_grid)
def test_any_sweep_grid_through_the_real_cli_exits_0_or_2_in_one_line(
    grid: str, scored_run: Path, tmp_path_factory: pytest.TempPathFactory
):
    """A few examples through a real `adx` process, where a traceback would show."""
    assume("\x00" not in grid)  # a process argument cannot hold a NUL byte
    cwd = tmp_path_factory.mktemp("cli")
    result = run_adx("sweep", f"threshold={grid}", f"run={scored_run}", cwd=cwd)
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode == 0:
        assert "| Metric" in result.stdout
    else:
        assert_one_line_error(result)
