"""How `adx benchmark` runs its grid: skip what is finished, launch the rest, write the tables.

Called by the benchmark sweeper (hydra_plugins/adx_benchmark_sweeper) in the
process that started the command. Cells go to Hydra's configured launcher
in batches (`benchmark.cells_per_launch`; by default as many as the launcher
runs at once), and after each batch their rows are added to results.csv and
a progress line is printed, so an interrupt loses at most the cells of the
batch that were still running.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from anomaly_cli import runs
from anomaly_cli.benchmarking import results as record
from anomaly_cli.benchmarking.grid import (
    Cell,
    build_cells,
    job_arguments,
    refuse_sweeps,
    settings_of,
    settings_text,
)

TABLE_TXT = "table.txt"
TABLE_MD = "table.md"
TABLE_CSV = "table.csv"


def run_benchmark(config: DictConfig, launcher: Any, arguments: Sequence[str]) -> list[Any]:
    """Launch the grid's unfinished cells, then write the tables; returns Hydra's job returns."""
    bench_dir = Path(str(config.hydra.sweep.dir))
    refuse_sweeps(arguments)
    cells = build_cells(config, str(config.hydra.runtime.choices.model))
    job_args = job_arguments(arguments)
    command_settings = settings_of(arguments)
    bench_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, bench_dir / "multirun.yaml")
    frame = record.read_results(bench_dir)
    frame = record.append_rows(bench_dir, frame, record.recover(bench_dir, frame))
    done = record.finished_keys(frame)
    pending = [cell for cell in cells if (cell.key, cell.settings(command_settings)) not in done]
    progress = Progress(bench_dir.name, total=len(cells), reused=len(cells) - len(pending))
    progress.start(bench_dir)
    returns = []
    cell_map = record.read_cell_map(bench_dir)
    size = cells_per_launch(config, len(pending))
    stopped: list[tuple[Path, str]] = []
    for start in range(0, len(pending), size):
        batch = pending[start : start + size]
        folders = [record.free_folder(bench_dir, cell) for cell in batch]
        for cell, folder in zip(batch, folders, strict=True):
            cell_map[str(folder.relative_to(bench_dir))] = record.cell_entry(
                cell, cell.settings(command_settings)
            )
        record.write_cell_map(bench_dir, cell_map)
        jobs = [
            [*cell.overrides(job_args), f"hydra.sweep.subdir='{folder.relative_to(bench_dir)}'"]
            for cell, folder in zip(batch, folders, strict=True)
        ]
        returns.append(launcher.launch(jobs, initial_job_idx=start))
        rows = [
            record.row_for(cell, cell.settings(command_settings), folder, bench_dir)
            for cell, folder in zip(batch, folders, strict=True)
        ]
        frame = record.append_rows(bench_dir, frame, rows)
        progress.advance(rows)
        stopped += [
            (bench_dir / r["folder"], r["status"])
            for r in rows
            if r["status"] not in record.WITH_RESULTS
        ]
    write_tables(bench_dir, config, cells, frame, command_settings)
    # Cells a launcher ran in other processes: their failures still set adx's exit code.
    from anomaly_cli.tasks.sweep_summary import record_stopped

    record_stopped(stopped)
    return returns


def cells_per_launch(config: DictConfig, pending: int) -> int:
    """How many cells go to the launcher at once."""
    chosen = config.benchmark.get("cells_per_launch")
    if chosen is not None:
        return max(1, int(chosen))
    launcher = config.hydra.launcher
    n_jobs = launcher.get("n_jobs")
    if n_jobs is not None:
        import os

        return max(1, int(n_jobs) if int(n_jobs) > 0 else os.cpu_count() or 1)
    if "submitit" in str(launcher.get("_target_", "")):
        return max(1, pending)  # one array job: the cluster's scheduler spreads it
    return 1


def write_tables(
    bench_dir: Path, config: DictConfig, cells: list[Cell], frame: Any, command: Sequence[str]
) -> str:
    """table.txt, table.md and table.csv from the finished rows of this command's settings."""
    from anomaly_cli.benchmarking.tables import Grid, long_table, render

    metrics = [str(m) for m in config.benchmark.metrics]
    reported = (
        OmegaConf.to_container(config.benchmark.reported, resolve=True)
        if config.benchmark.get("reported")
        else None
    )
    # Each model's cells share one settings text (the command's plus the model's own).
    wanted = {cell.model: cell.settings(command) for cell in cells}
    current = frame["model"].astype(str).map(wanted) == frame["settings"].astype(str)
    finished = frame[frame["status"].isin(record.WITH_RESULTS) & current]
    grid = Grid.of(cells)
    common = settings_text(command)
    lines = [
        f"Benchmark {bench_dir.name}: {config.dataset.name}, protocol {config.protocol.name}, "
        f"{len(grid.models)} model(s) x {len(grid.classes)} normal class(es) x "
        f"{len(grid.rates)} contamination rate(s) x {grid.repeats} repeat(s)"
        + (f"; settings: {common}" if common else "")
    ]
    lines += [
        f"{cell.model} also: {' '.join(cell.extra)}"
        for cell in {c.model: c for c in cells}.values()
        if cell.extra
    ]
    diverged = int((finished["status"] == record.DIVERGED).sum())
    if diverged:
        lines.append(
            f"{diverged} cell(s) diverged (a NaN loss) and count with their best epoch before "
            "it (results.csv: status, error)"
        )
    others = int((~current).sum())
    if others:
        lines.append(f"({others} row(s) of results.csv come from other settings: not shown)")
    heading = "\n".join(lines)
    text = render(finished, grid, metrics, reported, "grid")
    runs.write_text(bench_dir / TABLE_TXT, f"{heading}\n\n{text}")
    runs.write_text(
        bench_dir / TABLE_MD,
        f"# {lines[0]}\n\n"
        + "".join(f"- {line}\n" for line in lines[1:])
        + f"\n{render(finished, grid, metrics, reported, 'github')}",
    )
    runs.write_csv(bench_dir / TABLE_CSV, long_table(finished, grid, metrics, reported))
    print(f"{heading}\n\n{text}", flush=True)
    print(f"Benchmark folder: {bench_dir}", flush=True)
    return text


class Progress:
    """Cells done / total, elapsed, and an estimate of what is left, after every batch."""

    def __init__(self, name: str, total: int, reused: int) -> None:
        self.name, self.total, self.done, self.reused = name, total, reused, reused
        self.failed = self.diverged = 0
        self.ran = 0
        self.started = time.monotonic()

    def start(self, bench_dir: Path) -> None:
        pending = self.total - self.reused
        earlier = f", {self.reused} finished in earlier runs" if self.reused else ""
        print(
            f"benchmark {self.name}: {self.total} cells{earlier}, {pending} to run in {bench_dir}",
            flush=True,
        )

    def advance(self, rows: list[dict[str, Any]]) -> None:
        self.ran += len(rows)
        finished = sum(1 for row in rows if row["status"] in record.WITH_RESULTS)
        self.diverged += sum(1 for row in rows if row["status"] == record.DIVERGED)
        self.done += finished
        self.failed += len(rows) - finished
        elapsed = time.monotonic() - self.started
        left = self.total - self.done - self.failed
        estimate = f", about {_duration(elapsed / self.ran * left)} left" if left else ""
        failed = f", {self.failed} failed" if self.failed else ""
        failed += f", {self.diverged} diverged (best epoch kept)" if self.diverged else ""
        print(
            f"benchmark {self.name}: {self.done}/{self.total} cells done{failed}, "
            f"{_duration(elapsed)} elapsed{estimate}",
            flush=True,
        )


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
