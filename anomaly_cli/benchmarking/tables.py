"""A benchmark's tables, laid out like seed 001's: one per metric, contamination as rows,
a column per model, "mean ± std" in percent.

As in the paper, a benchmark's number is the mean over its one-vs-all tasks
(the normal classes); the ± is the standard deviation of that mean over the
repeats (sample std, ddof=1; 0 with one repeat). A value from fewer cells
than the grid holds is marked `*` and the note under the table says how many
finished. Where the experiment gives the source's numbers
(`benchmark.reported`), a "<model> (reported)" column stands beside the model.
The per-class AUROC (the paper's Tables 3-4) follows, one table per
contamination rate. table.csv holds the same in long form, as fractions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

from anomaly_cli.benchmarking.grid import Cell, contamination_text
from anomaly_cli.evaluation.metrics import display_name

if TYPE_CHECKING:
    import pandas as pd

PER_CLASS_METRIC = "auroc"


@dataclass(frozen=True)
class Aggregate:
    mean: float
    std: float
    repeats: int  # repeats with at least one finished cell
    cells: int  # finished cells behind the number
    expected: int  # cells the grid holds for it


def aggregate(values: pd.DataFrame, metric: str, expected: int) -> Aggregate:
    """Mean over classes per repeat, then mean ± std over repeats."""
    import numpy as np

    if values.empty or metric not in values.columns:
        return Aggregate(math.nan, math.nan, 0, 0, expected)
    numbers = values.assign(
        _v=values[metric].astype(float), _r=values["repeat"].astype(int)
    ).dropna(subset=["_v"])
    per_repeat = numbers.groupby("_r")["_v"].mean().to_numpy(dtype=float)
    if len(per_repeat) == 0:
        return Aggregate(math.nan, math.nan, 0, 0, expected)
    std = float(np.std(per_repeat, ddof=1)) if len(per_repeat) > 1 else 0.0
    return Aggregate(float(np.mean(per_repeat)), std, len(per_repeat), len(numbers), expected)


def reported_value(reported: Any, metric: str, contamination: str, model: str) -> float | None:
    """benchmark.reported.values[metric][contamination][model], or None."""
    values = (reported or {}).get("values") or {}
    by_rate = values.get(metric) or {}
    for rate, models in by_rate.items():
        if _same_rate(rate, contamination) and models is not None and model in models:
            try:
                return float(models[model])
            except (TypeError, ValueError):
                return None
    return None


def _same_rate(a: Any, b: str) -> bool:
    try:
        return math.isclose(float(a), float(b))
    except (TypeError, ValueError):
        return str(a) == b


@dataclass(frozen=True)
class Grid:
    """What the tables are laid out by: the grid's axes, in the order the command gave."""

    models: list[str]
    classes: list[str]
    rates: list[str]
    repeats: int

    @classmethod
    def of(cls, cells: Sequence[Cell]) -> Grid:
        unique = lambda items: list(dict.fromkeys(items))  # noqa: E731
        return cls(
            models=unique(c.model for c in cells),
            classes=unique(c.normal_class for c in cells),
            rates=unique(contamination_text(c.contamination) for c in cells),
            repeats=max((c.repeat for c in cells), default=-1) + 1,
        )


def long_table(
    finished: pd.DataFrame, grid: Grid, metrics: Sequence[str], reported: Any
) -> pd.DataFrame:
    """table.csv: one row per metric, contamination and model (fractions)."""
    import pandas as pd

    rows = []
    for metric in metrics:
        for rate in grid.rates:
            for model in grid.models:
                part = _part(finished, model=model, contamination=rate)
                agg = aggregate(part, metric, len(grid.classes) * grid.repeats)
                rows.append(
                    {
                        "metric": metric,
                        "contamination": rate,
                        "model": model,
                        "mean": agg.mean,
                        "std": agg.std,
                        "repeats": agg.repeats,
                        "cells_finished": agg.cells,
                        "cells_in_grid": agg.expected,
                        "reported": reported_value(reported, metric, rate, model),
                    }
                )
    return pd.DataFrame(rows)


def _part(frame: pd.DataFrame, **equal: str) -> pd.DataFrame:
    mask = None
    for column, value in equal.items():
        hit = frame[column].astype(str) == str(value)
        mask = hit if mask is None else mask & hit
    return frame[mask] if mask is not None else frame


def render(
    finished: pd.DataFrame,
    grid: Grid,
    metrics: Sequence[str],
    reported: Any,
    tablefmt: str,
) -> str:
    """The text of table.txt (tablefmt 'grid') or table.md ('github')."""
    long = long_table(finished, grid, metrics, reported)
    sections = []
    incomplete = False
    source = (reported or {}).get("source")
    for metric in metrics:
        headers, rows = _metric_rows(long[long["metric"] == metric], grid)
        incomplete |= any("*" in cell for row in rows for cell in row)
        sections.append(_section(f"{display_name(metric)} (%)", rows, headers, tablefmt))
    if PER_CLASS_METRIC in metrics and len(grid.classes) > 1:
        for rate in grid.rates:
            headers, rows = _class_rows(finished, grid, rate)
            title = f"{display_name(PER_CLASS_METRIC)} (%) per normal class"
            title += f", contamination {rate}" if rate != "-" else ""
            sections.append(_section(title, rows, headers, tablefmt))
    notes = [
        f"mean ± std over {grid.repeats} repeat(s) of the mean over "
        f"{len(grid.classes)} normal class(es)"
    ]
    if incomplete:
        notes.append("* from fewer cells than the grid holds (see table.csv: cells_finished)")
    if source:
        notes.append(f"reported: {source}")
    bullet = "- " if tablefmt == "github" else ""
    return "\n\n".join(sections) + "\n\n" + "\n".join(f"{bullet}{n}" for n in notes) + "\n"


def _section(title: str, rows: list[list[str]], headers: list[str], tablefmt: str) -> str:
    table = tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)
    heading = f"## {title}" if tablefmt == "github" else title
    return f"{heading}\n\n{table}" if tablefmt == "github" else f"{heading}\n{table}"


def _metric_rows(long: pd.DataFrame, grid: Grid) -> tuple[list[str], list[list[str]]]:
    has_reported = {m: long[long["model"] == m]["reported"].notna().any() for m in grid.models}
    headers = ["contamination"]
    for model in grid.models:
        headers.append(model)
        if has_reported[model]:
            headers.append(f"{model} (reported)")
    rows = []
    for rate in grid.rates:
        row = [rate if rate != "-" else "clean"]
        for model in grid.models:
            entry = long[(long["model"] == model) & (long["contamination"] == rate)].iloc[0]
            row.append(_mean_std(entry))
            if has_reported[model]:
                value = entry["reported"]
                row.append("" if value is None or _nan(value) else f"{100 * float(value):.2f}")
        rows.append(row)
    return headers, rows


def _class_rows(finished: pd.DataFrame, grid: Grid, rate: str) -> tuple[list[str], list[list[str]]]:
    rows = []
    for normal_class in grid.classes:
        row = [normal_class]
        for model in grid.models:
            part = _part(finished, model=model, contamination=rate, normal_class=normal_class)
            agg = aggregate(part, PER_CLASS_METRIC, grid.repeats)
            row.append(_mean_std(_as_mapping(agg)))
        rows.append(row)
    return ["normal class", *grid.models], rows


def _as_mapping(agg: Aggregate) -> Mapping[str, Any]:
    return {
        "mean": agg.mean,
        "std": agg.std,
        "cells_finished": agg.cells,
        "cells_in_grid": agg.expected,
    }


def _mean_std(entry: Mapping[str, Any]) -> str:
    if entry["cells_finished"] == 0 or _nan(entry["mean"]):
        return "-"
    star = "*" if entry["cells_finished"] < entry["cells_in_grid"] else ""
    return f"{100 * entry['mean']:.2f} ± {100 * entry['std']:.2f}{star}"


def _nan(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False
