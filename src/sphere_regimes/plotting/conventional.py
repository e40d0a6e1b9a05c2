"""Figures of the conventional-training chapter (03): SGD + weight decay against the sphere's regime map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import conventional
from ..regimes import RegimeRule
from .style import (
    FULL_WIDTH,
    LOG_FLOOR,
    REGIME_COLORS,
    REGIME_NAMES,
    label_points,
    legend_below,
    ordered_colors,
    set_elr_axis,
    shade_regimes,
)

if TYPE_CHECKING:
    from ..chapters.conventional import ConventionalFindings


LR_LINESTYLES: tuple = ("-", "--", (0, (4, 1, 1, 1)), (0, (1, 1)), (0, (6, 2)))
"""Line styles of the learning rates of an SGD grid (colour: the intrinsic LR lr x wd)."""
THEORY_STYLE = {"linestyle": ":", "linewidth": 1.1, "alpha": 0.9}
"""The equilibrium angular update sqrt(2 lr wd / (1 + momentum)), in the colour of its lr x wd."""


def _lr_wd_key(config) -> float:
    return conventional.intrinsic_lr(config.lr, config.weight_decay)


def sgd_styles(configs: Sequence) -> dict[str, dict]:
    """Line colour and style of each SGD run (by run id): one colour per intrinsic LR ``lr x wd``
    (the book's ordered ELR palette: lr x wd sets the equilibrium ELR), one line style per learning rate;
    and its legend label."""
    products = sorted({_lr_wd_key(c) for c in configs})
    colors = dict(zip(products, ordered_colors(len(products))))
    lrs = sorted({c.lr for c in configs})
    styles = dict(zip(lrs, list(LR_LINESTYLES) * len(lrs)))
    return {c.run_id: {"color": colors[_lr_wd_key(c)], "linestyle": styles[c.lr],
                       "label": f"lr {c.lr:g}, wd {c.weight_decay:g} (lr·wd {_lr_wd_key(c):g})"}
            for c in configs}


def _theory_line(ax: Axes, config, color) -> None:
    ax.axhline(conventional.angular_update_theory(config.lr, config.weight_decay, config.momentum), color=color,
               **THEORY_STYLE)


def plot_sgd_equilibrium(results: Sequence) -> Figure:
    """SGD with weight decay against the epoch, one line per (lr, wd): the mean angular update per step
    with its equilibrium value sqrt(2 lr wd / (1 + momentum)) (dotted), the effective learning rate
    lr/||w||^2, the norm of the scale-invariant weights and the mean effective gradient norm.
    Full-width; the legend below."""
    styles = sgd_styles([r.config for r in results])
    fig, axes = plt.subplots(2, 2, figsize=(FULL_WIDTH, 7.6), sharex=True)
    (angle_ax, elr_ax), (norm_ax, grad_ax) = axes
    for result in results:
        style, metrics = styles[result.config.run_id], result.metrics
        line = {"color": style["color"], "linestyle": style["linestyle"]}
        angle_ax.plot(metrics.index, metrics["angle_step_rad"], label=style["label"], **line)
        _theory_line(angle_ax, result.config, style["color"])
        elr_ax.plot(metrics.index, metrics["elr"], **line)
        norm_ax.plot(metrics.index, metrics["si_norm"], **line)
        rows = metrics.dropna(subset=["effective_grad_norm"])
        grad_ax.plot(rows.index, rows["effective_grad_norm"], **line)
    angle_ax.set(yscale="log", ylabel="mean angular update per step (rad)")
    elr_ax.set(yscale="log", ylabel=r"effective learning rate $\mathrm{lr}/\|w\|^2$")
    norm_ax.set(yscale="log", ylabel=r"norm of the SI weights $\|w\|$", xlabel="epoch")
    grad_ax.set(yscale="log", ylabel="mean effective gradient norm", xlabel="epoch")
    handles, labels = angle_ax.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="0.3", **THEORY_STYLE))
    labels.append(r"equilibrium $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}/(1+\mu)}$ (colour of its lr·wd)")
    legend_below(fig, handles, labels, ncols=3)
    return fig


def plot_sgd_training(results: Sequence) -> Figure:
    """Train loss (train mode, log) and test error against the epoch, in the styles of
    :func:`plot_sgd_equilibrium`."""
    styles = sgd_styles([r.config for r in results])
    fig, (loss_ax, error_ax) = plt.subplots(1, 2, figsize=(FULL_WIDTH, 4.4))
    for result in results:
        style = styles[result.config.run_id]
        rows = result.metrics.dropna(subset=["train_loss"])
        line = {"color": style["color"], "linestyle": style["linestyle"]}
        loss_ax.plot(rows.index, np.maximum(rows["train_loss"], LOG_FLOOR), label=style["label"], **line)
        error_ax.plot(rows.index, rows["test_error"], **line)
    loss_ax.set(yscale="log", ylabel="train loss (train mode)", xlabel="epoch")
    error_ax.set(ylabel="test error", xlabel="epoch")
    legend_below(fig, *loss_ax.get_legend_handles_labels(), ncols=3)
    return fig


def plot_sgd_regime_map(sphere_summary, sgd_summary, boundaries: Sequence[float], spans: Sequence[int]) -> Figure:
    """The fixed-ELR regime map of the sphere with the SGD runs placed on it.

    Line and grey dots: the sphere runs' stationary train loss (mean over the second half) and final
    test error against their fixed ELR (mean over seeds, and each seed); background: the sphere's
    regimes. Markers: every SGD run at its equilibrium ELR (:func:`sphere_regimes.conventional.sgd_summary`;
    horizontal bar: min to max over the last quarter), filled in the colour of the regime the run itself
    is in (circle: fully scale-invariant net, square: ``convnet_af``), labelled lr/wd without overlaps
    (:func:`~sphere_regimes.plotting.style.label_points`). Runs without an equilibrium ELR (diverged) have
    no place on the map and are left out. Full-width.
    """
    sgd_summary = sgd_summary[sgd_summary["equilibrium_elr"].notna()]
    fig, axes = plt.subplots(1, 2, figsize=(FULL_WIDTH, 4.6))
    elrs = sphere_summary["elr"]
    all_elrs = np.r_[elrs, sgd_summary["elr_min"], sgd_summary["elr_max"]]
    for ax, sphere_column, sgd_column, label, yscale in (
            (axes[0], "late_train_loss", "late_train_loss", "stationary train loss (mean over the second half)", "log"),
            (axes[1], "test_error", "test_error", "final test error", "linear")):
        means = sphere_summary.groupby("elr")[sphere_column].mean()
        ax.plot(means.index, means.values, color="0.35", linewidth=1.2, zorder=2,
                label="sphere at a fixed ELR (mean over seeds)")
        ax.scatter(elrs, sphere_summary[sphere_column], s=10, color="0.55", zorder=2)
        for _, row in sgd_summary.iterrows():
            marker = "s" if row["model"].endswith("_af") else "o"
            ax.errorbar(row["equilibrium_elr"], row[sgd_column],
                        xerr=[[row["equilibrium_elr"] - row["elr_min"]], [row["elr_max"] - row["equilibrium_elr"]]],
                        marker=marker, markersize=7, color=REGIME_COLORS[int(row["regime"])], ecolor="0.3",
                        elinewidth=0.9, capsize=2, linestyle="none", markeredgecolor="black", zorder=4)
        ax.set(yscale=yscale, ylabel=label, xlim=(all_elrs.min() / 1.5, all_elrs.max() * 1.5))
        set_elr_axis(ax, label="effective learning rate (ELR)")
        shade_regimes(ax, boundaries, spans)
    handles = [plt.Line2D([], [], color="0.35", label="sphere at a fixed ELR (mean over seeds)"),
               *[plt.Line2D([], [], marker="o", linestyle="none", color=REGIME_COLORS[r], markeredgecolor="black",
                            label=f"SGD run in regime {r} ({REGIME_NAMES[r]})") for r in (1, 2, 3)],
               plt.Line2D([], [], marker="s", linestyle="none", color="white", markeredgecolor="black",
                          label="square: affine BN, trainable last layer")]
    legend_below(fig, handles, [h.get_label() for h in handles], ncols=3)
    for ax, column in zip(axes, ("late_train_loss", "test_error")):
        label_points(ax, list(zip(sgd_summary["equilibrium_elr"], sgd_summary[column])),
                     [f"{row.lr:g}/{row.weight_decay:g}" for row in sgd_summary.itertuples()])
    return fig


def plot_af_comparison(pairs: Sequence[tuple]) -> Figure:
    """The fully scale-invariant net (solid) against ``convnet_af`` (dashed) at the same (lr, wd), one
    colour per pair: angular update per step with its equilibrium value (dotted), effective learning
    rate of the convolution weights, and test error against the epoch. ``pairs`` holds
    ``(si_result or None, af_result)``. A run that diverged by collapsing (its ELR growing without
    bound) leaves the ELR panel, whose scale the other runs set, with an arrow at the epoch it leaves."""
    fig, axes = plt.subplots(1, 3, figsize=(FULL_WIDTH, 3.9))
    colors = ordered_colors(len(pairs))
    runs = [r for pair in pairs for r in pair if r is not None]
    settled = [r.metrics["elr"].max() for r in runs if r.status.status != "diverged"]
    elr_top = 30 * max(settled) if settled and len(settled) < len(runs) else None
    for color, (si, af) in zip(colors, pairs):
        for result, linestyle, name in ((si, "-", "ConvNetSI"), (af, "--", "Af")):
            if result is None:
                continue
            metrics, config = result.metrics, result.config
            label = f"{name}, lr {config.lr:g}, wd {config.weight_decay:g}"
            axes[0].plot(metrics.index, metrics["angle_step_rad"], color=color, linestyle=linestyle, label=label)
            axes[1].plot(metrics.index, metrics["elr"], color=color, linestyle=linestyle)
            if elr_top is not None and result.status.status == "diverged" and (metrics["elr"] > elr_top).any():
                leaves = int((metrics["elr"] > elr_top).idxmax())
                axes[1].annotate(f"ELR → ∞ (collapse; diverged\nat epoch {result.status.diverged_epoch})",
                                 xy=(leaves, elr_top), xytext=(leaves + 5, elr_top / 20), color=color,
                                 arrowprops={"arrowstyle": "->", "color": color})
            rows = metrics.dropna(subset=["test_error"])
            axes[2].plot(rows.index, rows["test_error"], color=color, linestyle=linestyle)
        _theory_line(axes[0], af.config, color)
    axes[0].set(yscale="log", ylabel="mean angular update per step (rad)")
    axes[1].set(yscale="log", ylabel=r"ELR of the conv weights $\mathrm{lr}/\|w\|^2$")
    if elr_top is not None:
        axes[1].set_ylim(top=elr_top)
    axes[2].set(ylabel="test error")
    for ax in axes:
        ax.set_xlabel("epoch")
    legend_below(fig, *axes[0].get_legend_handles_labels(), ncols=4)
    return fig


def plot_long_runs(results: Sequence, summary, steps_per_epoch: int) -> Figure:
    """The long runs over their whole length, one colour per run: the norm of the scale-invariant weights, the
    effective learning rate, the RMS angular update per step (:func:`sphere_regimes.conventional.rms_angles`)
    with its law (dotted) and the running train loss (every epoch) with the levels of the spike rule
    (:func:`sphere_regimes.conventional.destabilisations`, grey) and its spikes (crosses); dashed verticals
    at twice each run's relaxation time 1/(2 lr wd) steps, shaded its late window. ``summary``: the runs' rows
    of :func:`sphere_regimes.conventional.sgd_summary` (their relaxation times and spikes). Full-width."""
    if not results:
        fig, ax = plt.subplots(figsize=(FULL_WIDTH, 2.0))
        ax.text(0.5, 0.5, "this preset trains no long runs\n(long_runs is empty)", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    fig, axes = plt.subplots(2, 2, figsize=(FULL_WIDTH, 7.0), sharex=True)
    (norm_ax, elr_ax), (angle_ax, loss_ax) = axes
    rows = summary.set_index("run_id")
    for color, result in zip(ordered_colors(len(results)), results):
        config, metrics, row = result.config, result.metrics, rows.loc[result.config.run_id]
        rms, _ = conventional.rms_angles(metrics, config.lr, config.weight_decay, config.momentum, steps_per_epoch)
        losses = metrics["train_loss_running"].dropna()
        spikes = list(row["spike_epochs"])
        label = f"lr {config.lr:g}, wd {config.weight_decay:g}, {config.epochs} epochs"
        norm_ax.plot(metrics.index, metrics["si_norm"], color=color, label=label)
        elr_ax.plot(metrics.index, metrics["elr"], color=color)
        angle_ax.plot(rms.index, rms, color=color)
        _theory_line(angle_ax, config, color)
        loss_ax.plot(losses.index, np.maximum(losses, LOG_FLOOR), color=color)
        loss_ax.plot(spikes, np.maximum(losses[spikes], LOG_FLOOR), "x", color=color, markersize=7)
        twice = conventional.SETTLE_RELAXATIONS * row["relaxation_epochs"]
        last = int(result.final.name)
        for ax in axes.flat:
            ax.axvspan(last * (1 - conventional.LATE_FRACTION), last, color=color, alpha=0.08, linewidth=0)
            if twice <= last:
                ax.axvline(twice, color=color, linestyle="--", linewidth=1.0)
    converged = RegimeRule().converged_loss
    for level in (converged, conventional.SPIKE_FACTOR * converged):
        loss_ax.axhline(level, color="0.5", linewidth=0.8)
    norm_ax.set(yscale="log", ylabel=r"norm of the SI weights $\|w\|$")
    elr_ax.set(yscale="log", ylabel=r"effective learning rate $\mathrm{lr}/\|w\|^2$")
    angle_ax.set(yscale="log", ylabel="RMS angular update per step (rad)", xlabel="epoch")
    loss_ax.set(yscale="log", ylabel="running train loss", xlabel="epoch")
    handles, labels = norm_ax.get_legend_handles_labels()
    extra = [(plt.Line2D([], [], color="0.3", **THEORY_STYLE), r"$\sqrt{2\,\mathrm{lr}\,\mathrm{wd}/(1+\mu)}$"),
             (plt.Line2D([], [], color="0.3", linestyle="--"), "twice the relaxation time"),
             (plt.Line2D([], [], color="0.3", marker="x", linestyle="none"), "loss spike"),
             (plt.Line2D([], [], color="0.5", linewidth=0.8), "spike rule's levels")]
    legend_below(fig, [*handles, *(h for h, _ in extra)], [*labels, *(text for _, text in extra)], ncols=3)
    return fig


def figures(findings: ConventionalFindings) -> dict[str, Figure]:
    """The chapter's figures (:class:`sphere_regimes.chapters.conventional.ConventionalFindings`) under their
    glue names."""
    return {
        "fig_sgd_equilibrium": plot_sgd_equilibrium(findings.si_results),
        "fig_sgd_training": plot_sgd_training(findings.si_results),
        "fig_sgd_regime_map": plot_sgd_regime_map(findings.sphere_summary, findings.summary, findings.boundaries,
                                                  findings.spans),
        "fig_af_comparison": plot_af_comparison(findings.af_pairs),
        "fig_sgd_long_runs": plot_long_runs(findings.long_results, findings.long_summary,
                                            findings.steps_per_epoch),
    }
