"""Pixel-level evaluation against ground-truth masks (MVTec-style), overall and per defect.

Why per defect: one mean over all test pixels hides the defect kind a model
cannot see (a smooth patch that reconstructs well, a thin scratch lost at low
resolution). Each anomaly class is measured against the same normal images,
at pixel level and at image level, so a class ranked below chance shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def pixel_metrics(
    maps: np.ndarray,
    masks: np.ndarray,
    classes: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    scores: np.ndarray | None = None,
) -> dict[str, Any]:
    """AUROC and average precision over every pixel of every image, anomaly = 1.

    `maps` are per-pixel scores (N, H, W), higher = more anomalous; `masks`
    the ground truth (N, H, W) in {0, 1}. Undefined (one class only) is None.
    With each image's source class and label (0 normal, 1 anomaly), "per_class"
    adds, for every anomaly class, the same pixel metrics over that class's
    images and all normal images, and with the image `scores` also the image
    AUROC of normal against that class.
    """
    if maps.shape != masks.shape:
        raise ValueError(f"anomaly maps {maps.shape} and masks {masks.shape} differ in shape")
    result: dict[str, Any] = {**_pixel_scores(maps, masks), "images": len(masks)}
    result["anomalous_pixels"] = int((masks > 0.5).sum())
    if classes is not None and labels is not None:
        result["per_class"] = per_class_metrics(maps, masks, classes, labels, scores)
    return result


def per_class_metrics(
    maps: np.ndarray,
    masks: np.ndarray,
    classes: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """Anomaly class -> pixel AUROC/AUPR (and image AUROC) over its images + the normal ones."""
    classes = np.asarray(classes).astype(str)
    labels = np.asarray(labels)
    if not len(classes) == len(labels) == len(masks):
        raise ValueError(
            f"{len(classes)} classes, {len(labels)} labels and {len(masks)} masks differ in number"
        )
    normal = labels == 0
    breakdown: dict[str, dict[str, Any]] = {}
    for name in sorted(set(classes[labels == 1])):
        of_class = (classes == name) & (labels == 1)
        chosen = normal | of_class
        entry: dict[str, Any] = {
            **_pixel_scores(maps[chosen], masks[chosen]),
            "images": int(of_class.sum()),
            "normal_images": int(normal.sum()),
        }
        if scores is not None:
            entry["image_auroc"] = image_auroc(np.asarray(scores)[chosen], of_class[chosen])
        breakdown[name] = entry
    return breakdown


def image_auroc(scores: np.ndarray, is_anomaly: np.ndarray) -> float | None:
    """Image-level AUROC, anomaly = positive; None when only one kind of image is there."""
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(is_anomaly, dtype=bool)
    if truth.all() or not truth.any():
        return None
    return float(roc_auc_score(truth, scores))


def _pixel_scores(maps: np.ndarray, masks: np.ndarray) -> dict[str, float | None]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    truth = masks.reshape(-1) > 0.5
    values = maps.reshape(-1)
    both = 0 < truth.sum() < truth.size
    return {
        "pixel_auroc": float(roc_auc_score(truth, values)) if both else None,
        "pixel_aupr": float(average_precision_score(truth, values)) if both else None,
    }
