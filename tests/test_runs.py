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


def test_artifacts_get_the_mode_the_umask_gives_not_mkstemps_0600(tmp_path: Path):
    import os

    previous = os.umask(0o027)
    runs._umask.cache_clear()
    try:
        runs.write_text(tmp_path / "metrics.txt", "x")
    finally:
        os.umask(previous)
        runs._umask.cache_clear()
    assert (tmp_path / "metrics.txt").stat().st_mode & 0o777 == 0o640


def test_a_failed_write_names_the_artifact_not_its_temporary(tmp_path: Path):
    import errno

    with pytest.raises(OSError) as raised, runs.atomic_path(tmp_path / "best.keras") as tmp:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert raised.value.filename == str(tmp_path / "best.keras")
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path: Path):
    (tmp_path / "checkpoints").mkdir()
    stale = [tmp_path / "checkpoints/.best.ab12cd34.keras", tmp_path / ".scores.x1y2z3w4.csv"]
    kept = [tmp_path / "checkpoints/best.keras", tmp_path / ".hydra/.config.ab12cd34.yaml"]
    kept[1].parent.mkdir()
    for path in stale + kept:
        path.write_text("")
    assert sorted(runs.remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert all(p.is_file() for p in kept) and not any(p.exists() for p in stale)


def test_latest_is_made_where_it_can_be_and_skipped_with_a_warning_where_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    assert runs.update_latest(run, tmp_path / "new" / "outputs")  # output_dir made on demand
    assert (tmp_path / "new/outputs/latest").resolve() == run

    def refuse(*args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(runs.os, "symlink", refuse)
    assert not runs.update_latest(run, tmp_path / "other")
    assert "could not point" in caplog.text and f"pass run={run}" in caplog.text


def test_keras_archives_are_checked_before_keras_sees_them(tmp_path: Path):
    import zipfile

    remedy = "train again"
    path = tmp_path / "best.keras"
    with pytest.raises(runs.DamagedFile, match="is missing; train again"):
        runs.check_keras_archive(path, remedy)
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(runs.DamagedFile, match=r"best\.keras is damaged \(File is not a zip"):
        runs.check_keras_archive(path, remedy)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(runs.DamagedFile, match="not a Keras model archive"):
        runs.check_keras_archive(path, remedy)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", "")
    runs.check_keras_archive(path, remedy)


def test_a_flipped_byte_inside_a_checkpoint_is_found_by_its_checksum(tmp_path: Path):
    import zipfile

    path = tmp_path / "last-0001.keras"
    with zipfile.ZipFile(path, "w") as archive:  # stored, so the bytes are as written
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"w" * 1000)
    data = bytearray(path.read_bytes())
    data[data.index(b"w" * 1000) + 500] ^= 0xFF
    path.write_bytes(bytes(data))
    runs.check_keras_archive(path, "x")  # the quick check reads only the directory
    with pytest.raises(runs.DamagedFile, match=r"\(model.weights.h5 fails its checksum\); x"):
        runs.check_keras_archive(path, "x", checksums=True)
