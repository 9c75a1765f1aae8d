"""Every `adx` command in the README runs (shrunk to a few epochs) and does its job.

The README's data examples use relative paths; the fixtures below create
those files in the test's folder first, and a small prepared TensorFlow
Datasets folder stands in for the downloads (TFDS_DATA_DIR).
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, latest, run_adx_in_process, shared_folder
from tests.data.fixtures_folder import make_folder_fixture
from tests.data.fixtures_mvtec import make_mvtec_fixture
from tests.data.fixtures_npz import make_npz_fixture
from tests.data.fixtures_tabular import make_tabular_fixture
from tests.data.fixtures_tfds import make_tfds_fixture
from tests.data.fixtures_timeseries import make_timeseries_fixture

SHRINK = ("trainer.epochs=2", "trainer.verbose=0")
# Verbs that read the runs of the commands before them.
REENTERING = {"evaluate", "sweep", "predict", "compare"}
# Seed 000's full-size experiment (a 48M-parameter model): run by make test-all.
HEAVY = "experiment="


def readme_sections() -> list[list[str]]:
    """The README's `adx` commands, in its order, grouped so that each group runs on its own.

    A command that re-enters an earlier run (evaluate, sweep, resume=) joins
    the group of the command before it; every other command starts a group.
    Groups run as separate tests, which the test workers share.
    """
    text = (REPO / "README.md").read_text()
    sections: list[list[str]] = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S):
        lines = (line.strip().removeprefix("$ ") for line in block.splitlines())
        for command in (line for line in lines if line.startswith("adx")):
            if sections and _reenters(command):
                sections[-1].append(command)
            else:
                sections.append([command])
    return sections


def _reenters(command: str) -> bool:
    args = shlex.split(command)[1:]
    return bool(args) and (args[0] in REENTERING or "resume=" in command)


def readme_commands() -> list[str]:
    return [command for section in readme_sections() for command in section]


# Seed 000's experiment runs in its own slow test, below.
LIGHT_SECTIONS = [s for s in ([c for c in s if HEAVY not in c] for s in readme_sections()) if s]


def make_readme_data(root: Path, caltech101: bool = True) -> dict[str, str]:
    """The files the README's commands read; returns the environment they need.

    Only seed 000's experiment reads caltech101 (most of the time spent here).
    """
    make_folder_fixture(root / "folder_data")
    make_mvtec_fixture(root / "data" / "mvtec")
    make_npz_fixture(root)
    make_tabular_fixture(root)
    make_timeseries_fixture(root)
    make_tfds_fixture(root, caltech101=caltech101)
    return readme_env(root)


def readme_env(root: Path) -> dict[str, str]:
    return {"TFDS_DATA_DIR": str(root / "tfds_data")}


@pytest.fixture(scope="session")
def light_readme_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the light commands read, made once: each test copies them."""

    def make(root: Path) -> Path:
        make_readme_data(root, caltech101=False)
        return root

    return shared_folder(tmp_path_factory, "readme_data", make)


def run_readme_command(command: str, cwd: Path, env: dict[str, str]) -> None:
    args = shlex.split(command)[1:]
    verb = args[0] if args else ""
    shrink = SHRINK if verb in {"train", "benchmark"} and "--help" not in args else ()
    # In this process: the CLI's own code (tests/test_in_process.py holds it to
    # what a process does); tests/test_cli.py covers the process contract.
    result = run_adx_in_process(*args, *shrink, cwd=cwd, env=env)
    assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"
    if verb in {"train", "evaluate"} and "-m" not in args and "--help" not in args:
        assert (latest(cwd) / "metrics.json").is_file(), command
    if verb == "benchmark":
        (table,) = (cwd / "outputs" / "benchmarks").glob("*/table.csv")
        assert "AUROC (%)" in result.stdout and len(table.read_text().splitlines()) > 1, command
    if verb == "sweep":
        assert "| Metric" in result.stdout, command
    if verb == "predict":
        predictions = _newest(cwd, "_predict_") / "predictions.csv"
        assert len(predictions.read_text().splitlines()) > 1, command
    if verb == "compare":
        assert (_newest(cwd, "_compare_") / "compare.csv").is_file(), command
        assert "| Metric" in result.stdout, command


def _newest(cwd: Path, kind: str) -> Path:
    folders = sorted(p for p in (cwd / "outputs").iterdir() if kind in p.name)
    assert folders, f"no {kind} folder in {cwd / 'outputs'}"
    return folders[-1]


def test_readme_shows_commands_for_every_verb_and_source():
    commands = readme_commands()
    verbs = {shlex.split(c)[1] for c in commands if len(shlex.split(c)) > 1}
    assert {"train", "evaluate", "sweep", "predict", "compare", "benchmark"} <= verbs
    sources = {
        a.removeprefix("dataset=")
        for c in commands
        for a in shlex.split(c)
        if a.startswith("dataset=")
    }
    configs = {p.stem for p in (REPO / "configs" / "dataset").glob("*.yaml")}
    presets = {"caltech101", "cifar10", "cifar100", "fashion_mnist", "svhn_cropped", "digits"}
    needed = configs - presets
    assert needed and needed <= sources, needed - sources


def test_the_readme_sections_hold_every_light_command():
    assert len(LIGHT_SECTIONS) >= 8
    light = [c for c in readme_commands() if HEAVY not in c]
    assert light and [c for section in LIGHT_SECTIONS for c in section] == light


@pytest.mark.parametrize(
    "section", LIGHT_SECTIONS, ids=[f"{i}: {s[0][:50]}" for i, s in enumerate(LIGHT_SECTIONS)]
)
def test_every_readme_command_runs(section: list[str], light_readme_data: Path, tmp_path: Path):
    shutil.copytree(light_readme_data, tmp_path, dirs_exist_ok=True)
    env = readme_env(tmp_path)
    for command in section:
        run_readme_command(command, tmp_path, env)


@pytest.mark.slow
def test_readme_experiment_commands_run(tmp_path: Path):
    env = make_readme_data(tmp_path)
    heavy = [c for c in readme_commands() if HEAVY in c]
    assert heavy
    for command in heavy:
        run_readme_command(command, tmp_path, env)
