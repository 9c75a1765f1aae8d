"""state.json and the checks that a folder can be resumed, all before Hydra touches it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anomaly_cli.errors import AdxUserError
from anomaly_cli.runs import DamagedFile
from anomaly_cli.training.state import TrainingState, resumable_overrides


def test_state_round_trips(tmp_path: Path):
    state = TrainingState(epochs_done=3, best=0.25, best_epoch=2, last_checkpoint="last-0003.keras")
    state.save(tmp_path / "state.json")
    assert TrainingState.load(tmp_path / "state.json") == state


def test_a_state_from_before_the_divergence_and_plateau_fields_still_loads(tmp_path: Path):
    older = dict(TrainingState(epochs_done=2).__dict__)
    for key in ("diverged_at", "plateau_best", "plateau_wait"):
        del older[key]
    (tmp_path / "state.json").write_text(json.dumps(older))
    assert TrainingState.load(tmp_path / "state.json") == TrainingState(epochs_done=2)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "[]",
        '{"epochs_done": 1}',
        json.dumps({**TrainingState().__dict__, "epochs_done": -1}),
        json.dumps({**TrainingState().__dict__, "last_checkpoint": "/etc/passwd"}),
        json.dumps({**TrainingState().__dict__, "last_checkpoint": "last-0001.keras/../x"}),
    ],
)
def test_a_damaged_state_names_the_file_and_the_remedy(content: str, tmp_path: Path):
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(DamagedFile, match=r"state\.json is damaged.*start again"):
        TrainingState.load(path, remedy="start again")


def _train_folder(tmp_path: Path, config: str = "resume: null\ntask_name: train\n") -> Path:
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra/overrides.yaml").write_text("- dataset=synthetic\n- hydra.run.dir=x\n")
    (run / ".hydra/config.yaml").write_text(config)
    return run


def test_a_run_stopped_before_its_first_epoch_can_be_resumed(tmp_path: Path):
    # No state.json yet: resume starts training from the beginning in this folder.
    assert resumable_overrides(_train_folder(tmp_path)) == ["dataset=synthetic"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "is not a folder"),
        ("no snapshot", "is not a train run that can be resumed"),
        ("evaluate run", "holds an evaluate or sweep run"),
        ("damaged overrides", "overrides.yaml is damaged"),
        ("damaged snapshot", "config.yaml is damaged"),
    ],
)
def test_what_cannot_be_resumed_says_why(setup: str, message: str, tmp_path: Path):
    run = tmp_path / "run"
    if setup == "no snapshot":
        run.mkdir()
    elif setup == "evaluate run":
        run = _train_folder(tmp_path, "run: null\n")
    elif setup == "damaged overrides":
        run = _train_folder(tmp_path)
        (run / ".hydra/overrides.yaml").write_text("{not: [a, list")
    elif setup == "damaged snapshot":
        run = _train_folder(tmp_path, "resume: [\n")
    with pytest.raises(AdxUserError, match=message):
        resumable_overrides(run)
