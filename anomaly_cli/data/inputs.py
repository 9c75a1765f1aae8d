"""Checks every data source runs on its inputs: paths, columns, config values.

Each failure is one `AdxUserError` line that names the config key, the value
the user gave and the fix, worded the same way in every source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from anomaly_cli.errors import AdxUserError, first_lines

if TYPE_CHECKING:
    import pandas as pd

# Names shown in a message before the list is cut short.
SHOWN_NAMES = 40


def existing_file(value: Any, key: str, fix: str, unset_fix: str | None = None) -> Path:
    """The file `key` points at; unset, missing or a directory is an error ending in `fix`."""
    if value is None or not str(value).strip():
        raise AdxUserError(f"{key} is not set; {unset_fix or fix}")
    path = Path(str(value)).expanduser()
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise AdxUserError(f"{key}={value} {what}; {fix}")
    return path


def existing_dir(value: Any, key: str, fix: str) -> Path:
    """The directory `key` points at; a missing one or a file is an error ending in `fix`."""
    path = Path(str(value)).expanduser()
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise AdxUserError(f"{key}={value} {what}; {fix}")
    return path


def require_columns(frame: pd.DataFrame, wanted: Sequence[str], key: str, path: Path) -> None:
    """Every column of `wanted` is in the table; the error lists the columns there are."""
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        raise AdxUserError(
            f"{key}: no column {', '.join(absent)} in {path}; "
            f"its columns are {shown(frame.columns)}"
        )


def unreadable(error: BaseException) -> str:
    """Why a file could not be read, for one line: the error's type and first line."""
    return f"{type(error).__name__}: {first_lines(error)}"


def plain(value: Any) -> Any:
    """Config lists and dicts as plain Python (for messages and JSON); others unchanged."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def as_list(value: Any) -> list[Any]:
    """A config value that may be one item or a list of them, as a list."""
    return list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]


def shown(names: Iterable[Any], limit: int = SHOWN_NAMES) -> str:
    """'a, b, c' or, past `limit` names, 'a, b, ... (120 in all)'."""
    names = [str(n) for n in names]
    extra = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + extra


def is_whole(value: Any) -> bool:
    """An int, or a float with no fraction (a CSV column of ints read as floats); not a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and float(value).is_integer()


def data_seed(cfg: DictConfig | dict[str, Any]) -> int:
    """dataset.seed: the seed of every random choice about the data (split, draws)."""
    seed = cfg.get("seed")
    if seed is None:
        raise AdxUserError(
            "dataset.seed is not set; add seed: 555 to the dataset config or pass dataset.seed=555 "
            "(it seeds the data split and the anomalies drawn)"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise AdxUserError(f"dataset.seed={seed} must be a whole number from 0 to 2**32 - 1")
    return seed


def as_text(column: pd.Series) -> np.ndarray:
    """Each value as text, None where missing; 1.0 reads "1", so a class column
    that pandas turned into floats (because of a gap) still matches normal_class=1."""
    import pandas as pd

    def text(value: Any) -> str | None:
        if pd.isna(value):
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return np.array([text(v) for v in column], dtype=object)
