"""Figures of the fine-tuning chapter (04)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from .style import (
    COLUMN_WIDTH,
    THEORY_COLOR,
    draw_band,
    elr_colors,
    legend_below,
    set_elr_axis,
    shade_regimes,
)

if TYPE_CHECKING:
    from ..chapters.fine_tuning import FineTuningFindings


def figures(findings: FineTuningFindings) -> dict[str, Figure]:
    """The chapter's figures under their glue names: the test error after fine-tuning against the
    pre-training ELR, and the fine-tuning curves."""
    return {"fig_fine_tuning": plot_fine_tuning(findings.runs, findings.references, findings.boundaries,
                                                findings.spans),
            "fig_fine_tuning_curves": plot_fine_tuning_curves(findings.curves)}


def plot_fine_tuning(table: pd.DataFrame, references: Mapping[str, float], boundaries: Sequence[float],
                     spans: Sequence[int]) -> Figure:
    """Test error after fine-tuning against the pre-training ELR: a dot per seed, the mean over seeds
    with its min-max band, the pre-training runs' own test error before fine-tuning (grey), and
    horizontal ``references`` (label -> test error); background: the sphere's regimes.

    ``table`` has one row per fine-tuned run with ``pretrain_elr``, ``finetuned_error`` and
    ``pretrained_error``.
    """
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 4.6))
    per_elr = table.groupby("pretrain_elr")
    before = per_elr["pretrained_error"].mean()
    ax.plot(before.index, before.values, color="0.6", marker=".", label="pre-training alone (mean over seeds)")
    after = per_elr["finetuned_error"].agg(["mean", "min", "max"])
    ax.fill_between(after.index, after["min"], after["max"], color="black", alpha=0.15, linewidth=0)
    ax.plot(after.index, after["mean"], color="black", label="after fine-tuning (mean over seeds, min-max band)")
    ax.scatter(table["pretrain_elr"], table["finetuned_error"], s=14, color="black", zorder=3,
               label="after fine-tuning, each seed")
    for (label, value), style in zip(references.items(), ("-", (0, (1, 1)), "--")):
        ax.axhline(value, color=THEORY_COLOR, linestyle=style, linewidth=1.2, label=label)
    elrs = table["pretrain_elr"]
    ax.set(xlim=(elrs.min() / 1.5, elrs.max() * 1.5), ylabel="test error (mean over the last epochs)")
    set_elr_axis(ax, label="pre-training ELR")
    shade_regimes(ax, boundaries, spans)
    legend_below(fig, *ax.get_legend_handles_labels(), ncols=2)
    return fig


def plot_fine_tuning_curves(bands: Mapping[float, Mapping[str, pd.DataFrame]]) -> Figure:
    """Train loss (log) and test error against the fine-tuning epoch, one colour per pre-training ELR
    (mean over seeds, min-max band); ``bands`` maps the pre-training ELR to the
    :func:`sphere_regimes.regimes.seed_band` tables of its fine-tuned runs' ``train_loss`` and ``test_error``."""
    colors = elr_colors(list(bands))
    fig, (loss_ax, error_ax) = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.9))
    for elr, band in bands.items():
        draw_band(loss_ax, band["train_loss"], colors[elr], f"pre-trained at ELR {elr:g}")
        draw_band(error_ax, band["test_error"], colors[elr])
    loss_ax.set(yscale="log", ylabel="train loss (train mode)", xlabel="fine-tuning epoch")
    error_ax.set(ylabel="test error", xlabel="fine-tuning epoch")
    legend_below(fig, *loss_ax.get_legend_handles_labels(), ncols=3)
    return fig
