"""A run folder written by adx 0.1, with the config names it used, still evaluates and sweeps."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import yaml

from anomaly_cli import runs
from tests.conftest import latest, run_adx_in_process


def _age_checkpoint(path: Path) -> None:
    """Give the checkpoint's model config the names adx 0.1 saved."""
    aged = path.with_suffix(".aged")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(aged, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                model = config["config"]
                model["num_filters"] = model.pop("filters")
                model["dense_units"] = model.pop("units")[0]
                data = json.dumps(config).encode()
            target.writestr(item, data)
    aged.replace(path)


def _age(run: Path) -> None:
    """Rewrite a finished run as adx 0.1 wrote it (the names of docs/vocabulary.md)."""
    config = yaml.safe_load((run / runs.CONFIG).read_text())
    dataset, model = config["dataset"], config["model"]
    assert dataset.pop("seed") == config["trainer"]["seed"]  # 0.1 drew data with trainer.seed
    dataset["image_size"] = dataset.pop("preprocess")["image_size"]
    model["num_filters"] = model.pop("filters")
    model["dense_units"] = model.pop("units")[0]
    del config["optimizer"]["_target_"], config["report"]
    del config["task_name"], config["run_name"]
    (run / runs.CONFIG).write_text(yaml.safe_dump(config))
    info = json.loads((run / runs.RUN_INFO).read_text())
    info["versions"]["adx"] = "0.1.0"
    (run / runs.RUN_INFO).write_text(json.dumps(info))
    _age_checkpoint(run / runs.CHECKPOINT)


def test_a_0_1_run_evaluates_to_the_same_scores_and_sweeps(tiny_run: Path, tmp_path: Path):
    old = tmp_path / "old_run"
    shutil.copytree(tiny_run, old, symlinks=True)
    _age(old)
    assert "filters" not in (old / runs.CONFIG).read_text().replace("num_filters", "")

    result = run_adx_in_process("evaluate", f"run={old}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = latest(tmp_path)
    assert evaluated.name.startswith(tuple("0123456789")) and "_evaluate_" in evaluated.name
    assert (evaluated / runs.SCORES).read_bytes() == (tiny_run / runs.SCORES).read_bytes()

    result = run_adx_in_process("sweep", f"run={old}", "threshold=0.001:0.01", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sweeps = sorted((tmp_path / "outputs").glob("*_sweep_*"))
    assert len(sweeps) == 1 and (sweeps[0] / "sweep.csv").is_file()
