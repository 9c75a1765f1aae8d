from __future__ import annotations

import json
from pathlib import Path

import pytest

from anomaly_cli import runs
from anomaly_cli.errors import AdxUserError


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path):
    target = tmp_path / "sub" / "metrics.json"
    runs.write_json(target, {"auroc": 0.5})
    runs.write_json(target, {"auroc": 0.75})
    assert json.loads(target.read_text()) == {"auroc": 0.75}
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path):
    target = tmp_path / "scores.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), runs.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_latest_link_follows_the_newest_run(tmp_path: Path):
    first, second = tmp_path / "run1", tmp_path / "run2"
    first.mkdir(), second.mkdir()
    runs.update_latest(first, tmp_path)
    runs.update_latest(second, tmp_path)
    link = tmp_path / "latest"
    assert link.is_symlink() and link.resolve() == second.resolve()
    assert not Path(link.readlink()).is_absolute()


def test_find_run_names_what_is_missing(tmp_path: Path):
    with pytest.raises(AdxUserError, match=r"has no scores\.csv"):
        runs.find_run(str(tmp_path), str(tmp_path), needs=(runs.SCORES,))
    with pytest.raises(AdxUserError, match="train a model first"):
        runs.find_run(None, str(tmp_path / "outputs"), needs=(runs.SCORES,))
    (tmp_path / runs.SCORES).write_text("id,label,score,prediction\n")
    assert runs.find_run(str(tmp_path), "unused", needs=(runs.SCORES,)) == tmp_path.resolve()
