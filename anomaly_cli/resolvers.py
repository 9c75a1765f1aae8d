"""OmegaConf resolvers used in the verbs' run-directory names."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

LATEST = "latest"
STAMP_FORMAT = "%Y-%m-%d_%H-%M-%S"

# One claimed folder per (parent, label) and process: Hydra and OmegaConf may
# resolve the run-dir interpolation several times, seconds apart.
_claimed: dict[tuple[str, str], str] = {}
_claiming = True
# Folders above a run folder that claiming it created (outputs/, outputs/multirun/),
# deepest first: a run that fails on bad input removes them again when empty.
_created_parents: list[Path] = []


@contextlib.contextmanager
def names_only() -> Iterator[None]:
    """Resolve run-dir names without creating folders (for checking overrides)."""
    global _claiming
    previous, _claiming = _claiming, False
    try:
        yield
    finally:
        _claiming = previous


def unique_dir(parent: str, label: str) -> str:
    """Create and return `<parent>/<timestamp>_<label>` (or `..._2`, `..._3`).

    mkdir either creates the folder or fails, so two runs started in the same
    second can never share one.
    """
    key = (str(parent), str(label))
    if key in _claimed:
        return _claimed[key]
    base = Path(parent) / f"{datetime.now().strftime(STAMP_FORMAT)}_{label}"
    if not _claiming:
        return str(base)
    missing = [p for p in (base.parent, *base.parent.parents) if not p.exists()]
    base.parent.mkdir(parents=True, exist_ok=True)
    _created_parents.extend(missing)
    for attempt in range(1, 1000):
        candidate = base if attempt == 1 else base.with_name(f"{base.name}_{attempt}")
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        _claimed[key] = str(candidate)
        return str(candidate)
    raise RuntimeError(f"could not create a unique run directory for {base}")


def remove_empty_parents() -> None:
    """Remove the parents claiming created, if nothing else was put there since."""
    for parent in _created_parents:
        with contextlib.suppress(OSError):
            parent.rmdir()
    _created_parents.clear()


def run_label(run: str | None, output_dir: str) -> str:
    """'<model>_<dataset>' of the run a verb re-enters, for its new folder's name."""
    source = Path(run) if run else Path(output_dir) / LATEST
    try:
        cfg = OmegaConf.load(source / "config.yaml")
        return f"{cfg.model.name}_{cfg.dataset.name}"
    except Exception:
        return "unknown"


def register() -> None:
    if not OmegaConf.has_resolver("adx.unique_dir"):
        # Cached in the config, as Hydra's own ${now:}: a parallel launcher's
        # worker recomposes the job's config and gets the sweep folder claimed here.
        OmegaConf.register_new_resolver("adx.unique_dir", unique_dir, use_cache=True)
    if not OmegaConf.has_resolver("adx.run_label"):
        OmegaConf.register_new_resolver("adx.run_label", run_label)
