"""The book's one style: figure sizes for the book's column, fonts, regime colours, the ELR palette,
ELR axes, regime shading and seed bands; and the PNG every figure is glued as.

Every chapter's figure module (:mod:`.toy`, :mod:`.three_regimes`, :mod:`.conventional`,
:mod:`.fine_tuning`) draws with these; regime colours and names are defined here and in
:mod:`sphere_regimes.regimes` only.

Legibility: a figure of width ``w`` inches shown in a column of ``c`` pixels renders a font of ``s`` points
at ``s / 72 * c / w`` pixels (the PNG's dpi cancels out). With the book's column of about 690 px in a 1280-px
window, :data:`COLUMN_WIDTH` and the smallest font :data:`SMALLEST_FONT_PT` give about 11 px; full-width
figures (:data:`FULL_WIDTH`, about 940 px) the same. Each PNG records its smallest font and its dpi
(:func:`figure_png`), so the book's browser test computes the rendered size of every figure.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from ..regimes import REGIME_NAMES  # noqa: F401 - re-exported beside REGIME_COLORS

REGIME_COLORS: dict[int, str] = {1: "#0072B2", 2: "#E69F00", 3: "#CC79A7"}
"""Regime 1 (convergence) blue, 2 (chaotic equilibrium) orange, 3 (divergence) reddish purple: the
Okabe-Ito colour-blind-safe palette, in every figure and shading of the book."""
ELR_CMAP = LinearSegmentedColormap.from_list("elr", sns.color_palette("mako_r", 256)[40:])
"""The one ordered palette of the book for ELRs (light: small, dark: large; its pale end left out so that
every colour shows on white). Every figure that colours lines by ELR, or by lr·wd (which sets SGD's
equilibrium ELR), uses it through :func:`ordered_colors`."""
THEORY_COLOR: str = "#D55E00"
"""Theory curves and external reference levels (Okabe-Ito vermillion, apart from the regimes' colours)."""
TOY_RANGE_NAMES: dict[int, str] = {1: r"below $1/\Sigma\alpha$", 2: r"between $1/\Sigma\alpha$ and $1/\alpha_\min$",
                                   3: r"above $1/\alpha_\min$"}
"""The toy's ELR ranges cut by its thresholds (:func:`sphere_regimes.toy.theory_regime`), drawn in the
colours of the regimes the theory expects there."""

COLUMN_WIDTH: float = 7.0
"""Width (inches) of a figure that fills the book's column (about 690 px in a 1280-px window)."""
FULL_WIDTH: float = 9.6
"""Width (inches) of a figure shown full-width (the column and the margin, about 940 px): the notebook
wraps its ``glue:figure`` in a ``{div} full-width`` (sphinx-design; a docutils container stays column-wide)."""
FIGSIZE: tuple[float, float] = (COLUMN_WIDTH, 3.6)
"""Default size of a one-row figure, inches."""
SMALLEST_FONT_PT: float = 8.0
"""Tick labels, legends and annotations; axis labels and titles are 9 pt."""
DPI: int = 150
"""Resolution of the glued PNGs (the full-size image a reader opens by clicking a figure)."""
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
    """Seaborn ``ticks`` style with a light grid, the book's figure size, dpi and font sizes.

    Inside IPython it also registers :func:`figure_png` as the PNG formatter of figures, so that
    ``myst_nb.glue`` stores an image even when the kernel runs with the Agg backend (as the Makefile's
    builds do), and every image records its smallest font.
    """
    _set_theme()
    _register_png_formatter()


def _set_theme() -> None:
    small = SMALLEST_FONT_PT
    sns.set_theme(context="paper", style="ticks", rc={
        "figure.figsize": FIGSIZE, "figure.dpi": 110, "savefig.dpi": DPI, "savefig.bbox": "tight",
        "font.size": small + 1, "axes.labelsize": small + 1, "axes.titlesize": small + 1,
        "xtick.labelsize": small, "ytick.labelsize": small, "legend.fontsize": small,
        "legend.title_fontsize": small, "figure.titlesize": small + 1,
        "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6, "axes.spines.top": False,
        "axes.spines.right": False, "legend.frameon": False, "lines.linewidth": 1.4,
        "figure.constrained_layout.use": True,
    })


def _register_png_formatter() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)


def smallest_font_pt(fig: Figure) -> float:
    """The smallest font size (points) of the visible, non-empty texts of ``fig`` once it is laid out."""
    fig.draw_without_rendering()
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes, default=SMALLEST_FONT_PT)


def figure_png(fig: Figure) -> bytes:
    """``fig`` as the book's PNG (:data:`DPI`, tight box) with its smallest font (``min_font_pt``) and its
    ``dpi`` in the PNG's text chunks."""
    metadata = {"min_font_pt": f"{smallest_font_pt(fig):g}", "dpi": str(DPI)}
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def legend_below(fig: Figure, handles: Sequence, labels: Sequence[str], ncols: int = 3) -> None:
    """The figure's legend under its panels, in ``ncols`` columns (never beside them: the width is the panels')."""
    fig.legend(handles, labels, loc="outside lower center", ncols=min(ncols, max(len(labels), 1)))


def group_colors(n: int) -> list[tuple[float, float, float]]:
    """n colours for the scale-invariant groups, light (small alpha_i) to dark (large alpha_i)."""
    return sns.color_palette("crest", n)


def ordered_colors(n: int) -> list[tuple[float, float, float, float]]:
    """n colours of :data:`ELR_CMAP`, from its light (first) to its dark (last) end."""
    return [ELR_CMAP(x) for x in np.linspace(0, 1, n)] if n > 1 else [ELR_CMAP(0.5)] * n


def elr_colors(elrs: Sequence[float]) -> dict[float, tuple[float, float, float, float]]:
    """One colour per ELR of a grid, ordered in ELR (:data:`ELR_CMAP`)."""
    return dict(zip(sorted(elrs), ordered_colors(len(elrs))))


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


def draw_band(ax: Axes, band, color, label: str | None = None) -> None:
    """Mean line and min-max shading of a :func:`sphere_regimes.regimes.seed_band` table."""
    ax.plot(band.index, band["mean"], color=color, label=label)
    if len(band) and (band["high"] > band["low"]).any():
        ax.fill_between(band.index, band["low"], band["high"], color=color, alpha=0.2, linewidth=0)




def label_points(ax: Axes, points: Sequence[tuple[float, float]], texts: Sequence[str],
                 offset: tuple[float, float] = (6, 0)) -> list:
    """Write ``texts`` beside ``points`` (data coordinates) so that no two labels overlap each other or
    a marker: each label, from left to right, starts ``offset`` points right of its point and moves up or
    down, half a line at a time, to the nearest place clear of the labels and points before it; a thin
    leader line joins a moved label to its point. The labels stay out of the figure's layout, so placing
    them does not move the panels."""
    fig = ax.figure
    fig.draw_without_rendering()  # the layout, hence the data-to-pixel transform, is final from here
    renderer = fig.canvas.get_renderer()
    markers = [Bbox.from_bounds(*(ax.transData.transform(p) - 5), 10, 10) for p in points]
    placed, labels = list(markers), []
    for (x, y), text in sorted(zip(points, texts), key=lambda item: item[0]):
        label = ax.annotate(text, (x, y), textcoords="offset points", xytext=offset, va="center", zorder=5,
                            fontsize=SMALLEST_FONT_PT, annotation_clip=False,
                            arrowprops={"arrowstyle": "-", "color": "0.5", "linewidth": 0.6, "shrinkB": 4})
        label.set_in_layout(False)
        box = _place(label, renderer, placed, offset)
        label.arrow_patch.set_visible(label.xyann != offset)
        placed.append(box)
        labels.append(label)
    return labels


def _place(label, renderer, placed: list, offset: tuple[float, float]):
    """Move ``label`` (an annotation) to the first of offset, half a line up, half down, one up, ... whose
    box overlaps none of ``placed``; its box there."""
    step = label.get_fontsize() * 0.6
    for k in range(200):
        rise = step * ((k + 1) // 2) * (1 if k % 2 else -1)
        label.set_position((offset[0], offset[1] + rise))
        label.update_positions(renderer)
        box = Text.get_window_extent(label, renderer)
        if not any(box.overlaps(other) for other in placed):
            return box
    return box
