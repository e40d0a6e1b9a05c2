"""The regime map of your own network (:mod:`sphere_regimes.regime_map`): each run's final train loss and
the angle it turned per epoch at the end against the ELR, in its regime's colour, on the regimes' spans."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..regimes import regime_map
from .style import COLUMN_WIDTH, LOG_FLOOR, REGIME_COLORS, REGIME_NAMES, set_elr_axis, shade_regimes


def plot_regime_map(found) -> Figure:
    """Two panels against the ELR for a :class:`~sphere_regimes.regime_map.RegimeMap`: final train loss and
    median angle per epoch over the last quarter (the rule's statistic), one dot per run in its regime's colour;
    the spans of the majority regimes are shaded, cut at the geometric midpoints of the brackets."""
    runs = found.runs
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.4), sharex=True)
    panels = [(runs["train_loss"].clip(lower=LOG_FLOOR), "final train loss"),
              (runs["late_angle_deg"], "late angle per epoch (°)")]
    for ax, (values, label) in zip(axes, panels):
        for regime, color in REGIME_COLORS.items():
            chosen = runs["regime"] == regime
            ax.scatter(runs["elr"][chosen], values[chosen], color=color, s=22, zorder=2,
                       label=f"{regime}: {REGIME_NAMES[regime]}")
        set_elr_axis(ax, label="effective learning rate (ELR)")
        ax.set(yscale="log", ylabel=label)
    boundaries, spans = regime_map(runs)
    for ax in axes:
        shade_regimes(ax, boundaries, spans, labels=True)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3)
    fig.suptitle(f"regime map of {found.setting.factory} ({found.setting.epochs} epochs)")
    return fig


def figures(findings) -> dict[str, Figure]:
    """The tutorial's figure from its findings (``findings.regime_map``), under its glue name."""
    return {"fig_regime_map": plot_regime_map(findings.regime_map)}
