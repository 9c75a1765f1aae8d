"""`search=batch_size`: seed 002's Algorithm 1, the batch size with the best validation AUROC.

B1 = N/2 (N: training samples), halved without training while above
`tune.largest_batch` (2000); then each halving is trained until the AUROC
stops rising, and the best size is bisected with its better neighbour until
two sizes lie less than `tune.batch_gap` (the paper's epsilon, 10) apart or
their AUROCs less than `tune.min_delta` (one point) apart. The neighbours are
the sizes tried just above and below the best, as the paper's Tables 4 and 5
bisect (its pseudo-code names the smaller one twice). Halves and midpoints
are rounded down, as in the tables. At most `tune.max_trials` trainings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from omegaconf import DictConfig

from anomaly_cli import runs
from anomaly_cli.tuning.trials import TrialRunner, progress_line, read_records

BATCH_SIZES_CSV = "batch_sizes.csv"
KEY = "trainer.batch_size"


@dataclass
class Step:
    """One row of the table: a size, its AUROC (None: too large, not trained), what came next."""

    size: int
    auroc: float | None
    next: str = ""


@dataclass
class BatchSearch:
    steps: list[Step]
    best: int | None
    stopped: str  # why the search ended


class _Budget(Exception):
    """The cap on trainings is reached."""


def search_batch_size(
    n: int,
    auroc_of: Callable[[int], float],
    *,
    largest: int = 2000,
    gap: int = 10,
    min_delta: float = 0.01,
    max_trainings: int = 20,
) -> BatchSearch:
    """Algorithm 1 over `auroc_of(size)` (NaN for a failed training counts as worst)."""
    steps: list[Step] = []
    tried: dict[int, float] = {}

    def f(size: int) -> float:
        if size not in tried:
            if len(tried) >= max_trainings:
                raise _Budget
            tried[size] = auroc_of(size)
            steps.append(Step(size, tried[size]))
        return _rank(tried[size])

    def note(text: str) -> None:
        steps[-1].next = text

    size = max(1, n // 2)
    while size > largest:
        steps.append(Step(size, None, f"{size}/2 = {size // 2}"))
        size //= 2
    try:
        best, alt = _halve(size, f, note)
        if alt is None:
            return BatchSearch(steps, best, "batch size 1 reached while AUROC still rose")
        a_best, a_alt = f(best), f(alt)
        while abs(alt - best) >= gap:
            mid = (best + alt) // 2
            if mid in (best, alt):  # neighbours: nothing lies between them
                break
            note(f"({best} + {alt})/2 = {mid}")
            a_mid = f(mid)
            if a_mid > a_best:
                alt, a_alt, best, a_best = best, a_best, mid, a_mid
            else:
                alt, a_alt = mid, a_mid
            if abs(a_alt - a_best) < min_delta:
                note("end")
                return BatchSearch(steps, best, f"AUROC changed by less than {min_delta}")
        note("end")
        return BatchSearch(steps, best, f"sizes {best} and {alt} lie less than {gap} apart")
    except _Budget:
        steps[-1].next = "end"
        best = max(tried, key=lambda s: _rank(tried[s]), default=None)
        return BatchSearch(steps, best, f"tune.max_trials={max_trainings} trainings done")


def _halve(
    size: int, f: Callable[[int], float], note: Callable[[str], None]
) -> tuple[int, int | None]:
    """Halve while AUROC rises; the best size and its better neighbour (None at size 1)."""
    larger: int | None = None
    current, a_current = size, f(size)
    while current > 1:
        smaller = current // 2
        note(f"{current}/2 = {smaller}")
        a_smaller = f(smaller)
        if a_smaller <= a_current:
            neighbours = [s for s in (larger, smaller) if s is not None]
            return current, max(neighbours, key=f)
        larger, current, a_current = current, smaller, a_smaller
    return current, None


def _rank(auroc: float) -> float:
    return auroc if math.isfinite(auroc) else -math.inf


def table_rows(search: BatchSearch) -> list[dict[str, object]]:
    """The paper's Table 4: batch size, AUROC (%), how the next size was calculated."""
    return [
        {
            "batch_size": step.size,
            "auroc": None if step.auroc is None else step.auroc,
            "auroc_percent": None if step.auroc is None else round(100 * step.auroc, 2),
            "best": step.size == search.best,
            "next": step.next,
        }
        for step in search.steps
    ]


def run_batch_search(cfg: DictConfig, runner: TrialRunner, n: int) -> tuple[str | None, dict]:
    """Algorithm 1 with one trial per size (`trials/batch_<size>/`); resumed trials are reused.

    Returns the best size's trial id and what best_params.yaml adds: the search's end.
    """
    from tabulate import tabulate

    done = {r.trial: r for r in read_records(runner.run_dir)}

    def auroc_of(size: int) -> float:
        trial = f"batch_{size}"
        record = done.get(trial) or runner.run(trial, {KEY: size})
        print(progress_line(record, "val_auroc"), flush=True)
        return record.objective

    tune = cfg.tune
    search = search_batch_size(
        n,
        auroc_of,
        largest=int(tune.largest_batch),
        gap=int(tune.batch_gap),
        min_delta=float(tune.min_delta),
        max_trainings=int(tune.max_trials),
    )
    rows = table_rows(search)
    runs.write_csv(runner.run_dir / BATCH_SIZES_CSV, pd.DataFrame(rows))
    shown = [
        [r["batch_size"], "-" if r["auroc_percent"] is None else r["auroc_percent"], r["next"]]
        for r in rows
    ]
    print(f"Batch sizes tried (N = {n} training samples); {search.stopped}:")
    print(tabulate(shown, headers=["Batch size", "AUROC (%)", "Next batch size"]), flush=True)
    best = None if search.best is None else f"batch_{search.best}"
    return best, {"n": n, "stopped": search.stopped}
