"""The book's one style: seaborn theme, regime colours, ELR axes, regime shading and seed bands.

Every chapter's figure module (:mod:`.toy`, :mod:`.three_regimes`, :mod:`.conventional`,
:mod:`.fine_tuning`) draws with these; regime colours and names are defined here and in
:mod:`sphere_regimes.regimes` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes

from ..regimes import REGIME_NAMES  # noqa: F401 - re-exported beside REGIME_COLORS

REGIME_COLORS: dict[int, str] = {1: "#0077BB", 2: "#EE7733", 3: "#AA3377"}
"""Regime 1 (convergence) blue, 2 (chaotic equilibrium) orange, 3 (divergence) wine (Tol's vibrant)."""
TOY_RANGE_NAMES: dict[int, str] = {1: r"below $1/\Sigma\alpha$", 2: r"between $1/\Sigma\alpha$ and $1/\alpha_\min$",
                                   3: r"above $1/\alpha_\min$"}
"""The toy's ELR ranges cut by its thresholds (:func:`sphere_regimes.toy.theory_regime`), drawn in the
colours of the regimes the theory expects there."""

FIGSIZE: tuple[float, float] = (6.4, 4.0)
"""Default size of a one-panel figure, inches."""
LOG_FLOOR: float = 1e-12
"""Smallest value shown on log-scale loss axes (converged runs go far below it)."""
ANGLE_FLOOR: float = 1e-8
"""Smallest angle (degrees) shown on log-scale angle axes."""
THRESHOLD_STYLE = {"color": "0.15", "linewidth": 1.4}
REFERENCE_STYLE = {"color": "0.3", "linestyle": "--", "linewidth": 1.0}
"""Horizontal reference levels (initial point, chance)."""
THRESHOLD_LINESTYLES: tuple = ("-", (0, (6, 2, 1, 2)), (0, (1, 1)))
"""Line styles of successive ELR thresholds (solid, dash-dot, dense dots): distinct from the dashed
and dotted horizontal reference levels."""


def set_style() -> None:
    """Seaborn ``ticks`` style with a light grid, book-wide figure size, dpi and font sizes.

    Inside IPython it also registers a PNG formatter for figures, so that ``myst_nb.glue`` stores
    an image even when the kernel runs with the Agg backend (as the Makefile's builds do).
    """
    _set_theme()
    _register_png_formatter()


def _set_theme() -> None:
    sns.set_theme(context="notebook", style="ticks", font_scale=0.9, rc={
        "figure.figsize": FIGSIZE, "figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight",
        "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6, "axes.spines.top": False,
        "axes.spines.right": False, "legend.frameon": False, "lines.linewidth": 1.6,
        "figure.constrained_layout.use": True,
    })


def _register_png_formatter() -> None:
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        select_figure_formats(shell, {"png"}, dpi=plt.rcParams["savefig.dpi"])


def group_colors(n: int) -> list[tuple[float, float, float]]:
    """n colours for the scale-invariant groups, light (small alpha_i) to dark (large alpha_i)."""
    return sns.color_palette("crest", n)


def set_elr_axis(ax: Axes, which: str = "x", label: str = r"total effective learning rate $\eta$") -> None:
    """Log scale and the book's ELR label on the ``x`` or ``y`` axis."""
    if which == "x":
        ax.set_xscale("log")
        ax.set_xlabel(label)
    else:
        ax.set_yscale("log")
        ax.set_ylabel(label)


def shade_regimes(ax: Axes, boundaries: Sequence[float], regimes: Sequence[int] = (1, 2, 3), *,
                  alpha: float = 0.10, labels: bool = True) -> None:
    """Shade the x-ranges of the regimes separated by ``boundaries`` (increasing ELRs) in their colours.

    ``len(regimes) == len(boundaries) + 1``. The shading spans the current x-limits, which are kept.
    With ``labels`` the regime numbers are written at the top of each span.
    """
    if len(regimes) != len(boundaries) + 1:
        raise ValueError("need one regime more than boundaries")
    low, high = ax.get_xlim()
    edges = [low, *boundaries, high]
    for regime, left, right in zip(regimes, edges[:-1], edges[1:]):
        ax.axvspan(left, right, color=REGIME_COLORS[regime], alpha=alpha, linewidth=0, zorder=0)
        if labels and right > left:
            middle = np.sqrt(left * right) if ax.get_xscale() == "log" else (left + right) / 2
            ax.text(middle, 0.98, str(regime), transform=ax.get_xaxis_transform(), ha="center", va="top",
                    color=REGIME_COLORS[regime], fontweight="bold")
    ax.set_xlim(low, high)


def mark_thresholds(ax: Axes, thresholds: Mapping[str, float], *, which: str = "x",
                    styles: Sequence[str] = THRESHOLD_LINESTYLES, legend: bool = True) -> None:
    """Reference lines at named ELR thresholds (vertical for ``which="x"``), labelled in the legend."""
    line = ax.axvline if which == "x" else ax.axhline
    for (label, value), style in zip(thresholds.items(), list(styles) * len(thresholds)):
        line(value, linestyle=style, label=label if legend else None, **THRESHOLD_STYLE)



def elr_colors(elrs: Sequence[float]) -> dict[float, tuple[float, float, float]]:
    """One colour per ELR of a grid, ordered in log ELR (viridis: distinguishable for ten or more ELRs)."""
    return dict(zip(sorted(elrs), sns.color_palette("viridis", len(elrs))))


def draw_band(ax: Axes, band, color, label: str | None = None) -> None:
    """Mean line and min-max shading of a :func:`sphere_regimes.regimes.seed_band` table."""
    ax.plot(band.index, band["mean"], color=color, label=label)
    if len(band) and (band["high"] > band["low"]).any():
        ax.fill_between(band.index, band["low"], band["high"], color=color, alpha=0.2, linewidth=0)


