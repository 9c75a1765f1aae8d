"""The benchmark's tables: seed 001's layout, its mean ± std, the reported column."""

from __future__ import annotations

import pandas as pd
import pytest

from anomaly_cli.benchmarking.grid import Cell
from anomaly_cli.benchmarking.tables import Grid, long_table, render

AUROC = {  # (model, class, repeat) -> AUROC
    ("iaead", "0", 0): 0.90, ("iaead", "1", 0): 0.80,
    ("iaead", "0", 1): 0.94, ("iaead", "1", 1): 0.86,
    ("conv_ae", "0", 0): 0.60, ("conv_ae", "1", 0): 0.50,
    ("conv_ae", "0", 1): 0.62,  # ("conv_ae", "1", 1) never finished
}  # fmt: skip
REPORTED = {"source": "seed 001, Table 2", "values": {"auroc": {"0.1": {"iaead": 0.9205}}}}


def _grid() -> Grid:
    return Grid.of(
        [
            Cell(m, k, 0.1, r, 555 + r, 555 + r)
            for r in (0, 1)
            for k in ("0", "1")
            for m in ("iaead", "conv_ae")
        ]
    )


def _finished() -> pd.DataFrame:
    rows = [
        {"model": m, "normal_class": k, "contamination": "0.1", "repeat": str(r), "auroc": v}
        for (m, k, r), v in AUROC.items()
    ]
    return pd.DataFrame(rows)


def test_a_value_is_the_mean_over_classes_then_mean_and_std_over_repeats():
    long = long_table(_finished(), _grid(), ["auroc"], REPORTED).set_index("model")
    # iaead: repeat means 0.85 and 0.90 -> mean 0.875, sample std 0.035355
    assert long.loc["iaead", "mean"] == pytest.approx(0.875)
    assert long.loc["iaead", "std"] == pytest.approx(0.0353553, abs=1e-6)
    assert long.loc["iaead", "cells_finished"] == long.loc["iaead", "cells_in_grid"] == 4
    assert long.loc["iaead", "reported"] == pytest.approx(0.9205)
    # conv_ae: repeat means 0.55 and 0.62 (one class only) from 3 of 4 cells
    assert long.loc["conv_ae", "mean"] == pytest.approx(0.585)
    assert long.loc["conv_ae", "cells_finished"] == 3
    assert pd.isna(long.loc["conv_ae", "reported"])


def test_the_text_table_has_a_column_per_model_the_reported_column_and_marks_gaps():
    text = render(_finished(), _grid(), ["auroc"], REPORTED, "grid")
    header = next(line for line in text.splitlines() if line.startswith("| contamination"))
    assert [h.strip() for h in header.strip("|").split("|")] == [
        "contamination",
        "iaead",
        "iaead (reported)",
        "conv_ae",
    ]
    row = next(line for line in text.splitlines() if line.startswith("| 0.1"))
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "0.1",
        "87.50 ± 3.54",
        "92.05",
        "58.50 ± 4.95*",
    ]
    assert "AUROC (%) per normal class, contamination 0.1" in text
    assert "reported: seed 001, Table 2" in text and "* from fewer cells" in text
    markdown = render(_finished(), _grid(), ["auroc"], REPORTED, "github")
    assert "## AUROC (%)" in markdown and "| iaead (reported)" in markdown
