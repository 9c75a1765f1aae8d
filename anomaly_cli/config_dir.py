"""Where the Hydra configs live and what each config group offers."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def config_dir() -> Path:
    """The configs shipped in the wheel, or the repo's configs/ in a checkout."""
    for candidate in (_PACKAGE_DIR / "configs", _PACKAGE_DIR.parent / "configs"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"adx configs not found next to {_PACKAGE_DIR}")


def config_groups() -> dict[str, list[str]]:
    """Each config group (a folder under configs/) with its options, sorted."""
    root = config_dir()
    return {
        group.name: sorted(p.stem for p in group.glob("*.yaml"))
        for group in sorted(root.iterdir())
        # configs/hydra/ holds Hydra's own settings, not a choice for users.
        if group.is_dir() and not group.name.startswith((".", "_")) and group.name != "hydra"
    }
