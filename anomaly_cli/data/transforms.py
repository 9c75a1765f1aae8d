"""Transforms fitted on the train split and saved with the run (data_transform.json).

Every transform has the same three seams: a `fit` classmethod that learns it
from training data, `apply` that maps new data with what was learned, and
`to_dict` / `from_dict` for the JSON a run folder keeps, so `adx evaluate`
applies the training run's transform instead of refitting one. The JSON
layout is the one older runs wrote, so their files still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np


class SavedTransformError(ValueError):
    """A saved transform of another kind, or one that lacks fields; the source says what to do."""


class FittedTransform(Protocol):
    """What sources and the run folder need from a fitted transform."""

    def apply(self, values: Any) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]: ...


def check_saved(state: Any, kind: str | None, fields: set[str]) -> Mapping[str, Any]:
    """`state` if it is a saved transform of `kind` (None: any) with `fields`; else an error."""
    if not isinstance(state, Mapping) or (kind is not None and state.get("kind") != kind):
        found = state.get("kind") if isinstance(state, Mapping) else type(state).__name__
        raise SavedTransformError(f"expected a {kind} transform, found {found}")
    absent = fields - set(state)
    if absent:
        raise SavedTransformError(f"the {kind} transform lacks {', '.join(sorted(absent))}")
    return state


@dataclass(frozen=True)
class ZScore:
    """Per-column zero mean and unit variance (a time series' value columns)."""

    kind: ClassVar[str] = "zscore"
    columns: list[str]
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, values: np.ndarray, columns: list[str]) -> ZScore:
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant column stays finite (all zeros)
        return cls(list(columns), [float(v) for v in mean], [float(v) for v in std])

    def apply(self, values: np.ndarray) -> np.ndarray:
        """float32 z-scores of `values` (..., columns)."""
        mean = np.asarray(self.mean, dtype=np.float64)
        std = np.asarray(self.std, dtype=np.float64)
        return ((values - mean) / std).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": self.columns, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, state: Any) -> ZScore:
        state = check_saved(state, cls.kind, {"columns", "mean", "std"})
        return cls(list(state["columns"]), list(state["mean"]), list(state["std"]))

    def by_column(self) -> dict[str, dict[str, float]]:
        """{"mean": {column: value}, "std": {...}}, for data.json."""
        return {
            "mean": dict(zip(self.columns, self.mean, strict=True)),
            "std": dict(zip(self.columns, self.std, strict=True)),
        }


@dataclass(frozen=True)
class MedianImputer:
    """Fills each column's gaps (NaN) with its train median."""

    medians: list[float]

    @classmethod
    def fit(cls, values: np.ndarray) -> MedianImputer:
        from sklearn.impute import SimpleImputer

        if values.shape[1] == 0:
            return cls([])
        return cls(SimpleImputer(strategy="median").fit(values).statistics_.tolist())

    def apply(self, values: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(values), np.asarray(self.medians), values)

    def to_dict(self) -> dict[str, Any]:
        return {"medians": self.medians}

    @classmethod
    def from_dict(cls, state: Any) -> MedianImputer:
        return cls(list(check_saved(state, None, {"medians"})["medians"]))


@dataclass(frozen=True)
class Scaler:
    """standard (zero mean, unit variance), minmax (0..1) or none, per column."""

    KINDS: ClassVar[tuple[str, ...]] = ("standard", "minmax", "none")
    # Fitted statistics per kind, as saved.
    FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "standard": ("mean", "scale"),
        "minmax": ("min", "max"),
        "none": (),
    }
    kind: str
    params: dict[str, list[float]]

    @classmethod
    def fit(cls, values: np.ndarray, kind: str) -> Scaler:
        from sklearn.preprocessing import MinMaxScaler, StandardScaler

        if kind == "standard" and values.shape[1]:
            fitted = StandardScaler().fit(values)
            return cls(kind, {"mean": fitted.mean_.tolist(), "scale": fitted.scale_.tolist()})
        if kind == "minmax" and values.shape[1]:
            fitted = MinMaxScaler().fit(values)
            return cls(kind, {"min": fitted.data_min_.tolist(), "max": fitted.data_max_.tolist()})
        return cls(kind, {})

    def apply(self, values: np.ndarray) -> np.ndarray:
        if self.kind == "standard" and self.params:
            return (values - np.asarray(self.params["mean"])) / np.asarray(self.params["scale"])
        if self.kind == "minmax" and self.params:
            low, high = np.asarray(self.params["min"]), np.asarray(self.params["max"])
            span = np.where(high > low, high - low, 1.0)  # a constant column maps to 0
            return (values - low) / span
        return values

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params}

    @classmethod
    def from_dict(cls, state: Any) -> Scaler:
        state = check_saved(state, None, {"kind"})
        kind = str(state["kind"])
        if kind not in cls.KINDS:
            raise SavedTransformError(f"unknown scaler {kind}")
        # A scaler fitted on no numeric column saved no statistics.
        fields = [f for f in cls.FIELDS[kind] if f in state]
        return cls(kind, {f: list(state[f]) for f in fields})


@dataclass(frozen=True)
class Pca:
    """Projection onto the principal components of the train rows."""

    mean: list[float]
    components: list[list[float]]
    explained_variance_ratio: list[float]

    @classmethod
    def fit(cls, values: np.ndarray, components: int, seed: int) -> Pca:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=components, svd_solver="full", random_state=seed).fit(values)
        return cls(
            pca.mean_.tolist(),
            pca.components_.tolist(),
            pca.explained_variance_ratio_.tolist(),
        )

    def apply(self, values: np.ndarray) -> np.ndarray:
        return (values - np.asarray(self.mean)) @ np.asarray(self.components).T

    @property
    def width(self) -> int:
        return len(self.components)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "components": self.components,
            "explained_variance_ratio": self.explained_variance_ratio,
        }

    @classmethod
    def from_dict(cls, state: Any) -> Pca:
        state = check_saved(state, None, {"mean", "components", "explained_variance_ratio"})
        return cls(
            list(state["mean"]),
            [list(row) for row in state["components"]],
            list(state["explained_variance_ratio"]),
        )

    def describe(self) -> dict[str, Any]:
        """Component count and the share of variance they keep, for data.json."""
        explained = float(sum(self.explained_variance_ratio))
        return {"components": self.width, "explained_variance": round(explained, 6)}
