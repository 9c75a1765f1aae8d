"""Damaged, foreign and hostile run folders, and output folders adx must not write into.

Every case works on a copy of one finished run and fails before Hydra creates
a folder, so each costs about a second; the source run must come out of a
refused command byte for byte as it went in.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.conftest import (
    assert_one_line_error,
    latest,
    run_adx,
    run_adx_in_process,
    train_run,
)


def _copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    return copy


def _fingerprint(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert files, f"{folder} is empty"
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def test_evaluate_of_a_truncated_checkpoint_names_the_file(tiny_run: Path, tmp_path: Path):
    run = _copy(tiny_run, tmp_path)
    _truncate(run / "checkpoints/best.keras")
    result = run_adx("evaluate", f"run={run}", cwd=tmp_path)
    assert_one_line_error(
        result, f"{run}/checkpoints/best.keras is damaged", "train the model again"
    )
    assert "File not found" not in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_evaluate_of_a_zip_that_is_no_model_names_the_file(tiny_run: Path, tmp_path: Path):
    run = _copy(tiny_run, tmp_path)
    with zipfile.ZipFile(run / "checkpoints/best.keras", "w") as archive:
        archive.writestr("notes.txt", "not a model")
    result = run_adx("evaluate", f"run={run}", cwd=tmp_path)
    assert_one_line_error(result, "best.keras is not a Keras model archive")


@pytest.mark.parametrize("damage", ["truncated last checkpoint", "truncated state", "bad path"])
def test_resume_of_damaged_training_state_leaves_the_run_untouched(
    damage: str, tiny_run: Path, tmp_path: Path
):
    run = _copy(tiny_run, tmp_path)
    state_file = run / "checkpoints/state.json"
    state = json.loads(state_file.read_text())
    if damage == "truncated last checkpoint":
        damaged = run / "checkpoints" / state["last_checkpoint"]
        _truncate(damaged)
    elif damage == "truncated state":
        damaged = state_file
        _truncate(damaged)
    else:
        damaged = state_file
        state_file.write_text(json.dumps({**state, "last_checkpoint": "../../config.yaml"}))
    before = _fingerprint(run)
    result = run_adx("train", f"resume={run}", "trainer.epochs=4", cwd=tmp_path)
    assert_one_line_error(
        result, f"{damaged} is damaged", f"adx evaluate run={run} scores it", "or start over"
    )
    assert _fingerprint(run) == before


def test_evaluate_of_a_damaged_config_names_it(tiny_run: Path, tmp_path: Path):
    run = _copy(tiny_run, tmp_path)
    (run / "config.yaml").write_bytes(b"model: [unclosed\n\x00\x01")
    result = run_adx("evaluate", f"run={run}", cwd=tmp_path)
    assert_one_line_error(result, "config.yaml is damaged")


def test_sweep_of_a_damaged_scores_file_names_it(tiny_run: Path, tmp_path: Path):
    run = _copy(tiny_run, tmp_path)
    (run / "scores.csv").write_text("id,label\nx,1\n")
    result = run_adx("sweep", f"run={run}", "threshold=0.1:0.2", cwd=tmp_path)
    assert_one_line_error(result, "scores.csv lacks column(s) score")


def test_resume_of_an_evaluate_run_is_refused(tiny_run: Path, tmp_path: Path):
    evaluated = run_adx_in_process("evaluate", f"run={tiny_run}", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = run_adx("train", f"resume={latest(tmp_path)}", cwd=tmp_path)
    assert_one_line_error(result, "holds an evaluate or sweep run, not a train run")


def test_a_foreign_folder_is_not_resumed(tmp_path: Path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos/cat.png").write_bytes(b"png")
    result = run_adx("train", f"resume={tmp_path / 'photos'}", cwd=tmp_path)
    assert_one_line_error(result, "is not a train run that can be resumed")


def test_a_run_folder_config_cannot_name_code_outside_adx(tiny_run: Path, tmp_path: Path):
    run = _copy(tiny_run, tmp_path)
    config = (run / "config.yaml").read_text()
    # A copied run that names a builtin, and even "allows" it itself.
    hostile = config.replace(
        "_target_: anomaly_cli.data.synthetic.load", "_target_: builtins.print"
    ).replace("plugins: []", "plugins:\n- builtins")
    assert hostile != config
    (run / "config.yaml").write_text(hostile)
    result = run_adx("evaluate", f"run={run}", cwd=tmp_path)
    assert_one_line_error(
        result, "dataset._target_=builtins.print", f"(in {run}/config.yaml) is outside"
    )
    assert "DictConfig" not in result.stdout  # print never ran on the config


def test_a_new_run_never_writes_into_an_existing_one(tiny_run: Path, tmp_path: Path):
    run = _copy(tiny_run, tmp_path)
    before = _fingerprint(run)
    for verb in ("train", "evaluate"):
        result = run_adx(verb, f"run={run}" if verb == "evaluate" else "trainer.epochs=1",
                         f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
        assert_one_line_error(result, f"hydra.run.dir={run} already holds a run", "new folder")
    assert _fingerprint(run) == before


def test_a_multirun_never_writes_into_an_existing_sweep(tmp_path: Path):
    sweep = tmp_path / "sweep"
    (sweep / "0_conv_ae_synthetic").mkdir(parents=True)
    (sweep / "0_conv_ae_synthetic" / "config.yaml").write_text("model: {}\n")
    result = run_adx("train", "-m", "trainer.epochs=1,2", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert_one_line_error(result, "already holds a run (0_conv_ae_synthetic/)")


def test_an_output_folder_under_a_file_is_one_line(tmp_path: Path):
    (tmp_path / "a_file").write_text("")
    result = run_adx("train", "paths.output_dir=a_file/sub", cwd=tmp_path)
    assert_one_line_error(result, "paths.output_dir=a_file/sub cannot be created: a_file is a file")


def test_a_run_folder_anywhere_works_and_latest_lives_in_the_output_dir(tmp_path: Path):
    run = train_run(tmp_path, "debug=tiny", "trainer.epochs=1", "hydra.run.dir=runs/x")
    assert run == (tmp_path / "runs/x").resolve()
    assert (run / "metrics.json").is_file()
    mode = (run / "scores.csv").stat().st_mode & 0o777
    assert mode == 0o666 & ~_umask()  # not mkstemp's private 0600


def _umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_no_artifact_of_a_run_is_a_pickle(tiny_run: Path):
    """Text, PNG, or a Keras zip of JSON and HDF5: nothing that unpickles on read."""
    files = [p for p in tiny_run.rglob("*") if p.is_file()]
    assert len(files) > 15
    for path in files:
        head = path.read_bytes()[:8]
        assert not head.startswith(b"\x80"), f"{path} looks like a pickle"
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                assert set(archive.namelist()) <= {"config.json", "metadata.json",
                                                   "model.weights.h5"}  # fmt: skip
        elif path.suffix == ".png":
            assert head.startswith(b"\x89PNG")
        elif ".tfevents." in path.name:
            continue  # TensorBoard's event files (tb/): records of protocol buffers
        else:
            path.read_text(encoding="utf-8")  # every other artifact is text
