"""Every `adx` command in the README runs (shrunk to a few epochs) and does its job."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.conftest import REPO, latest, run_adx

SHRINK = ("trainer.epochs=2", "trainer.verbose=0")


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S)
    return [
        line.strip().removeprefix("$ ")
        for block in blocks
        for line in block.splitlines()
        if line.strip().removeprefix("$ ").startswith("adx")
    ]


def test_readme_shows_commands_for_every_verb():
    verbs = {shlex.split(c)[1] for c in readme_commands() if len(shlex.split(c)) > 1}
    assert {"train", "evaluate", "sweep"} <= verbs


def test_every_readme_command_runs(tmp_path: Path):
    for command in readme_commands():
        args = shlex.split(command)[1:]
        verb = args[0] if args else ""
        shrink = SHRINK if verb == "train" and "--help" not in args else ()
        result = run_adx(*args, *shrink, cwd=tmp_path)
        assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"
        if verb in {"train", "evaluate"} and "-m" not in args and "--help" not in args:
            assert (latest(tmp_path) / "metrics.json").is_file(), command
        if verb == "sweep":
            assert "| Metric" in result.stdout, command
