"""Sweep grids in exact decimals, printed as typed."""

from __future__ import annotations

import pytest

from anomaly_cli.errors import AdxUserError
from anomaly_cli.evaluation.grid import format_threshold, parse_grid


def texts(grid: str, steps: int = 11) -> list[str]:
    return [format_threshold(v) for v in parse_grid(grid, steps)]


def test_range_has_eleven_points_including_both_ends():
    assert texts("0.0005:0.003") == [
        "0.0005", "0.00075", "0.001", "0.00125", "0.0015", "0.00175",
        "0.002", "0.00225", "0.0025", "0.00275", "0.003",
    ]  # fmt: skip


def test_steps_changes_the_number_of_points():
    assert texts("0.1:0.3", steps=3) == ["0.1", "0.2", "0.3"]
    assert texts("0:1", steps=4) == ["0", "0.333333", "0.666667", "1"]


def test_stepped_range_includes_the_stop_only_on_the_grid():
    assert texts("0:1:0.25") == ["0", "0.25", "0.5", "0.75", "1"]
    assert texts("0.0001:0.0004:0.0001") == ["0.0001", "0.0002", "0.0003", "0.0004"]
    assert texts("0:1:0.3") == ["0", "0.3", "0.6", "0.9"]


def test_explicit_lists_keep_their_text():
    assert texts("[0.01,0.02,0.05]") == ["0.01", "0.02", "0.05"]
    assert texts("[0.03, 0.0009]") == ["0.03", "0.0009"]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("0.003:0.0005", "start must be below"),
        ("a:b", "'a' is not a number"),
        ("", "sweep needs thresholds"),
        (None, "sweep needs thresholds"),
        ("0.1", "is not a grid"),
        ("0.1:0.2:0.3:0.4", "is not a grid"),
        ("0:1:0", "step must be positive"),
        ("0:1:-0.1", "step must be positive"),
        ("0:1:0.00001", "at most 1000"),
        ("[]", "lists no thresholds"),
        ("[0.1,0.1]", "twice"),
        ("[0.1,0.2", "unbalanced"),
        ("0:inf", "not a number"),
    ],
)
def test_malformed_grids_are_user_errors(grid: str | None, message: str):
    with pytest.raises(AdxUserError, match=message):
        parse_grid(grid)
