"""The training state a run folder keeps for `resume=`, and the check that it can go on.

`checkpoints/state.json` names the latest epoch's checkpoint and holds the
early-stopping state. Both are checked before Hydra writes anything into
the folder, so a resume that is refused leaves the run exactly as it was.
A folder without state.json was stopped before its first epoch finished;
resuming it starts training from the beginning in that same folder.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from anomaly_cli import __version__, runs
from anomaly_cli.errors import AdxUserError
from anomaly_cli.runs import DamagedFile, check_keras_archive, read_json_object, written_by

# The only names state.json may give its checkpoint (no paths, no `..`).
LAST_CHECKPOINT = re.compile(r"last-\d{4,}\.keras")
# Fields newer than the first state.json format, with their defaults when absent.
LATER_KEYS = ("diverged_at", "plateau_best", "plateau_wait", "checkpoint_seconds")


@dataclass
class TrainingState:
    epochs_done: int = 0
    best: float = math.inf
    best_epoch: int = 0
    wait: int = 0
    stopped: bool = False
    train_seconds: float = 0.0
    last_checkpoint: str | None = None
    # The epoch whose loss was not finite; training ended there (status: diverged).
    diverged_at: int | None = None
    # optimizer.schedule=plateau's counters: the best monitored loss, epochs since.
    plateau_best: float = math.inf
    plateau_wait: int = 0
    # Of train_seconds, the time spent writing checkpoints.
    checkpoint_seconds: float = 0.0

    @classmethod
    def load(cls, path: Path, remedy: str = "train the model again") -> TrainingState:
        data = read_json_object(path, remedy)
        names = {f.name for f in fields(cls)}
        # A run started before LATER_KEYS existed has none of them: their defaults apply.
        if set(data) - names or names - set(data) - set(LATER_KEYS):
            raise DamagedFile(f"{path} is damaged (its keys are not a training state); {remedy}")
        state = cls(**data)
        numbers_ok = all(
            isinstance(getattr(state, key), int) and getattr(state, key) >= 0
            for key in ("epochs_done", "best_epoch", "wait", "plateau_wait")
        ) and (state.diverged_at is None or isinstance(state.diverged_at, int))
        name = state.last_checkpoint
        if not numbers_ok or not (name is None or LAST_CHECKPOINT.fullmatch(str(name))):
            raise DamagedFile(f"{path} is damaged (values out of range); {remedy}")
        return state

    def save(self, path: Path) -> None:
        runs.write_json(path, asdict(self))


def resumable_overrides(run: Path) -> list[str]:
    """The overrides `run` was trained with, once it is known that it can go on."""
    label = f"resume={run}"
    if not run.is_dir():
        raise AdxUserError(f"{label} is not a folder; pass the folder of an adx train run")
    saved, composed = run / ".hydra" / "overrides.yaml", run / ".hydra" / "config.yaml"
    if not saved.is_file() or not composed.is_file():
        raise AdxUserError(
            f"{label} is not a train run that can be resumed (no .hydra/overrides.yaml); "
            "pass the folder of an adx train run"
        )
    own = _overrides(saved)
    try:
        verb_config = yaml.safe_load(composed.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise DamagedFile(f"{composed} is damaged ({type(error).__name__})") from error
    if not isinstance(verb_config, dict) or "resume" not in verb_config:
        raise AdxUserError(
            f"{label} holds an evaluate or sweep run, not a train run; only training goes on"
        )
    if "task_name" not in verb_config:
        # Runs from before the config names settled (adx 0.1) drew their data
        # with trainer.seed and may hold retired keys: resumed today, the data
        # could silently differ from the epochs already trained.
        version = written_by(run)
        raise AdxUserError(
            f"{label} was started by adx {version}, whose config names this adx {__version__} "
            f"changed; finish it with adx {version}, or evaluate its best model so far: "
            f"adx evaluate run={shlex.quote(str(run))}"
        )
    state_file = run / runs.TRAINING_STATE
    if state_file.is_file():
        remedy = _remedy(run, own)
        state = TrainingState.load(state_file, remedy)
        # Checksums too: Hydra rewrites .hydra/ right after this, so it must be sure.
        if state.last_checkpoint is not None:
            last = run / runs.CHECKPOINT_DIR / state.last_checkpoint
            check_keras_archive(last, remedy, checksums=True)
        if state.best_epoch > 0:
            check_keras_archive(run / runs.CHECKPOINT, f"start over: {_again(own)}", checksums=True)
    return own


def _overrides(saved: Path) -> list[str]:
    try:
        own = yaml.safe_load(saved.read_text(encoding="utf-8")) or []
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise DamagedFile(f"{saved} is damaged ({type(error).__name__})") from error
    if not isinstance(own, list) or not all(isinstance(o, str) for o in own):
        raise DamagedFile(f"{saved} is damaged (not a list of overrides)")
    return [o for o in own if not o.startswith(("hydra.", "resume="))]


def _again(own: list[str]) -> str:
    return " ".join(["adx train", *(shlex.quote(o) for o in own)])


def _remedy(run: Path, own: list[str]) -> str:
    """What is left when the latest epoch cannot be loaded."""
    try:
        check_keras_archive(run / runs.CHECKPOINT, "")
    except DamagedFile:
        return f"start over: {_again(own)}"
    return (
        f"its best model so far is intact (adx evaluate run={run} scores it); "
        f"or start over: {_again(own)}"
    )
