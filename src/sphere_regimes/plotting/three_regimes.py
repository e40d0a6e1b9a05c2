"""Figures of the three-regimes chapter (02): Figure 1, the regimes' signatures, per-layer ELRs, total vs individual constraint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..regimes import seed_band
from ..table import scientific
from .style import (COLUMN_WIDTH, FIGSIZE, FULL_WIDTH, LOG_FLOOR, REFERENCE_STYLE, REGIME_COLORS, draw_band,
                    elr_colors, group_colors, legend_below, set_elr_axis, shade_regimes)



def plot_regime_curves(groups: Mapping[float, Sequence], regimes: Mapping[float, int]) -> Figure:
    """Figure 1 of the paper: train loss, test error and mean effective gradient norm against the
    epoch for every ELR (mean over seeds, min-max band), and the train loss - effective gradient plane
    with the common starting point marked. Full-width; the legend (each ELR and its regime) below."""
    colors = elr_colors(list(groups))
    fig, axes = plt.subplots(2, 2, figsize=(FULL_WIDTH, 7.4))
    (loss_ax, error_ax), (grad_ax, plane_ax) = axes
    for elr, results in groups.items():
        label = f"ELR {scientific(elr)} (regime {regimes[elr]})"
        loss, grad = seed_band(results, "train_loss"), seed_band(results, "effective_grad_norm")
        draw_band(loss_ax, loss, colors[elr], label)
        draw_band(error_ax, seed_band(results, "test_error"), colors[elr])
        draw_band(grad_ax, grad, colors[elr])
        for result in results:
            rows = result.metrics.dropna(subset=["train_loss"])
            plane_ax.plot(rows["effective_grad_norm"], rows["train_loss"], color=colors[elr], alpha=0.6,
                          linewidth=0.9)
    start = next(iter(groups.values()))[0].metrics.loc[0]
    plane_ax.plot(start["effective_grad_norm"], start["train_loss"], marker="*", markersize=14, color="black",
                  linestyle="none", label="initial point (all runs)", zorder=5)
    loss_ax.set(yscale="log", ylabel="train loss (train mode)", xlabel="epoch")
    error_ax.set(ylabel="test error", xlabel="epoch")
    grad_ax.set(yscale="log", ylabel="mean effective gradient norm", xlabel="epoch")
    plane_ax.set(xscale="log", yscale="log", xlabel="mean effective gradient norm", ylabel="train loss")
    plane_ax.legend(loc="lower right")
    legend_below(fig, *loss_ax.get_legend_handles_labels(), ncols=4)
    return fig


def _per_elr(ax: Axes, elrs, values, regimes: Mapping[float, int]) -> None:
    """Every run's value (a dot in its regime's colour) and the mean over seeds (line) against ELR."""
    means = values.groupby(elrs).mean()
    ax.plot(means.index, means.values, color="0.4", linewidth=1, zorder=1)
    ax.scatter(elrs, values, c=[REGIME_COLORS[regimes[e]] for e in elrs], s=14, zorder=2)
    set_elr_axis(ax, label="ELR")


def plot_regime_properties(summary, regimes: Mapping[float, int], boundaries: Sequence[float],
                           initial: Mapping[str, float], chance_error: float) -> Figure:
    """The regimes' signatures at the end of training against the ELR, one dot per run (colour: its
    regime): train loss, test error, effective gradient norm, angle per epoch, cosine to the initial
    point and ELR x sharpness. ``summary`` is :func:`sphere_regimes.regimes.run_summary`; ``initial``
    holds the initial point's ``train_loss`` and ``effective_grad_norm``. Full-width."""
    fig, axes = plt.subplots(2, 3, figsize=(FULL_WIDTH, 6.2))
    elrs = summary["elr"]
    panels = [(summary["train_loss"], "final train loss", "log"),
              (summary["test_error"], "final test error", "linear"),
              (summary["effective_grad_norm"], "final mean effective grad. norm", "log"),
              (summary["angle_epoch_deg"], "angle turned in the last epoch (°)", "log"),
              (summary["cos_to_init"], "cosine to the initial point", "linear"),
              (elrs * summary["sharpness"], r"ELR $\times$ sharpness (unit sphere)", "symlog")]
    for ax, (values, label, yscale) in zip(axes.flat, panels):
        _per_elr(ax, elrs, values, regimes)
        ax.set(ylabel=label, yscale=yscale)
    axes[0, 0].axhline(initial["train_loss"], **REFERENCE_STYLE, label="initial point")
    axes[0, 2].axhline(initial["effective_grad_norm"], **REFERENCE_STYLE, label="initial point")
    axes[0, 1].axhline(chance_error, **REFERENCE_STYLE, label="chance")
    best = summary.groupby("elr")["best_test_error"].mean()
    axes[0, 1].plot(best.index, best.values, color="0.4", linestyle=":", label="best epoch (mean over seeds)")
    for ax in axes[0]:
        ax.legend(loc="lower right" if ax is axes[0, 1] else "best")
    ordered = [regimes[e] for e in sorted(regimes)]
    spans = [ordered[0], *[r for r, previous in zip(ordered[1:], ordered) if r != previous]]
    if len(spans) == len(boundaries) + 1:
        for ax in axes.flat:
            shade_regimes(ax, boundaries, spans, labels=ax in axes[0])
    return fig


def _layer_columns(metrics, prefix: str) -> list[str]:
    return [c for c in metrics.columns if c.startswith(prefix + "/")]


def plot_layer_self_tuning(groups: Mapping[float, Sequence], elrs: Sequence[float],
                           regimes: Mapping[float, int]) -> Figure:
    """Per-layer effective LRs ``lr/||w_i||^2`` against the epoch (top; dashed: the total ELR) and each
    layer's ``lr tr(H_ii)`` = its ELR times its unit-sphere sharpness (bottom), for the first seed of
    each ELR in ``elrs`` (one column each, at most three: full-width): the network's counterpart of the
    toy's individual ELRs and ``eta_i alpha_i``."""
    fig, axes = plt.subplots(2, len(elrs), figsize=(FULL_WIDTH if len(elrs) > 2 else COLUMN_WIDTH, 5.6),
                             sharex=True, squeeze=False)
    for column, elr in enumerate(elrs):
        metrics = groups[elr][0].metrics
        layers = _layer_columns(metrics, "elr")
        colors = group_colors(len(layers))
        top, bottom = axes[0, column], axes[1, column]
        for color, name in zip(colors, layers):
            layer = name.split("/", 1)[1]
            top.plot(metrics.index, metrics[name], color=color, label=layer)
            rows = metrics.dropna(subset=[f"sharpness/{layer}"])
            bottom.plot(rows.index, rows[name] * rows[f"sharpness/{layer}"], color=color, marker="o",
                        markersize=3, label=layer)
        top.axhline(elr, **REFERENCE_STYLE, label="total ELR")
        top.set(yscale="log", title=f"ELR {scientific(elr)} (regime {regimes[elr]})")
        bottom.set(yscale="symlog", xlabel="epoch")
        top.title.set_color(REGIME_COLORS[regimes[elr]])
    axes[0, 0].set_ylabel(r"per-layer ELR $\mathrm{lr}/\|w_i\|^2$")
    axes[1, 0].set_ylabel(r"per-layer $\mathrm{lr}\,\mathrm{tr}\,H_{ii}$")
    legend_below(fig, *axes[0, 0].get_legend_handles_labels(), ncols=5)
    return fig


CONSTRAINT_LINESTYLES = ("-", "--", ":")
"""Line styles of the constraints in :func:`plot_network_constraints`, in the order a run mapping gives them."""


def plot_network_constraints(runs: Mapping[float, Mapping[str, object]], regimes: Mapping[float, int]) -> Figure:
    """Total against individual norm constraints on the real network (paper §3 on a ConvNet): for each
    ELR of ``runs`` (``elr -> constraint name -> run``, the total constraint first), the train loss against
    the epoch (top) and the per-layer ELRs (bottom), one line style per constraint
    (:data:`CONSTRAINT_LINESTYLES`: solid for the total constraint)."""
    elrs = sorted(runs)
    if not elrs:
        fig, ax = plt.subplots(figsize=FIGSIZE)
        ax.text(0.5, 0.5, "this preset trains no individual-constraint runs\n(individual_elrs is empty)",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    fig, axes = plt.subplots(2, len(elrs), figsize=(FULL_WIDTH if len(elrs) > 2 else COLUMN_WIDTH, 5.6),
                             sharex=True, squeeze=False)
    for column, elr in enumerate(elrs):
        top, bottom = axes[0, column], axes[1, column]
        for (name, run), linestyle in zip(runs[elr].items(), CONSTRAINT_LINESTYLES):
            rows = run.metrics.dropna(subset=["train_loss"])
            top.plot(rows.index, rows["train_loss"].clip(lower=LOG_FLOOR), color="0.2", linestyle=linestyle,
                     label=f"{name} constraint")
            layers = _layer_columns(run.metrics, "elr")
            for color, layer in zip(group_colors(len(layers)), layers):
                bottom.plot(run.metrics.index, run.metrics[layer], color=color, linestyle=linestyle,
                            label=layer.split("/", 1)[1] if name == "total" else None)
        top.set(yscale="log", title=f"ELR {scientific(elr)}")
        top.title.set_color(REGIME_COLORS[regimes[elr]])
        bottom.set(yscale="log", xlabel="epoch")
    axes[0, 0].set_ylabel("train loss (train mode)")
    axes[1, 0].set_ylabel(r"per-layer ELR $\mathrm{lr}/\|w_i\|^2$")
    axes[0, 0].legend(loc="best")
    legend_below(fig, *axes[1, 0].get_legend_handles_labels(), ncols=4)
    return fig


LEVEL_MARKERS = ("o", "s", "^", "D")
"""Markers of the loss levels in :func:`plot_budget`."""


def plot_budget(runs: Sequence, convergence, budgets: Sequence[int]) -> Figure:
    """The budget study: the train loss of each run against the epoch over its whole budget, with the budgets
    it is read at marked (left), and the epochs until the loss stays below each level against the ELR
    (right; a run that never does within its epochs is drawn at the top edge, open): the follow-up's
    "transition" figure. ``convergence`` is :func:`sphere_regimes.chapters.budget.convergence_epochs`."""
    if not runs:  # one line, not two empty panels
        fig, ax = plt.subplots(figsize=(FULL_WIDTH, 0.5))
        ax.text(0.5, 0.5, "this preset trains no budget study (budget_elrs is empty)", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    fig, (loss_ax, epochs_ax) = plt.subplots(1, 2, figsize=(FULL_WIDTH, 4.2))
    colors = elr_colors(sorted({r.config.elr for r in runs}))
    for run in runs:
        rows = run.metrics.dropna(subset=["train_loss"])
        loss_ax.plot(rows.index, rows["train_loss"].clip(lower=LOG_FLOOR), color=colors[run.config.elr],
                     linewidth=0.9, label=f"ELR {scientific(run.config.elr)}, seed {run.config.seed}")
    for budget in budgets:
        loss_ax.axvline(budget, **REFERENCE_STYLE)
    loss_ax.set(yscale="log", xlabel="epoch", ylabel="train loss (train mode)")
    longest = max(r.config.epochs for r in runs)
    for marker, (level, rows) in zip(LEVEL_MARKERS, convergence.groupby("level", sort=False)):
        finite = rows[rows["epochs"] < float("inf")]
        never = rows[rows["epochs"] == float("inf")]
        line = epochs_ax.scatter(finite["elr"], finite["epochs"], marker=marker, color="0.2", s=28,
                                 label=f"below {level:g}")
        epochs_ax.scatter(never["elr"], [longest] * len(never), marker=marker, facecolors="none",
                          edgecolors=line.get_facecolor(), s=28)
    epochs_ax.axhline(longest, **REFERENCE_STYLE, label=f"never within {longest} epochs (open)")
    epochs_ax.set(yscale="log", ylabel="epochs until the loss stays below")
    set_elr_axis(epochs_ax, label="ELR")
    epochs_ax.legend(loc="best")
    legend_below(fig, *loss_ax.get_legend_handles_labels(), ncols=4)
    return fig


def figures(findings) -> dict[str, Figure]:
    """The chapter's figures from its :class:`~sphere_regimes.chapters.three_regimes.ThreeRegimesFindings`,
    under their glue names."""
    drawn = {"fig_regime_curves": plot_regime_curves(findings.groups, findings.regime_of),
             "fig_regime_properties": plot_regime_properties(findings.summary, findings.regime_of,
                                                             findings.boundary_elrs, findings.initial,
                                                             findings.chance_error),
             "fig_layer_self_tuning": plot_layer_self_tuning(findings.groups, findings.representative_elrs,
                                                             findings.regime_of),
             "fig_network_constraints": plot_network_constraints(findings.constraint_runs, findings.regime_of),
             "fig_budget": plot_budget(findings.budget_runs, findings.convergence, findings.params.budgets)}
    return drawn
