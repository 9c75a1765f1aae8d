"""The plot registry: name -> file under the run folder, and what the plot needs drawn from.

A plot module registers each function with `@plot("plots/<file>.png", needs=(...))`.
`needs` names the parts of an `Assessment` beyond scores and labels that the
plot draws from (`NEEDS` below: history, images, reconstructions, maps,
saliency, mc_dropout, calibration). The assessment computes only what the
listed plots need, and a plot whose needs a run cannot meet is skipped.
matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from anomaly_cli import runs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Draw = TypeVar("Draw", bound=Callable[..., Any])

# What a plot may need beyond scores and labels; Assessment.lacks says which are absent.
NEEDS = ("history", "images", "reconstructions", "maps", "saliency", "mc_dropout", "calibration")
# Plot name -> the file it is saved to, relative to the run folder.
PLOT_FILES: dict[str, str] = {}
# Plot name -> the parts of the assessment it draws from (none: scores and labels only).
PLOT_NEEDS: dict[str, tuple[str, ...]] = {}


def plot(file_name: str, needs: Iterable[str] = ()) -> Callable[[Draw], Draw]:
    """Register the decorated function as the plot of its own name, saved to `file_name`."""

    needs = tuple(needs)
    unknown = sorted(set(needs) - set(NEEDS))
    if unknown:  # a typo here would otherwise surface only when the plot is drawn
        raise ValueError(f"plot needs {unknown} are unknown; choose from {NEEDS}")

    def register(draw_function: Draw) -> Draw:
        PLOT_FILES[draw_function.__name__] = file_name
        PLOT_NEEDS[draw_function.__name__] = needs
        return draw_function

    return register


def needs_of(names: Iterable[str]) -> set[str]:
    """Everything the plots `names` draw from together."""
    return {need for name in names for need in PLOT_NEEDS.get(name, ())}


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on CI or clusters
    import matplotlib.pyplot as plt

    return plt


def save(fig: Figure, path: Path) -> None:
    try:
        fig.tight_layout()
        with runs.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        pyplot().close(fig)
