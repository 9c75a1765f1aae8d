"""Pixel-level evaluation against ground-truth masks (MVTec-style)."""

from __future__ import annotations

from typing import Any

import numpy as np


def pixel_metrics(maps: np.ndarray, masks: np.ndarray) -> dict[str, Any]:
    """AUROC and average precision over every pixel of every image, anomaly = 1.

    `maps` are per-pixel scores (N, H, W), higher = more anomalous; `masks`
    the ground truth (N, H, W) in {0, 1}. Undefined (one class only) is None.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    if maps.shape != masks.shape:
        raise ValueError(f"anomaly maps {maps.shape} and masks {masks.shape} differ in shape")
    truth = masks.reshape(-1) > 0.5
    scores = maps.reshape(-1)
    both = 0 < truth.sum() < truth.size
    return {
        "pixel_auroc": float(roc_auc_score(truth, scores)) if both else None,
        "pixel_aupr": float(average_precision_score(truth, scores)) if both else None,
        "images": len(masks),
        "anomalous_pixels": int(truth.sum()),
    }
