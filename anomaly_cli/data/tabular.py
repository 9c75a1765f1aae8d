"""Rows of a CSV or parquet table as samples; a class column names each row's class.

The features are every column but the class and id (or `feature_columns`),
text columns one-hot encoded on request. Missing values are filled with the
train median, numbers are scaled and the result optionally reduced by PCA
(seed 003). All of it is fitted on the train split only
(`tabular_transform.TabularTransform`) and kept as JSON in `Splits.transform`;
`adx evaluate` hands it back in `ctx.transform`, so new rows go through the
training run's transform instead of a refit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig, ListConfig

from anomaly_cli.data.base import ANOMALY, NORMAL, ArraySplit, LoadContext, Splits
from anomaly_cli.data.inputs import as_list, as_text, existing_file, shown
from anomaly_cli.data.splits import class_labels, natural_order, protocol_indices
from anomaly_cli.data.tabular_transform import FIT_KEYS, TabularTransform
from anomaly_cli.data.transforms import SavedTransformError
from anomaly_cli.errors import AdxUserError, first_lines

if TYPE_CHECKING:
    import pandas as pd

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
CHOICES = {
    "scaler": ("standard", "minmax", "none"),
    "categorical": ("onehot", "error"),
    "missing": ("impute", "error"),
}
# FIT_KEYS decide the fitted transform: evaluate reapplies the saved one, so it
# refuses a different value instead of silently ignoring it.
FITTED, REUSED = "fitted on train", "reused from the training run"


def load(cfg: DictConfig, ctx: LoadContext) -> Splits:
    for key, allowed in CHOICES.items():
        if cfg.get(key) not in allowed:
            raise AdxUserError(f"dataset.{key}={cfg.get(key)}; choose one of: {', '.join(allowed)}")
    path = table_path(cfg.get("path"))
    frame = read_table(path)
    class_column = _named_column(frame, cfg.get("class_column"), "dataset.class_column", path)
    id_column = None
    if cfg.get("id_column") is not None:
        id_column = _named_column(frame, cfg.id_column, "dataset.id_column", path)
    ids = row_ids(frame, id_column, path)
    classes = as_text(frame[class_column])
    labelled = np.array([c is not None for c in classes], dtype=bool)
    if not labelled.any():
        raise AdxUserError(
            f"{path} has no row with a value in column '{class_column}'; "
            "fill in the classes or choose another dataset.class_column"
        )
    rows_in_file = len(frame)
    frame = frame[labelled].reset_index(drop=True)
    ids, classes = ids[labelled], classes[labelled].astype(str)

    names = sorted(set(classes), key=natural_order)
    if cfg.get("normal_class") is None:
        raise AdxUserError(
            f"dataset.normal_class is not set; classes in column '{class_column}': "
            f"{', '.join(names[:60])}"
        )
    labels = class_labels(classes, names, cfg)
    parts = protocol_indices(labels, cfg, ctx)
    used = np.unique(np.concatenate(list(parts.values())))

    if ctx.transform is None:
        numeric, categorical = feature_columns(frame, cfg, path, (class_column, id_column))
        check_values(frame, used, numeric + categorical, cfg, path)
        fitted = fit_transform(frame.iloc[parts["train"]], numeric, categorical, cfg, ctx.seed)
    else:
        fitted = saved_transform(ctx.transform, cfg, frame, path)
        check_values(frame, used, fitted.columns, cfg, path)
    x = np.zeros((len(frame), fitted.width), np.float32)
    x[used] = fitted.apply(frame.iloc[used])

    pool = ArraySplit(ids=ids, labels=labels, classes=classes, x=x)
    info = {
        "source": "tabular",
        "path": str(path),
        "class_column": class_column,
        "id_column": id_column,
        "rows": rows_in_file,
        # Rows without a label cannot be scored, so they are left out.
        "rows_dropped": int(rows_in_file - len(frame)),
        "feature_columns": fitted.columns,
        "features": fitted.features,
        "categories": {col: len(cats) for col, cats in fitted.categories.items()},
        "missing": cfg.missing,
        "imputed_values": _missing_counts(frame.iloc[used], fitted.columns),
        "scaler": fitted.scaler.kind,
        "pca": None if fitted.pca is None else fitted.pca.describe(),
        "transform": FITTED if ctx.transform is None else REUSED,
        "classes": names,
        "normal_classes": sorted(set(classes[labels == NORMAL]), key=natural_order),
        "anomaly_classes": sorted(set(classes[labels == ANOMALY]), key=natural_order),
        "protocol": ctx.protocol,
    }
    return Splits(
        **{name: pool.select(idx) for name, idx in parts.items()},
        input_shape=(int(x.shape[1]),),
        info=info,
        protocol=ctx.protocol,
        transform=fitted.to_dict(),
    )


def table_path(value: Any) -> Path:
    fix = "point it at a .csv or .parquet file"
    path = existing_file(value, "dataset.path", fix, f"{fix} (dataset.path=rows.csv)")
    if path.suffix.lower() not in READERS:
        raise AdxUserError(
            f"dataset.path={value} is neither .csv nor .parquet; save the table in one of them"
        )
    return path


def read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        if READERS[path.suffix.lower()] == "csv":
            frame = pd.read_csv(path)
        else:
            frame = pd.read_parquet(path)
    except ImportError as error:
        raise AdxUserError(f"{path}: reading parquet needs pyarrow ({error})") from error
    except Exception as error:  # pandas raises many kinds for unreadable files
        raise AdxUserError(
            f"dataset.path={path} cannot be read as a table: {first_lines(error)}"
        ) from error
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty:
        raise AdxUserError(f"dataset.path={path} holds no rows; point it at a table with data")
    return frame


def _named_column(frame: pd.DataFrame, name: Any, key: str, path: Path) -> str:
    if name is None:
        raise AdxUserError(f"{key} is not set; columns of {path}: {shown(frame.columns)}")
    if str(name) not in frame.columns:
        raise AdxUserError(
            f"{key}={name} is not a column of {path}; columns: {shown(frame.columns)}"
        )
    return str(name)


def row_ids(frame: pd.DataFrame, id_column: str | None, path: Path) -> np.ndarray:
    """`id_column`'s values, or the row number in the file ("row-000017")."""
    if id_column is None:
        width = max(6, len(str(len(frame) - 1)))
        return np.array([f"row-{i:0{width}d}" for i in range(len(frame))])
    ids = as_text(frame[id_column])
    blank = sum(i is None for i in ids)
    if blank:
        raise AdxUserError(
            f"dataset.id_column={id_column}: {blank} rows of {path} have no id; "
            "fill them in or set dataset.id_column=null to number the rows"
        )
    values, counts = np.unique(ids.astype(str), return_counts=True)
    if np.any(counts > 1):
        repeated = values[counts > 1][0]
        raise AdxUserError(
            f"dataset.id_column={id_column} repeats ids in {path} (e.g. '{repeated}'); "
            "use a column with one id per row or dataset.id_column=null"
        )
    return ids.astype(str)


def feature_columns(
    frame: pd.DataFrame, cfg: DictConfig, path: Path, exclude: Sequence[str | None]
) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns to use: `feature_columns`, or all but label and id."""
    from pandas.api.types import is_numeric_dtype

    listed = cfg.get("feature_columns")
    if listed is None:
        chosen = [c for c in frame.columns if c not in exclude]
    else:
        chosen = list(dict.fromkeys(str(c) for c in as_list(listed)))
        unknown = [c for c in chosen if c not in frame.columns]
        if unknown:
            raise AdxUserError(
                f"dataset.feature_columns names {', '.join(unknown)}, not in {path}; "
                f"columns: {shown(frame.columns)}"
            )
        reserved = [c for c in chosen if c in exclude]
        if reserved:
            raise AdxUserError(
                f"dataset.feature_columns lists the label/id column {', '.join(reserved)}; "
                "remove it from the list"
            )
    if not chosen:
        raise AdxUserError(
            f"{path} has no column besides the label and id; add feature columns to the table"
        )
    numeric = [c for c in chosen if is_numeric_dtype(frame[c])]
    text = [c for c in chosen if c not in numeric]
    if text and cfg.categorical == "error":
        fix = (
            "drop it from dataset.feature_columns"
            if listed is not None
            else ("list the columns to use in dataset.feature_columns")
        )
        raise AdxUserError(
            f"column(s) {', '.join(text)} of {path} hold text, not numbers; "
            f"set dataset.categorical=onehot to one-hot encode them, or {fix}"
        )
    return numeric, text


def check_values(
    frame: pd.DataFrame, used: np.ndarray, columns: Sequence[str], cfg: DictConfig, path: Path
) -> None:
    """Empty columns, infinities and (with missing=error) gaps, before anything is fitted."""
    from pandas.api.types import is_numeric_dtype

    empty = [c for c in columns if frame[c].isna().all()]
    if empty:
        raise AdxUserError(
            f"column(s) {', '.join(empty)} of {path} hold no value at all; "
            "leave them out via dataset.feature_columns or drop them from the file"
        )
    rows = frame.iloc[used]
    infinite = [
        c
        for c in columns
        if is_numeric_dtype(rows[c]) and np.isinf(rows[c].to_numpy(np.float64, na_value=0)).any()
    ]
    if infinite:
        raise AdxUserError(
            f"column(s) {', '.join(infinite)} of {path} hold infinite values; "
            "replace them in the file or leave the columns out via dataset.feature_columns"
        )
    gaps = _missing_counts(rows, columns)
    if gaps and cfg.missing == "error":
        listed = ", ".join(f"{c} ({n} rows)" for c, n in gaps.items())
        raise AdxUserError(
            f"{path} has missing values in {listed}; set dataset.missing=impute "
            "to fill them with the train median, or fill them in the file"
        )


def _missing_counts(rows: pd.DataFrame, columns: Sequence[str]) -> dict[str, int]:
    counts = rows[list(columns)].isna().sum()
    return {str(c): int(n) for c, n in counts.items() if n}


def fit_transform(
    train: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    cfg: DictConfig,
    seed: int,
) -> TabularTransform:
    """Imputer, scaler, one-hot categories and PCA, fitted on the train rows."""
    values = train[numeric].to_numpy(np.float64, na_value=np.nan)
    unfillable = [c for c, col in zip(numeric, values.T, strict=True) if np.isnan(col).all()]
    if unfillable:
        raise AdxUserError(
            f"column(s) {', '.join(unfillable)} have no value in the {len(train)} train rows, "
            "so no median can be fitted; leave them out via dataset.feature_columns"
        )
    settings = {key: _setting(cfg.get(key)) for key in FIT_KEYS}
    fitted = TabularTransform.fit(train, numeric, categorical, settings)
    wanted = settings["pca_components"]
    if wanted is None:
        return fitted
    features = len(fitted.features)
    limit = min(len(train), features)
    if isinstance(wanted, bool) or not isinstance(wanted, int) or not 1 <= wanted <= limit:
        raise AdxUserError(
            f"dataset.pca_components={wanted} must be a whole number from 1 to {limit} "
            f"({features} features, {len(train)} train rows)"
        )
    return fitted.with_pca(train, wanted, seed)


def saved_transform(
    state: dict[str, Any], cfg: DictConfig, frame: pd.DataFrame, path: Path
) -> TabularTransform:
    """The training run's transform, after checking it fits this config and table."""
    from pandas.api.types import is_numeric_dtype

    try:
        fitted = TabularTransform.from_dict(state)
    except SavedTransformError:
        raise AdxUserError(
            "the run's data_transform.json is not a tabular transform; "
            "evaluate a run that was trained with dataset=tabular"
        ) from None
    for key in FIT_KEYS:
        now, then = _setting(cfg.get(key)), fitted.settings.get(key)
        if now != then:
            raise AdxUserError(
                f"dataset.{key}={now} differs from the training run's {then}; evaluate "
                "reapplies that run's fitted transform, so drop the override"
            )
    absent = [c for c in fitted.columns if c not in frame.columns]
    if absent:
        raise AdxUserError(
            f"dataset.path={path} lacks column(s) {', '.join(absent)} that the training run "
            f"used; columns present: {shown(frame.columns)}"
        )
    text = [c for c in fitted.numeric_columns if not is_numeric_dtype(frame[c])]
    if text:
        raise AdxUserError(
            f"column(s) {', '.join(text)} of {path} hold text, but were numbers in the "
            "training run; fix the values in the file"
        )
    return fitted


def _setting(value: Any) -> Any:
    """A FIT_KEYS value as saved: lists as lists of text, so 1 and "1" compare equal."""
    if isinstance(value, (list, tuple, ListConfig)):
        return [str(v) for v in value]
    return value
