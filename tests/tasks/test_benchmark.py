"""`adx benchmark`: a grid of train runs, results.csv, the tables, resuming, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from anomaly_cli.benchmarking import results as record
from anomaly_cli.benchmarking.grid import Cell
from tests.conftest import run_adx_in_process

GRID = (
    "dataset=digits",
    "dataset.preprocess.image_size=8",
    "protocol=unsupervised",
    "benchmark.contamination=[0.1]",
    "model=dense_ae",
    "trainer.epochs=1",
    "trainer.verbose=0",
    "report.plots=[]",
    "logger=none",
)


def _benchmark(tmp_path: Path, *extra: str) -> tuple[str, Path]:
    result = run_adx_in_process("benchmark", *GRID, *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, tmp_path / "outputs" / "benchmarks" / "digits_unsupervised"


def test_a_benchmark_runs_its_cells_tabulates_them_and_resumes_where_it_stopped(tmp_path: Path):
    stdout, folder = _benchmark(tmp_path, "benchmark.normal_classes=[0]")
    assert "benchmark digits_unsupervised: 1 cells, 1 to run" in stdout
    assert "1/1 cells done" in stdout
    (first,) = (folder / "cells").iterdir()
    assert first.name == "dense_ae_class-0_cont-0.1_rep-0"
    stamp = (first / "metrics.json").stat().st_mtime_ns

    # A second class: only its cell runs; the first is reused as it is.
    stdout, _ = _benchmark(tmp_path, "benchmark.normal_classes=[0,1]")
    assert "2 cells, 1 finished in earlier runs, 1 to run" in stdout
    assert "2/2 cells done" in stdout
    assert (first / "metrics.json").stat().st_mtime_ns == stamp
    results = pd.read_csv(folder / record.RESULTS_CSV)
    assert list(results["normal_class"]) == [0, 1] and set(results["status"]) == {"finished"}
    for row in results.to_dict("records"):
        metrics = json.loads((folder / row["folder"] / "metrics.json").read_text())
        assert row["auroc"] == metrics["auroc"] and row["aupr_out"] == metrics["aupr_out"]
    table = pd.read_csv(folder / "table.csv").set_index("metric")
    assert table.loc["auroc", "mean"] == pytest.approx(results["auroc"].mean())
    assert table.loc["auroc", "cells_finished"] == 2
    text = (folder / "table.txt").read_text()
    assert "AUROC (%)" in text and "AUROC (%) per normal class, contamination 0.1" in text

    # Killed after a cell finished but before its row was written: read back, not rerun.
    results.iloc[:-1].to_csv(folder / record.RESULTS_CSV, index=False)
    stdout, _ = _benchmark(tmp_path, "benchmark.normal_classes=[0,1]")
    assert "2 cells, 2 finished in earlier runs, 0 to run" in stdout
    assert len(pd.read_csv(folder / record.RESULTS_CSV)) == 2


def test_a_failed_cell_is_recorded_with_its_error_and_runs_again_next_time(tmp_path: Path):
    cell = Cell("conv_ae", "0", 0.1, 0, 555, 555)
    folder = tmp_path / "cells" / cell.name
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(
        json.dumps({"verb": "train", "status": "failed", "error": "out of memory"})
    )
    row = record.row_for(cell, "trainer.epochs=1", folder, tmp_path)
    assert (row["status"], row["error"]) == ("failed", "failed: out of memory")
    frame = record.append_rows(tmp_path, record.read_results(tmp_path), [row])
    assert record.finished_keys(frame) == set()
    assert record.free_folder(tmp_path, cell).name == f"{cell.name}_2"  # the old one is kept
    # Whichever process ran the cell, its failure reaches adx's exit code.
    from anomaly_cli.tasks.sweep_summary import record_stopped, take_failures

    record_stopped([(folder, "failed")])
    assert [(f.run_dir, f.exit_code) for f in take_failures()] == [(folder, 2)]


def test_a_diverged_cell_counts_as_a_result_and_is_not_run_again(tmp_path: Path):
    cell = Cell("conv_ae", "0", 0.1, 0, 555, 555)
    folder = tmp_path / "cells" / cell.name
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"auroc": 0.5}))
    error = "training diverged in epoch 1; assessed with the untrained model"
    status = {"verb": "train", "status": "diverged", "error": error}
    (folder / "status.json").write_text(json.dumps(status))
    row = record.row_for(cell, "trainer.epochs=1", folder, tmp_path)
    assert (row["status"], row["error"], row["auroc"]) == ("diverged", error, 0.5)
    frame = record.append_rows(tmp_path, record.read_results(tmp_path), [row])
    assert record.finished_keys(frame) == {(record.key_of_row(row), "trainer.epochs=1")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("model=vae,unet",), "adx benchmark takes no sweep like model=vae,unet", id="a sweep"
        ),
        pytest.param(
            ("benchmark.normal_classes=all", "dataset=synthetic"),
            "does not list its classes",
            id="all classes of a dataset without a list",
        ),
        pytest.param(
            ("benchmark.models=[conv_ae,nope]",), "'nope', which is not a model", id="no model"
        ),
        pytest.param(
            ("trainer=stable",), "trainer.seed=dynamic: a benchmark's repeat r", id="dynamic seed"
        ),
    ],
)
def test_a_benchmark_that_cannot_run_fails_in_one_line_before_any_folder(
    tmp_path: Path, args: tuple[str, ...], message: str
):
    result = run_adx_in_process("benchmark", *args, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("adx: ")]
    assert message in line
    assert not (tmp_path / "outputs").exists()


def test_a_damaged_results_csv_is_kept_aside_and_rebuilt_from_the_cell_folders(
    tiny_run: Path, tmp_path: Path
):
    import shutil

    cell = Cell("conv_ae", "blob", None, 0, 555, 555)
    folder = tmp_path / record.CELLS_DIR / cell.name
    shutil.copytree(tiny_run, folder)
    record.write_cell_map(tmp_path, {f"cells/{cell.name}": record.cell_entry(cell, "")})
    (tmp_path / record.RESULTS_CSV).write_bytes(b'model,"unclosed\n\x00\xff')
    frame = record.read_results(tmp_path)
    assert frame.empty
    (kept,) = tmp_path.glob("results.csv.damaged-*")
    assert kept.read_bytes().startswith(b"model,")
    frame = record.append_rows(tmp_path, frame, record.recover(tmp_path, frame))
    assert record.finished_keys(frame) == {(cell.key, "")}
    metrics = json.loads((folder / "metrics.json").read_text())
    assert frame.loc[0, "auroc"] == metrics["auroc"]


@pytest.mark.slow  # ~40-80 s: two processes that import TensorFlow; the same grid runs
# through the basic launcher in make test (the first test above)
def test_a_small_benchmark_runs_its_cells_through_the_submitit_launcher(tmp_path: Path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from tests.conftest import run_adx

    result = run_adx(
        "benchmark", *GRID, "benchmark.normal_classes=[0,1]", "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10", "hydra.launcher.cpus_per_task=1", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "outputs" / "benchmarks" / "digits_unsupervised"
    assert (folder / ".submitit").is_dir()  # the cells ran as submitit jobs
    results = pd.read_csv(folder / record.RESULTS_CSV)
    assert list(results["status"]) == ["finished", "finished"]
    for row in results.to_dict("records"):
        metrics = json.loads((folder / row["folder"] / "metrics.json").read_text())
        assert row["auroc"] == metrics["auroc"]
    assert "2/2 cells done" in result.stdout


def test_a_benchmark_is_a_multirun_unless_it_only_prints_its_config() -> None:
    from anomaly_cli.tasks.benchmark import rewrite_overrides

    assert rewrite_overrides(["benchmark.repeats=2"]) == ["--multirun", "benchmark.repeats=2"]
    args = ["--cfg", "job", "benchmark.repeats=2"]  # printed, as Hydra prints outside -m
    assert rewrite_overrides(args) == args
