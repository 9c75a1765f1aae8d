"""The wheel carries configs/, so a non-editable install runs from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = ["wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)]
    subprocess.run([sys.executable, "-m", "pip", *build], check=True, capture_output=True)
    return next(out.glob("*.whl"))


def test_wheel_ships_every_config(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = list(REPO.glob("configs/**/*.yaml"))
    assert configs
    for config in configs:
        assert f"anomaly_cli/{config.relative_to(REPO)}" in names
    assert "hydra_plugins/adx_benchmark_sweeper/sweeper.py" in names  # adx benchmark's sweeper
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "adx = anomaly_cli.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_trains_from_another_directory(wheel: Path, tmp_path: Path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("ADX_OUTPUT_DIR", None)
    args = ["train", "dataset=synthetic", "dataset.n_normal=60", "dataset.n_anomaly=20",
            "trainer.epochs=1", "trainer.verbose=0"]  # fmt: skip
    probe = "import anomaly_cli.config_dir as c; print(c.config_dir())"
    where = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=work, capture_output=True, text=True
    )
    assert where.stdout.strip() == str(target / "anomaly_cli" / "configs")
    result = subprocess.run(
        [sys.executable, "-m", "anomaly_cli", *args],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (work / "outputs" / "latest" / "metrics.json").is_file()
