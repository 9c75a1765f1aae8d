"""Rows of a CSV or parquet table as samples; a label column names each row's class.

The features are every column but the label and id (or `feature_columns`),
text columns one-hot encoded on request. Missing values are filled with the
train median, numbers are scaled and the result optionally reduced by PCA
(seed 003). All of it is fitted on the train split only and kept as plain
JSON in `Splits.transform`; `adx evaluate` hands it back in `ctx.transform`,
so new rows go through the training run's transform instead of a refit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig, ListConfig

from anomaly_cli.data.base import ANOMALY, NORMAL, ArraySplit, LoadContext, Splits
from anomaly_cli.data.splits import class_labels, natural_order, protocol_indices
from anomaly_cli.errors import AdxUserError

if TYPE_CHECKING:
    import pandas as pd

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
CHOICES = {
    "scaler": ("standard", "minmax", "none"),
    "categorical": ("onehot", "error"),
    "missing": ("impute", "error"),
}
# Settings that decide the fitted transform: evaluate reapplies the saved one,
# so it refuses a different value instead of silently ignoring it.
FIT_KEYS = ("feature_columns", "categorical", "scaler", "pca_components")
FITTED, REUSED = "fitted on train", "reused from the training run"


def load(cfg: DictConfig, ctx: LoadContext) -> Splits:
    for key, allowed in CHOICES.items():
        if cfg.get(key) not in allowed:
            raise AdxUserError(f"dataset.{key}={cfg.get(key)}; choose one of: {', '.join(allowed)}")
    path = table_path(cfg.get("path"))
    frame = read_table(path)
    label_column = _named_column(frame, cfg.get("label_column"), "dataset.label_column", path)
    id_column = None
    if cfg.get("id_column") is not None:
        id_column = _named_column(frame, cfg.id_column, "dataset.id_column", path)
    ids = row_ids(frame, id_column, path)
    classes = as_text(frame[label_column])
    labelled = np.array([c is not None for c in classes], dtype=bool)
    if not labelled.any():
        raise AdxUserError(
            f"{path} has no row with a value in column '{label_column}'; "
            "fill in the labels or choose another dataset.label_column"
        )
    rows_in_file = len(frame)
    frame = frame[labelled].reset_index(drop=True)
    ids, classes = ids[labelled], classes[labelled].astype(str)

    names = sorted(set(classes), key=natural_order)
    if cfg.get("normal_class") is None:
        raise AdxUserError(
            f"dataset.normal_class is not set; classes in column '{label_column}': "
            f"{', '.join(names[:60])}"
        )
    labels = class_labels(classes, names, cfg)
    parts = protocol_indices(labels, cfg, ctx)
    used = np.unique(np.concatenate(list(parts.values())))

    if ctx.transform is None:
        numeric, categorical = feature_columns(frame, cfg, path, (label_column, id_column))
        check_values(frame, used, numeric + categorical, cfg, path)
        state = fit_transform(frame.iloc[parts["train"]], numeric, categorical, cfg, ctx.seed)
    else:
        state = saved_transform(ctx.transform, cfg, frame, path)
        check_values(frame, used, transform_columns(state), cfg, path)
    x = np.zeros((len(frame), output_width(state)), np.float32)
    x[used] = apply_transform(state, frame.iloc[used])

    pool = ArraySplit(ids=ids, labels=labels, classes=classes, x=x)
    info = {
        "source": "tabular",
        "path": str(path),
        "label_column": label_column,
        "id_column": id_column,
        "rows": rows_in_file,
        # Rows without a label cannot be scored, so they are left out.
        "rows_dropped": int(rows_in_file - len(frame)),
        "feature_columns": transform_columns(state),
        "features": state["features"],
        "categories": {col: len(cats) for col, cats in state["categories"].items()},
        "missing": cfg.missing,
        "imputed_values": _missing_counts(frame.iloc[used], transform_columns(state)),
        "scaler": state["scaler"]["kind"],
        "pca": _pca_info(state["pca"]),
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
        transform=state,
    )


def table_path(value: Any) -> Path:
    if value is None:
        raise AdxUserError(
            "dataset.path is not set; point it at a .csv or .parquet file (dataset.path=rows.csv)"
        )
    path = Path(str(value)).expanduser()
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise AdxUserError(f"dataset.path={value} {what}; point it at a .csv or .parquet file")
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
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AdxUserError(f"dataset.path={path} cannot be read as a table: {first}") from error
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty:
        raise AdxUserError(f"dataset.path={path} holds no rows; point it at a table with data")
    return frame


def as_text(column: pd.Series) -> np.ndarray:
    """Each value as text, None where missing; 1.0 reads "1", so a label column
    that pandas turned into floats (because of a gap) still matches normal_class=1."""
    import pandas as pd

    def text(value: Any) -> str | None:
        if pd.isna(value):
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return np.array([text(v) for v in column], dtype=object)


def _named_column(frame: pd.DataFrame, name: Any, key: str, path: Path) -> str:
    if name is None:
        raise AdxUserError(f"{key} is not set; columns of {path}: {_shown(frame.columns)}")
    if str(name) not in frame.columns:
        raise AdxUserError(
            f"{key}={name} is not a column of {path}; columns: {_shown(frame.columns)}"
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
        items = list(listed) if isinstance(listed, (list, tuple, ListConfig)) else [listed]
        chosen = list(dict.fromkeys(str(c) for c in items))
        unknown = [c for c in chosen if c not in frame.columns]
        if unknown:
            raise AdxUserError(
                f"dataset.feature_columns names {', '.join(unknown)}, not in {path}; "
                f"columns: {_shown(frame.columns)}"
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
) -> dict[str, Any]:
    """Fit imputer, scaler, one-hot categories and PCA on the train rows; JSON-ready state."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    values = train[numeric].to_numpy(np.float64, na_value=np.nan)
    unfillable = [c for c, col in zip(numeric, values.T, strict=True) if np.isnan(col).all()]
    if unfillable:
        raise AdxUserError(
            f"column(s) {', '.join(unfillable)} have no value in the {len(train)} train rows, "
            "so no median can be fitted; leave them out via dataset.feature_columns"
        )
    medians = np.zeros(0)
    scaler: dict[str, Any] = {"kind": str(cfg.scaler)}
    if numeric:
        medians = SimpleImputer(strategy="median").fit(values).statistics_
        filled = np.where(np.isnan(values), medians, values)
        if cfg.scaler == "standard":
            fitted = StandardScaler().fit(filled)
            scaler.update(mean=fitted.mean_.tolist(), scale=fitted.scale_.tolist())
        elif cfg.scaler == "minmax":
            fitted = MinMaxScaler().fit(filled)
            scaler.update(min=fitted.data_min_.tolist(), max=fitted.data_max_.tolist())
    categories = {
        col: sorted({v for v in as_text(train[col]) if v is not None}, key=natural_order)
        for col in categorical
    }
    state: dict[str, Any] = {
        "kind": "tabular",
        "settings": {key: _plain(cfg.get(key)) for key in FIT_KEYS},
        "numeric_columns": list(numeric),
        "medians": medians.tolist(),
        "scaler": scaler,
        "categories": categories,
        "features": list(numeric) + [f"{c}={v}" for c, cats in categories.items() for v in cats],
        "pca": None,
    }
    if cfg.get("pca_components") is not None:
        state["pca"] = _fit_pca(_encode(state, train), cfg.pca_components, seed)
    return state


def _fit_pca(train_x: np.ndarray, wanted: Any, seed: int) -> dict[str, Any]:
    from sklearn.decomposition import PCA

    limit = min(train_x.shape)
    if isinstance(wanted, bool) or not isinstance(wanted, int) or not 1 <= wanted <= limit:
        raise AdxUserError(
            f"dataset.pca_components={wanted} must be a whole number from 1 to {limit} "
            f"({train_x.shape[1]} features, {train_x.shape[0]} train rows)"
        )
    pca = PCA(n_components=wanted, svd_solver="full", random_state=seed).fit(train_x)
    return {
        "mean": pca.mean_.tolist(),
        "components": pca.components_.tolist(),
        "explained_variance_ratio": pca.explained_variance_ratio_.tolist(),
    }


def apply_transform(state: dict[str, Any], rows: pd.DataFrame) -> np.ndarray:
    """Model inputs (float32) for `rows` from a fitted state."""
    x = _encode(state, rows)
    if state["pca"] is not None:
        pca = state["pca"]
        x = (x - np.asarray(pca["mean"])) @ np.asarray(pca["components"]).T
    return x.astype(np.float32)


def _encode(state: dict[str, Any], rows: pd.DataFrame) -> np.ndarray:
    """Imputed, scaled numbers and one-hot categories (unseen ones: all zeros), before PCA."""
    numeric = rows[state["numeric_columns"]].to_numpy(np.float64, na_value=np.nan)
    numeric = np.where(np.isnan(numeric), np.asarray(state["medians"]), numeric)
    scaler = state["scaler"]
    if scaler["kind"] == "standard":
        numeric = (numeric - np.asarray(scaler["mean"])) / np.asarray(scaler["scale"])
    elif scaler["kind"] == "minmax":
        low, high = np.asarray(scaler["min"]), np.asarray(scaler["max"])
        span = np.where(high > low, high - low, 1.0)  # a constant column maps to 0
        numeric = (numeric - low) / span
    onehot = []
    for col, cats in state["categories"].items():
        text = as_text(rows[col])
        onehot += [(text == category).astype(np.float64)[:, None] for category in cats]
    return np.hstack([numeric, *onehot]) if onehot else numeric


def saved_transform(
    state: dict[str, Any], cfg: DictConfig, frame: pd.DataFrame, path: Path
) -> dict[str, Any]:
    """The training run's state, after checking it fits this config and table."""
    from pandas.api.types import is_numeric_dtype

    if state.get("kind") != "tabular":
        raise AdxUserError(
            "the run's data_transform.json is not a tabular transform; "
            "evaluate a run that was trained with dataset=tabular"
        )
    for key in FIT_KEYS:
        now, then = _plain(cfg.get(key)), state["settings"][key]
        if now != then:
            raise AdxUserError(
                f"dataset.{key}={now} differs from the training run's {then}; evaluate "
                "reapplies that run's fitted transform, so drop the override"
            )
    absent = [c for c in transform_columns(state) if c not in frame.columns]
    if absent:
        raise AdxUserError(
            f"dataset.path={path} lacks column(s) {', '.join(absent)} that the training run "
            f"used; columns present: {_shown(frame.columns)}"
        )
    text = [c for c in state["numeric_columns"] if not is_numeric_dtype(frame[c])]
    if text:
        raise AdxUserError(
            f"column(s) {', '.join(text)} of {path} hold text, but were numbers in the "
            "training run; fix the values in the file"
        )
    return state


def transform_columns(state: dict[str, Any]) -> list[str]:
    return [*state["numeric_columns"], *state["categories"]]


def output_width(state: dict[str, Any]) -> int:
    return len(state["pca"]["components"]) if state["pca"] else len(state["features"])


def _pca_info(pca: dict[str, Any] | None) -> dict[str, Any] | None:
    if pca is None:
        return None
    explained = float(sum(pca["explained_variance_ratio"]))
    return {"components": len(pca["components"]), "explained_variance": round(explained, 6)}


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple, ListConfig)):
        return [str(v) for v in value]
    return value


def _shown(columns: Sequence[Any]) -> str:
    names = [str(c) for c in columns]
    return ", ".join(names[:40]) + (f", ... ({len(names)} in all)" if len(names) > 40 else "")
