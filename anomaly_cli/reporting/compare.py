"""`adx compare`'s content: one column per run, metrics as rows, and the two plots.

Seed 000 judged its models with one "AE vs VAE vs beta-VAE" table (metrics as
rows, a column per model), one ROC plot holding every model's curve and a
training-time bar chart; this module builds those from finished run folders.
Reading a run is best effort beyond `metrics.json`: a run without `run.json`
(older, or an evaluate run whose source is gone) shows a blank training time.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

from anomaly_cli import runs
from anomaly_cli.evaluation.metrics import LABELS, display_name
from anomaly_cli.reporting.plots.registry import pyplot
from anomaly_cli.reporting.summary import read_overrides
from anomaly_cli.reporting.tables import format_value

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# The row of compare.csv after the metrics (its display name: metrics.EXTRA_LABELS).
TRAIN_SECONDS = "train_seconds"
MISSING = "n/a"
# Overrides that say where a run went or how much it printed, never what it is.
_NOT_IDENTITY = ("run", "resume", "paths.", "hydra.", "trainer.verbose", "trainer.checkpoint_every")
_NEEDS_FINISHED_RUN = "pass finished train or evaluate run folders, or a multirun folder"


@dataclass(frozen=True)
class RunSummary:
    """What compare reads from one finished run folder."""

    path: Path
    model: str
    dataset: str
    verb: str
    overrides: tuple[str, ...]
    metrics: dict[str, float]
    train_seconds: float | None
    test_counts: dict[str, int] | None
    config: Any = None  # the run's config.yaml (OmegaConf), to name columns by its values
    name: str = ""  # the run's column, set by `with_column_names`


def read_run(path: Path) -> RunSummary:
    """A finished run's numbers, or DamagedFile naming the file that cannot be read."""
    from omegaconf import OmegaConf

    metrics = runs.read_json_object(path / runs.METRICS_JSON, _NEEDS_FINISHED_RUN)
    info = runs.optional_json_object(path / runs.RUN_INFO)
    config = None
    with contextlib.suppress(Exception):  # a damaged config only costs the column's name
        config = OmegaConf.load(path / runs.CONFIG)
    data = runs.optional_json_object(path / runs.DATA_INFO)
    counts = (data.get("counts") or info.get("counts") or {}).get("test")
    return RunSummary(
        path=path,
        model=str(info.get("model") or _select(config, "model.name") or "unknown"),
        dataset=str(info.get("dataset") or _select(config, "dataset.name") or "unknown"),
        verb=str(info.get("verb") or "train"),
        overrides=tuple(read_overrides(path)),  # none in a copied run: named by folder
        metrics={str(k): as_number(v) for k, v in metrics.items()},
        train_seconds=_train_seconds(info),
        test_counts=dict(counts) if isinstance(counts, dict) else None,
        config=config,
    )


def _select(config: Any, key: str) -> Any:
    if config is None:
        return None
    from omegaconf import OmegaConf

    with contextlib.suppress(Exception):
        return OmegaConf.select(config, key, default=None)
    return None


def as_number(value: Any) -> float:
    """A metric read from JSON or YAML as a float; NaN when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _train_seconds(info: dict[str, Any]) -> float | None:
    """A train run's own time; an evaluate run's comes from the run it re-scored."""
    seconds = info.get(TRAIN_SECONDS)
    if seconds is None and info.get("source_run"):
        seconds = runs.optional_json_object(Path(str(info["source_run"])) / runs.RUN_INFO).get(
            TRAIN_SECONDS
        )
    number = as_number(seconds)
    return None if math.isnan(number) else number


def with_column_names(summaries: Sequence[RunSummary]) -> list[RunSummary]:
    """Each run named by its model, or by the overrides that differ; names are unique."""
    models = [s.model for s in summaries]
    if len(set(models)) == len(models):
        names = models
    else:
        keys = differing_keys([s.overrides for s in summaries])
        names = [" ".join(f"{k}={_value_of(s, k)}" for k in keys) for s in summaries]
    named = [
        replace(s, name=name or s.path.name)
        for s, name in zip(summaries, _unique(names, summaries), strict=True)
    ]
    return named


def differing_keys(overrides: Sequence[Sequence[str]]) -> list[str]:
    """Override keys (in first-seen order) whose value is not the same in every run."""
    parsed = [_as_dict(o) for o in overrides]
    keys = list(dict.fromkeys(k for one in parsed for k in one))
    return [k for k in keys if len({one.get(k) for one in parsed}) > 1]


def _as_dict(overrides: Sequence[str]) -> dict[str, str]:
    pairs = (o.split("=", 1) for o in overrides if "=" in o)
    found = {key.lstrip("+~"): value for key, value in pairs}
    return {k: v for k, v in found.items() if not k.startswith(_NOT_IDENTITY)}


def _value_of(summary: RunSummary, key: str) -> str:
    """The run's override for `key`, else what its config says (a group by its name)."""
    given = _as_dict(summary.overrides).get(key)
    if given is not None:
        return given
    value = _select(summary.config, key)
    if hasattr(value, "keys"):
        value = value.get("name")
    return MISSING if value is None else str(value)


def _unique(names: list[str], summaries: Sequence[RunSummary]) -> list[str]:
    """Repeated names get their folder's name; anything still repeated, a number."""
    repeated = {n for n in names if names.count(n) > 1}
    names = [
        f"{n} ({s.path.name})" if n in repeated else n
        for n, s in zip(names, summaries, strict=True)
    ]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return unique


def compare_frame(summaries: Sequence[RunSummary]) -> pd.DataFrame:
    """compare.csv: a `metric` column, then one column per run; metrics in table order."""
    import pandas as pd

    found = list(dict.fromkeys(k for s in summaries for k in s.metrics))
    keys = [k for k in LABELS if k in found] + [k for k in found if k not in LABELS]
    data: dict[str, list[Any]] = {"metric": [*keys, TRAIN_SECONDS]}
    for s in summaries:
        data[s.name] = [s.metrics.get(k, math.nan) for k in keys] + [
            math.nan if s.train_seconds is None else s.train_seconds
        ]
    return pd.DataFrame(data)


def table_rows(frame: pd.DataFrame, summaries: Sequence[RunSummary]) -> list[list[str]]:
    """The people's table: what data each run was tested on, then every metric formatted."""
    rows = [
        ["Dataset", *(s.dataset for s in summaries)],
        ["Test normal / anomaly", *(_counts(s.test_counts) for s in summaries)],
    ]
    for _, row in frame.iterrows():
        key = row["metric"]
        rows.append([display_name(key), *(_cell(key, row[s.name]) for s in summaries)])
    return rows


def _counts(counts: dict[str, int] | None) -> str:
    if not counts:
        return MISSING
    return f"{counts.get('normal', 0)} / {counts.get('anomaly', 0)}"


def _cell(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{float(value):.1f}" if key == TRAIN_SECONDS else format_value(key, value)


def render_table(rows: list[list[str]], names: Sequence[str], tablefmt: str) -> str:
    """compare.txt uses "grid" (seed 000's print), compare.md "pipe" (GitHub markdown)."""
    return tabulate(rows, headers=["Metric", *names], tablefmt=tablefmt, disable_numparse=True)


def data_difference(summaries: Sequence[RunSummary]) -> str | None:
    """A warning when the runs were tested on different data (dataset, or test counts)."""
    described = [f"{s.dataset}, test {_counts(s.test_counts)} normal / anomaly" for s in summaries]
    if len(set(described)) == 1:
        return None
    where = "; ".join(f"{s.name}: {d}" for s, d in zip(summaries, described, strict=True))
    return (
        f"DIFFERENT DATA: these runs were tested on different data ({where}); "
        "their metrics are not directly comparable"
    )


@dataclass(frozen=True)
class Curve:
    name: str
    fpr: Any
    tpr: Any
    auroc: float


def roc_curves(summaries: Sequence[RunSummary]) -> list[Curve]:
    """Every run's ROC points from its roc.csv (a run without one is left out)."""
    import pandas as pd

    curves = []
    for s in summaries:
        try:
            points = pd.read_csv(s.path / runs.ROC)
            curves.append(
                Curve(
                    s.name,
                    points["fpr"].to_numpy(),
                    points["tpr"].to_numpy(),
                    s.metrics.get("auroc", math.nan),
                )
            )
        except (OSError, KeyError, ValueError, pd.errors.ParserError):
            continue
    return curves


def roc_figure(curves: Sequence[Curve]) -> Figure:
    from anomaly_cli.reporting.plots.curves import draw_roc

    fig, ax = pyplot().subplots(figsize=(6, 6))
    labelled = [(c.fpr, c.tpr, f"{c.name} (AUROC = {c.auroc:.3f})") for c in curves]
    draw_roc(ax, labelled, "ROC of every run")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def train_time_figure(summaries: Sequence[RunSummary]) -> Figure | None:
    """Seed 000's training-time bars; a run without a known time gets an empty slot."""
    if all(s.train_seconds is None for s in summaries):
        return None
    fig, ax = pyplot().subplots(figsize=(max(5.0, 1.2 * len(summaries)), 4))
    heights = [s.train_seconds or 0.0 for s in summaries]
    bars = ax.bar(range(len(summaries)), heights, color="tab:blue")
    for bar, s in zip(bars, summaries, strict=True):
        text = MISSING if s.train_seconds is None else f"{s.train_seconds:.1f} s"
        ax.annotate(
            text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom"
        )
    ax.set_xticks(range(len(summaries)), [s.name for s in summaries], rotation=20, ha="right")
    ax.set(ylabel="training time (s)", title="Training time per run")
    return fig
