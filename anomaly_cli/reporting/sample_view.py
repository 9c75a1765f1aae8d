"""The few test images the image plots show, and what the model makes of them, computed once.

The image plots never touch the model or the whole test set: the assessment
picks a handful of samples by score (`report.samples` per group), reads only
those from the test split, and computes their reconstructions, anomaly maps,
ground-truth masks and saliency here, each only when a listed plot needs it.

The groups, as test-split positions:
- extremes: per class, the `k` lowest-scored (lowest first) and the `k`
  highest-scored (highest first), never one sample in both; seed 000's
  display meant the same, but its `np.argsort(scores)[-1:n//2]` is an empty
  slice, so its "highest" half never showed;
- firsts: the first `k` normal and first `k` anomalous test samples in id
  order, an unbiased look at reconstructions (seed 000 shows the first n).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anomaly_cli.data.base import ANOMALY, NORMAL, Split
from anomaly_cli.scoring.reconstruction import DEFAULT_TOP_K

# Images per group (report.samples) when a run's config does not say.
DEFAULT_SAMPLES = 4
CLASSES = ((NORMAL, "normal"), (ANOMALY, "anomalous"))
IMAGE_NEEDS = frozenset({"images", "reconstructions", "maps", "saliency"})


def extreme_positions(scores: np.ndarray, labels: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per class, the k lowest- and k highest-scored positions (see the module doc).

    Keys, in display order: "lowest-scored normal", "highest-scored normal",
    "lowest-scored anomalous", "highest-scored anomalous". Ties keep id order.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    groups: dict[str, np.ndarray] = {}
    for label, name in CLASSES:
        members = np.flatnonzero(labels == label)
        ranked = members[np.argsort(scores[members], kind="stable")]
        groups[f"lowest-scored {name}"] = ranked[:k]
        # From position k on at least, so a class of fewer than 2k is shown once.
        groups[f"highest-scored {name}"] = ranked[max(k, len(ranked) - k) :][::-1]
    return groups


def first_positions(labels: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The first k normal and the first k anomalous positions, in id order."""
    labels = np.asarray(labels)
    return {name: np.flatnonzero(labels == label)[:k] for label, name in CLASSES}


@dataclass(frozen=True)
class SampleView:
    # Test-split positions (into Assessment.ids, labels, scores), one per row below.
    positions: np.ndarray
    # The samples as the model sees them, (n, H, W, C).
    images: np.ndarray
    extremes: dict[str, np.ndarray] = field(default_factory=dict)
    firsts: dict[str, np.ndarray] = field(default_factory=dict)
    # (n, H, W, C); None when the model does not reconstruct its input.
    reconstructions: np.ndarray | None = None
    # The model's per-pixel anomaly maps, (n, H, W); with the source's masks where it has them.
    maps: np.ndarray | None = None
    masks: np.ndarray | None = None
    # |d score / d x|, the largest over channels, (n, H, W); and the error it differentiates.
    saliency: np.ndarray | None = None
    saliency_of: str = "score"

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The rows of this view that hold the given test positions."""
        row_of = {int(p): row for row, p in enumerate(self.positions)}
        return np.array([row_of[int(p)] for p in positions], dtype=int)

    @property
    def value_range(self) -> tuple[float, float]:
        """One display range for every image and reconstruction, so they compare by eye."""
        low, high = float(np.min(self.images)), float(np.max(self.images))
        return (low, high) if high > low else (low, low + 1.0)

    @property
    def featured(self) -> dict[str, np.ndarray]:
        """What the difference maps, heatmaps and saliency show: the highest-scored
        samples of each class (the surest detections and the likeliest false alarms)."""
        return {
            name: self.extremes.get(f"highest-scored {name}", np.empty(0, int))
            for _, name in reversed(CLASSES)
        }


def build_view(
    model: Any,
    split: Split,
    sample_shape: tuple[int, ...],
    scores: np.ndarray,
    needs: Collection[str],
    per_group: int,
    *,
    model_name: str,
    top_k: float = DEFAULT_TOP_K,
) -> tuple[SampleView | None, dict[str, str]]:
    """The view the image plots in `needs` draw from, and why any part of it is absent."""
    wanted = IMAGE_NEEDS & set(needs)
    if not wanted:
        return None, {}
    if len(sample_shape) != 3:
        shape = "x".join(str(d) for d in sample_shape)
        reason = f"the samples are {shape} values, not images (height x width x channels)"
        return None, dict.fromkeys(IMAGE_NEEDS, reason)
    extremes = extreme_positions(scores, split.labels, per_group)
    firsts = first_positions(split.labels, per_group)
    chosen = {int(p) for group in (*extremes.values(), *firsts.values()) for p in group}
    # In split order: a streaming source (tfds) reads its records forward only.
    positions = np.array(sorted(chosen), dtype=int)
    if len(positions) == 0:
        return None, dict.fromkeys(IMAGE_NEEDS, "the test split holds no samples")
    subset = split.select(positions)
    images = np.stack(list(subset.dataset().as_numpy_iterator()))
    missing: dict[str, str] = {}
    parts: dict[str, Any] = {}
    # One forward pass on a handful of images: the extremes show them whenever they exist.
    if callable(getattr(model, "reconstruct", None)):
        parts["reconstructions"] = np.asarray(model.reconstruct(images))
    else:
        missing["reconstructions"] = f"model={model_name} does not reconstruct its input"
    if "maps" in wanted:
        if getattr(model, "produces_maps", False):
            parts["maps"] = np.asarray(model.anomaly_map(images))
            masks = subset.mask_dataset()
            if masks is not None:
                parts["masks"] = np.stack(list(masks.as_numpy_iterator()))
        else:
            missing["maps"] = f"model={model_name} gives no per-pixel anomaly maps"
    if "saliency" in wanted:
        gradient = getattr(model, "score_gradient", lambda x, top_k: None)(images, top_k)
        if gradient is None:
            missing["saliency"] = f"model={model_name}'s score has no input gradient here"
        else:
            parts["saliency"] = np.asarray(gradient).max(axis=-1)
            parts["saliency_of"] = _saliency_of(model)
    view = SampleView(positions, images, extremes, firsts, **parts)
    return view, missing


def _saliency_of(model: Any) -> str:
    """What the gradient is of: the score, except that an autoencoder scored by a
    latent distance differentiates its reconstruction error (map_error) instead."""
    from anomaly_cli.models.base import LATENT_DISTANCE, ReconstructionModel

    score = str(getattr(model, "score_name", "score"))
    if score == LATENT_DISTANCE and isinstance(model, ReconstructionModel):
        return str(model.map_error)
    return score
