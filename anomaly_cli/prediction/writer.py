"""What a predict folder holds: predictions.csv, unreadable.csv and heatmaps/.

Every file is written atomically (runs.py), so a predict run that is stopped
leaves whole files or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly_cli import runs

if TYPE_CHECKING:
    import pandas as pd

    from anomaly_cli.scoring.scorer import Scores

NORMAL_LABEL, ANOMALY_LABEL = "normal", "anomaly"


def predictions_frame(
    id_name: str, ids: Sequence[str], scores: Scores, threshold: float
) -> pd.DataFrame:
    """One row per scored input: its path or id, score (score_mean, score_std with
    MC dropout) and label; a score above the threshold is an anomaly, as in scores.csv,
    and so is a score that is not a finite number."""
    import pandas as pd

    from anomaly_cli.evaluation.thresholds import predict

    # A score that is not a number cannot clear a threshold; such an input is not normal.
    flagged = predict(scores.score, threshold).astype(bool) | ~np.isfinite(scores.score)
    return pd.DataFrame(
        {
            id_name: list(ids),
            **scores.columns(),
            "label": np.where(flagged, ANOMALY_LABEL, NORMAL_LABEL),
        }
    )


def write_predictions(run_dir: Path, frame: pd.DataFrame) -> None:
    runs.write_csv(run_dir / runs.PREDICTIONS, frame)


def write_unreadable(run_dir: Path, id_name: str, bad: Iterable[tuple[str, str]]) -> int:
    """unreadable.csv (path or id, why) when anything could not be read; returns the count."""
    import pandas as pd

    rows = list(bad)
    if rows:
        frame = pd.DataFrame(rows, columns=[id_name, "error"])
        runs.write_csv(run_dir / runs.UNREADABLE, frame)
    return len(rows)


def heatmap_name(path: str) -> str:
    """heatmaps/<the input's path below the input folder>, as a PNG: `a/b.jpg` -> `a/b.jpg.png`
    (the suffix is kept, so b.jpg and b.png never share an overlay)."""
    return f"{runs.HEATMAP_DIR}/{path if path.lower().endswith('.png') else path + '.png'}"


def write_heatmaps(
    run_dir: Path,
    names: Sequence[str],
    images: np.ndarray,
    maps: np.ndarray,
    value_range: tuple[float, float],
    vmax: float | None,
) -> list[str]:
    """One overlay per image (reporting.overlay, the one way adx draws a map); returns
    their paths relative to the run folder."""
    from anomaly_cli.reporting.overlay import heatmap_overlay, save_png

    written = []
    for name, image, amap in zip(names, images, maps, strict=True):
        shown_range = _display_range(image, value_range)
        rgb = heatmap_overlay(image, amap, value_range=shown_range, vmax=vmax)
        relative = heatmap_name(name)
        save_png(rgb, run_dir / relative)
        written.append(relative)
    return written


def _display_range(image: np.ndarray, value_range: tuple[float, float]) -> tuple[float, float]:
    """The preprocessing's value range, or the image's own when contrast normalisation
    (gcn) moved its values out of it."""
    low, high = value_range
    if float(image.min()) >= low and float(image.max()) <= high:
        return value_range
    return float(image.min()), float(max(image.max(), image.min() + 1e-6))


def run_record(**details: Any) -> dict[str, Any]:
    """run.json of a predict run: what was scored with what, and how it came out."""
    return {"verb": "predict", **details}
