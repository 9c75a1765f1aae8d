"""The fitted transform of `dataset=tabular`: impute, scale, one-hot, optional PCA.

Fitted on the train rows only (seed 003) and saved as data_transform.json in
the layout below, which older runs wrote too; `adx evaluate` loads it with
`TabularTransform.from_dict` and applies it to new rows instead of refitting.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from anomaly_cli.data.inputs import as_text
from anomaly_cli.data.splits import natural_order
from anomaly_cli.data.transforms import MedianImputer, Pca, Scaler, check_saved

if TYPE_CHECKING:
    import pandas as pd

# Config keys that decide the fitted transform, saved with it as `settings`.
FIT_KEYS = ("feature_columns", "categorical", "scaler", "pca_components")


@dataclass(frozen=True)
class TabularTransform:
    kind: ClassVar[str] = "tabular"
    # The FIT_KEYS values it was fitted with (lists as lists of text).
    settings: dict[str, Any]
    numeric_columns: list[str]
    imputer: MedianImputer
    scaler: Scaler
    # Text column -> its categories in the train rows, one output column each.
    categories: dict[str, list[str]]
    pca: Pca | None = None

    @classmethod
    def fit(
        cls,
        train: pd.DataFrame,
        numeric: list[str],
        categorical: list[str],
        settings: dict[str, Any],
    ) -> TabularTransform:
        """Imputer, scaler and one-hot categories from the train rows (no PCA yet)."""
        values = train[numeric].to_numpy(np.float64, na_value=np.nan)
        imputer = MedianImputer.fit(values)
        scaler = Scaler.fit(imputer.apply(values), str(settings["scaler"]))
        categories = {
            col: sorted({v for v in as_text(train[col]) if v is not None}, key=natural_order)
            for col in categorical
        }
        return cls(dict(settings), list(numeric), imputer, scaler, categories)

    def with_pca(self, train: pd.DataFrame, components: int, seed: int) -> TabularTransform:
        """This transform followed by a PCA fitted on the encoded train rows."""
        pca = Pca.fit(self.encode(train), components, seed)
        return replace(self, pca=pca)

    @property
    def columns(self) -> list[str]:
        """The table columns it reads."""
        return [*self.numeric_columns, *self.categories]

    @property
    def features(self) -> list[str]:
        """Names of the encoded features, before PCA: numbers, then 'column=category'."""
        onehot = [f"{c}={v}" for c, cats in self.categories.items() for v in cats]
        return [*self.numeric_columns, *onehot]

    @property
    def width(self) -> int:
        """Features per row that the model sees."""
        return self.pca.width if self.pca is not None else len(self.features)

    def encode(self, rows: pd.DataFrame) -> np.ndarray:
        """Imputed, scaled numbers and one-hot categories (unseen ones: all zeros), before PCA."""
        numeric = rows[self.numeric_columns].to_numpy(np.float64, na_value=np.nan)
        numeric = self.scaler.apply(self.imputer.apply(numeric))
        onehot = []
        for col, cats in self.categories.items():
            text = as_text(rows[col])
            onehot += [(text == category).astype(np.float64)[:, None] for category in cats]
        return np.hstack([numeric, *onehot]) if onehot else numeric

    def apply(self, rows: pd.DataFrame) -> np.ndarray:
        """Model inputs (float32) for `rows`."""
        x = self.encode(rows)
        if self.pca is not None:
            x = self.pca.apply(x)
        return x.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "settings": self.settings,
            "numeric_columns": self.numeric_columns,
            "medians": self.imputer.to_dict()["medians"],
            "scaler": self.scaler.to_dict(),
            "categories": self.categories,
            "features": self.features,
            "pca": None if self.pca is None else self.pca.to_dict(),
        }

    @classmethod
    def from_dict(cls, state: Any) -> TabularTransform:
        fields = {"settings", "numeric_columns", "medians", "scaler", "categories", "pca"}
        state = check_saved(state, cls.kind, fields)
        return cls(
            settings=dict(state["settings"]),
            numeric_columns=list(state["numeric_columns"]),
            imputer=MedianImputer.from_dict({"medians": state["medians"]}),
            scaler=Scaler.from_dict(state["scaler"]),
            categories={str(c): list(cats) for c, cats in state["categories"].items()},
            pca=None if state["pca"] is None else Pca.from_dict(state["pca"]),
        )
