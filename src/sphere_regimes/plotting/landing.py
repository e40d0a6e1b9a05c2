"""The landing page's headline figure: the regime map of the whole reproduction (chapter 02's grid)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..regimes import REGIME_NAMES, majority_regimes, regime_map
from .style import LOG_FLOOR, REFERENCE_STYLE, REGIME_COLORS, draw_band, set_elr_axis, shade_regimes

HEADLINE_SIZE: tuple[float, float] = (7.5, 2.9)
"""Inches: three panels in a row, drawn at about the width of the book's column (fonts stay legible)."""
PAPER_BRACKET_STYLE = {"facecolor": "none", "edgecolor": "0.4", "hatch": "//", "linewidth": 0}
"""The paper's brackets of a regime boundary: hatched spans over our regime bands."""


def plot_regime_map(summary: pd.DataFrame, initial: Mapping[str, float], chance_error: float,
                    paper_brackets: Mapping[tuple[int, int], tuple[float, float]]) -> Figure:
    """Final train loss, final test error and final mean effective gradient norm against the ELR: mean
    over the seeds (line, dots in the regime's colour) and their min–max (band), our regimes as coloured
    bands (:func:`sphere_regimes.regimes.regime_map`), the initial point and chance as dashed levels, and
    the paper's ``paper_brackets`` (``(from, to) -> (low, high)`` ELRs) hatched.
    ``summary`` is :func:`sphere_regimes.regimes.run_summary` of the grid, one row per run."""
    boundaries, spans = regime_map(summary)
    majority = majority_regimes(summary)
    fig, axes = plt.subplots(1, 3, figsize=HEADLINE_SIZE)
    panels = [("train_loss", "final train loss", "log", initial["train_loss"], "initial point"),
              ("test_error", "final test error", "linear", chance_error, "chance"),
              ("effective_grad_norm", "final effective gradient", "log", initial["effective_grad_norm"],
               "initial point")]
    for ax, (column, label, yscale, level, level_name) in zip(axes, panels):
        band = summary.groupby("elr")[column].agg(mean="mean", low="min", high="max").clip(lower=LOG_FLOOR)
        draw_band(ax, band, "0.2")
        ax.scatter(band.index, band["mean"], c=[REGIME_COLORS[majority[e]] for e in band.index], s=22, zorder=3)
        ax.axhline(level, **REFERENCE_STYLE)
        ax.annotate(level_name, (0.02, level), xycoords=("axes fraction", "data"), va="bottom", color="0.3",
                    fontsize="small")
        set_elr_axis(ax, label="effective learning rate")
        ax.set(ylabel=label, yscale=yscale)
        shade_regimes(ax, boundaries, spans, alpha=0.18, labels=False)
        for low, high in paper_brackets.values():
            ax.axvspan(low, high, zorder=1, **PAPER_BRACKET_STYLE)
    handles = [Patch(color=REGIME_COLORS[r], alpha=0.4, label=f"{r}: {REGIME_NAMES[r]}") for r in sorted(set(spans))]
    handles.append(Patch(label="paper's boundaries (ELR brackets)", **PAPER_BRACKET_STYLE))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig

