"""Plots of image runs, drawn from the assessment's `SampleView` (a handful of test images).

Every image and reconstruction of one figure shares one display range, so a
blurry reconstruction looks blurry; every difference and heatmap of one
figure shares one colour scale, so a small error looks small. Each sample's
caption gives its class, score and predicted label, green where the
prediction is right and red where it is wrong. Heatmaps are drawn by
`reporting.overlay.heatmap_overlay`, the one way adx draws a map on an image.

A figure is one mosaic (a single axes showing one RGB canvas, rows labelled
on the left), not a grid of subplots: a grid of 32 small axes took two
seconds to lay out and save, the mosaic a fraction of that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from anomaly_cli import runs
from anomaly_cli.evaluation.thresholds import predict
from anomaly_cli.reporting.overlay import heatmap_overlay, mask_outline, to_rgb
from anomaly_cli.reporting.plots.registry import plot, pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from anomaly_cli.reporting.assessment import Assessment
    from anomaly_cli.reporting.sample_view import SampleView

NAMES = ("normal", "anomaly")
# Inches per image cell, the room a row label takes, and a two-line caption's height.
CELL = 1.4
LABEL_ROOM = 1.6
CAPTION = 0.32


@dataclass(frozen=True)
class Cell:
    """One image of a mosaic, as float RGB in [0, 1], with the caption above it."""

    picture: np.ndarray
    caption: str = ""
    colour: str = "black"


@plot(f"{runs.PLOTS_DIR}/reconstructions.png", needs=("images", "reconstructions"))
def reconstructions(assessment: Assessment) -> Figure:
    """Originals above their reconstructions: the first normal and anomalous test samples."""
    view = _view(assessment)
    columns = np.concatenate(list(view.firsts.values()))
    rows = view.rows(columns)
    return _mosaic(
        [
            (
                "original",
                [_captioned(assessment, view, p, r) for p, r in zip(columns, rows, strict=True)],
            ),
            ("reconstruction", [Cell(_picture(view.reconstructions[r], view)) for r in rows]),
        ],
        f"{assessment.title}: originals above reconstructions",
    )


@plot(f"{runs.PLOTS_DIR}/extremes.png", needs=("images",))
def extremes(assessment: Assessment) -> Figure:
    """The lowest- and highest-scored normal and anomalous test samples, each with its
    score and predicted label; their reconstructions beneath where the model makes them."""
    view = _view(assessment)
    mosaic: list[tuple[str, list[Cell]]] = []
    for name, positions in view.extremes.items():
        rows = view.rows(positions)
        mosaic.append(
            (
                name,
                [_captioned(assessment, view, p, r) for p, r in zip(positions, rows, strict=True)],
            )
        )
        if view.reconstructions is not None:
            mosaic.append(
                ("reconstructed", [Cell(_picture(view.reconstructions[r], view)) for r in rows])
            )
    return _mosaic(mosaic, f"{assessment.title}: lowest and highest scores per class")


@plot(f"{runs.PLOTS_DIR}/difference_maps.png", needs=("images", "reconstructions"))
def difference_maps(assessment: Assessment) -> Figure:
    """|x - x_hat| (mean over channels) of the highest-scored samples of each class."""
    view = _view(assessment)
    columns, rows = _featured(view)
    differences = np.abs(view.images[rows] - view.reconstructions[rows]).mean(axis=-1)
    top = float(differences.max(initial=0.0)) or 1.0
    return _mosaic(
        [
            (
                "original",
                [_captioned(assessment, view, p, r) for p, r in zip(columns, rows, strict=True)],
            ),
            ("reconstruction", [Cell(_picture(view.reconstructions[r], view)) for r in rows]),
            ("|difference|", [Cell(_coloured(d / top, "hot")) for d in differences]),
        ],
        f"{assessment.title}: difference maps (one scale, max {top:.3g})",
    )


@plot(f"{runs.PLOTS_DIR}/heatmaps.png", needs=("images", "maps"))
def heatmaps(assessment: Assessment) -> Figure:
    """The model's error heatmaps over the highest-scored samples of each class, with the
    ground-truth mask outlined in green where the data has masks."""
    view = _view(assessment)
    columns, rows = _featured(view)
    maps = np.asarray(view.maps)[rows]
    top = float(maps.max(initial=0.0)) or None
    originals, overlays = [], []
    for position, row, amap in zip(columns, rows, maps, strict=True):
        mask = None if view.masks is None else view.masks[row]
        original = _captioned(assessment, view, position, row)
        if mask is not None:
            original.picture[mask_outline(mask)] = (0.0, 1.0, 0.0)
        originals.append(original)
        image = _displayable(view.images[row])
        overlay = heatmap_overlay(image, amap, mask, value_range=view.value_range, vmax=top)
        overlays.append(Cell(overlay / 255.0))
    masks = "; green: ground-truth mask" if view.masks is not None else ""
    return _mosaic(
        [("original", originals), ("error heatmap", overlays)],
        f"{assessment.title}: error heatmaps (one scale){masks}",
    )


@plot(f"{runs.PLOTS_DIR}/saliency.png", needs=("images", "saliency"))
def saliency(assessment: Assessment) -> Figure:
    """|d score / d x| of the highest-scored samples of each class (seed 002, Eq. 35):
    the pixels whose change would move the score most; each map scaled to its own max."""
    view = _view(assessment)
    columns, rows = _featured(view)
    maps = np.asarray(view.saliency)[rows]
    return _mosaic(
        [
            (
                "original",
                [_captioned(assessment, view, p, r) for p, r in zip(columns, rows, strict=True)],
            ),
            ("saliency", [Cell(_coloured(m / (m.max() or 1.0), "inferno")) for m in maps]),
        ],
        f"{assessment.title}: |d {view.saliency_of} / d input|",
    )


def _view(assessment: Assessment) -> SampleView:
    view = assessment.samples
    assert view is not None  # draw() skips a plot whose needs are absent
    return view


def _featured(view: SampleView) -> tuple[np.ndarray, np.ndarray]:
    columns = np.concatenate(list(view.featured.values()))
    return columns, view.rows(columns)


def _mosaic(rows: list[tuple[str, list[Cell]]], title: str) -> Figure:
    """One canvas of labelled rows of equally sized cells; a row without cells says so.

    The row labels sit on the canvas itself, in a white margin on the left, so
    no layout step can push them off the figure.
    """
    shapes = [cell.picture.shape[:2] for _, cells in rows for cell in cells]
    height, width = shapes[0] if shapes else (8, 8)
    columns = max([len(cells) for _, cells in rows] + [1])
    gap = max(1, width // 8)
    pixel = CELL / (width + gap)  # inches per canvas pixel
    margin = math.ceil(LABEL_ROOM / pixel)
    captioned = [any(cell.caption for cell in cells) for _, cells in rows]
    band = math.ceil(CAPTION / pixel)
    tops = np.cumsum([0] + [(band if c else gap) + height for c in captioned])
    canvas = np.ones((int(tops[-1]), margin + columns * (width + gap), 3))
    fig, ax = pyplot().subplots(figsize=(pixel * canvas.shape[1], 0.4 + pixel * canvas.shape[0]))
    for (label, cells), top, has_caption in zip(rows, tops[:-1], captioned, strict=True):
        y = top + (band if has_caption else gap)
        ax.text(margin - gap, y + height / 2, label, ha="right", va="center", fontsize=8)
        for col, cell in enumerate(cells):
            x = margin + col * (width + gap)
            canvas[y : y + height, x : x + width] = cell.picture
            if cell.caption:
                ax.text(
                    x + width / 2,
                    y - 1,
                    cell.caption,
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color=cell.colour,
                )
        if not cells:
            ax.text(margin, y + height / 2, "none in test", va="center", fontsize=8)
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    return fig


def _displayable(image: np.ndarray) -> np.ndarray:
    """Grey for one channel, RGB for three; any other count shown as the channel mean."""
    return image if image.shape[-1] in (1, 3) else image.mean(axis=-1)


def _picture(image: np.ndarray, view: SampleView) -> np.ndarray:
    return to_rgb(_displayable(image), view.value_range)


def _coloured(values: np.ndarray, colormap: str) -> np.ndarray:
    from matplotlib import colormaps

    return colormaps[colormap](np.clip(values, 0.0, 1.0))[..., :3]


def _captioned(assessment: Assessment, view: SampleView, position: int, row: int) -> Cell:
    """The sample's image under 'normal, 0.0213 / predicted anomaly', green when the
    prediction matches the label, red when not."""
    score = float(assessment.scores.score[position])
    predicted = int(predict(np.array([score]), assessment.threshold.value)[0])
    label = int(assessment.labels[position])
    return Cell(
        _picture(view.images[row], view),
        f"{NAMES[label]}, {score:.4g}\npredicted {NAMES[predicted]}",
        "green" if predicted == label else "red",
    )
