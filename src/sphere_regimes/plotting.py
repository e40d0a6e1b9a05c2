"""The one plotting module of the book: style, regime colours, ELR axes and every chapter's figures.

Notebooks call these functions and contain no plotting helpers of their own. Every figure
function returns its :class:`matplotlib.figure.Figure` (no ``plt.show``); everything works with
the Agg backend. Regime colours and names are defined here and in :mod:`sphere_regimes.regimes`
only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from . import toy
from .regimes import REGIME_NAMES

__all__ = [
    "REGIME_COLORS", "REGIME_NAMES", "TOY_RANGE_NAMES", "group_colors", "mark_thresholds",
    "elr_colors", "plot_constraint_comparison", "plot_individual_elrs", "plot_layer_self_tuning",
    "plot_network_constraints", "plot_regime_curves", "plot_regime_properties", "plot_toy_sweep",
    "plot_toy_trajectories",
    "set_elr_axis", "set_style", "shade_regimes",
]

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


def _theory_thresholds(alphas: Sequence[float]) -> dict[str, float]:
    return {r"$1/\Sigma\alpha$ (convergence threshold)": toy.convergence_threshold(alphas),
            r"$1/\alpha_\min$ (no group stable above)": toy.no_stable_group_threshold(alphas)}


def _regime_labels(trajectory: toy.Trajectory) -> list[str]:
    regimes = toy.theory_regime(trajectory.etas, trajectory.alphas)
    return [rf"$\eta$ = {eta:.3g} ({TOY_RANGE_NAMES[int(r)]})" for eta, r in zip(trajectory.etas, regimes)]


# --------------------------------------------------------------------------- toy chapter

def _iteration_axis(ax: Axes) -> None:
    ax.set_xscale("log")
    ax.set_xlabel("iteration + 1")


def plot_toy_trajectories(trajectory: toy.Trajectory) -> Figure:
    """Left: F(t) relative to its random-direction level, one line per total ELR of the batch,
    coloured by the theory range of the ELR. Right: the angle moved per step on the sphere."""
    fig, (ax_loss, ax_angle) = plt.subplots(1, 2, figsize=(FIGSIZE[0] * 1.8, FIGSIZE[1]))
    regimes = toy.theory_regime(trajectory.etas, trajectory.alphas)
    steps = trajectory.iterations + 1
    for run, (label, regime) in enumerate(zip(_regime_labels(trajectory), regimes)):
        color = REGIME_COLORS[int(regime)]
        ax_loss.plot(steps, np.maximum(trajectory.relative_loss[:, run], LOG_FLOOR), color=color, lw=0.7,
                     label=label)
        ax_angle.plot(steps, np.maximum(np.degrees(trajectory.angle[:, run]), ANGLE_FLOOR), color=color, lw=0.7)
    ax_loss.axhline(1.0, color="k", lw=1.0, ls="--", label="random direction in every group")
    ax_loss.set(yscale="log", ylim=(LOG_FLOOR / 3, 3), ylabel=r"$F(\theta_t)$ / random-direction level")
    ax_angle.set(yscale="log", ylim=(ANGLE_FLOOR / 3, 360), ylabel="angle moved per step on the sphere (degrees)")
    for ax in (ax_loss, ax_angle):
        _iteration_axis(ax)
    ax_loss.legend(loc="center right", fontsize="small")
    return fig


def plot_individual_elrs(trajectory: toy.Trajectory) -> Figure:
    """One panel per total ELR: the individual ELRs ``eta_i(t) = eta / rho_i(t)`` of every group
    (solid) against their stability thresholds ``1/alpha_i`` (dashed, same colour)."""
    n_runs, n_groups = len(trajectory.etas), len(trajectory.alphas)
    fig, axes = plt.subplots(1, n_runs, figsize=(FIGSIZE[0] * 0.6 * n_runs + 1.6, FIGSIZE[1]), squeeze=False)
    colors = group_colors(n_groups)
    regimes = toy.theory_regime(trajectory.etas, trajectory.alphas)
    steps = trajectory.iterations + 1
    for run, ax in enumerate(axes[0]):
        for group in range(n_groups):
            alpha = trajectory.alphas[group]
            ax.plot(steps, trajectory.elrs[:, run, group], color=colors[group], lw=0.6,
                    label=rf"$\eta_{group + 1}$ ($\alpha_{group + 1}$ = {alpha:g})")
            ax.axhline(1.0 / alpha, color=colors[group], ls="--", lw=1.3,
                       label=rf"$1/\alpha_{group + 1}$ = {1 / alpha:.3g}")
        regime = int(regimes[run])
        ax.set_title(rf"$\eta$ = {trajectory.etas[run]:.3g}, {TOY_RANGE_NAMES[regime]}",
                     color=REGIME_COLORS[regime], fontsize="medium")
        ax.set_yscale("log")
        _iteration_axis(ax)
    axes[0, 0].set_ylabel(r"individual ELR $\eta_i = \eta/\|\theta_i\|^2$")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize="small")
    return fig


def plot_toy_sweep(main: toy.Sweep, extra: Mapping[str, toy.Sweep] | None = None, *,
                   main_label: str = "exact gradient", random_walk_fraction: float = 0.9) -> Figure:
    """Late-time F relative to the random-direction level against the total ELR.

    Top: ``main`` (dots), the 2-cycle prediction ``(sum alpha - 1/eta)/2``, the random-direction
    level and ``random_walk_fraction`` of it; ``extra`` sweeps (e.g. with gradient noise) in grey
    shades. Bottom: the late-time ``eta_i alpha_i`` of every group of ``main`` (1 = the group's
    stability threshold) and ``eta sum alpha`` (all groups equalised). The ELR ranges of the
    thresholds are shaded in both panels.
    """
    fig, (ax_loss, ax_k) = plt.subplots(2, 1, figsize=(FIGSIZE[0] * 1.75, FIGSIZE[1] * 1.9), sharex=True,
                                        height_ratios=[1.2, 1])
    level = toy.random_direction_level(main.alphas, main.dim)
    shades = sns.color_palette("Greys", len(extra or {}) + 2)[2:]
    for (label, result), shade in zip((extra or {}).items(), shades):
        ax_loss.plot(result.etas, result.late_relative, color=shade, lw=1.3, label=label)
    ax_loss.plot(main.etas, main.late_relative, "o", ms=3, color="k", label=main_label, zorder=3)
    ax_loss.plot(main.etas, toy.two_cycle_loss(main.etas, main.alphas) / level, color="C3", lw=1.2,
                 label=r"every group on its 2-cycle: $(\Sigma\alpha - 1/\eta)/2$", zorder=4)
    ax_loss.axhline(1.0, color="k", ls="--", lw=1.0, label="random direction in every group")
    ax_loss.axhline(random_walk_fraction, color="k", ls=":", lw=1.0,
                    label=f"{random_walk_fraction:g} of it (random-walk criterion)")
    ax_loss.set(ylim=(-0.02, 1.08), ylabel="late-time $F$ / random-direction level")
    colors = group_colors(len(main.alphas))
    for group, alpha in enumerate(main.alphas):
        ax_k.plot(main.etas, main.late_elrs[:, group] * alpha, ".", ms=3.5, color=colors[group],
                  label=rf"group {group + 1}, $\alpha_{group + 1}$ = {alpha:g}")
    ax_k.plot(main.etas, main.etas * main.alphas.sum(), color="C3", lw=1.0,
              label=r"$\eta\,\Sigma\alpha$ (all groups equalised)")
    ax_k.axhline(1.0, color="k", ls="--", lw=1.0, label=r"$\eta_i\alpha_i = 1$ (stability threshold)")
    ax_k.set(yscale="log", ylabel=r"late-time $\eta_i\,\alpha_i$ (geometric mean)")
    set_elr_axis(ax_k)
    for ax in (ax_loss, ax_k):
        ax.set_xlim(main.etas.min(), main.etas.max())
        shade_regimes(ax, sorted(_theory_thresholds(main.alphas).values()), labels=ax is ax_loss)
        mark_thresholds(ax, _theory_thresholds(main.alphas), legend=ax is ax_loss)
    ax_loss.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax_k.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def plot_constraint_comparison(total: toy.Sweep, individual: toy.Sweep, radii_sq: Sequence[float]) -> Figure:
    """Total constraint ``||theta|| = 1`` against individual constraints ``||theta_i||^2 = r_i^2``.

    Left: late-time F / random-direction level against the total ELR, with the thresholds
    ``1/sum alpha`` (total) and ``min r_i^2/alpha_i`` (individual). Right: every group's late-time
    ``sin^2 phi_i`` against its late-time ``eta_i alpha_i``, with the one-group 2-cycle curve.
    """
    fig, (ax_eta, ax_k) = plt.subplots(1, 2, figsize=(FIGSIZE[0] * 1.8, FIGSIZE[1]))
    styles = {"total": (total, "k", "o", r"total constraint $\|\theta\| = 1$"),
              "individual": (individual, "C0", "s", r"individual constraints $\|\theta_i\|^2 = r_i^2$")}
    for name, (result, color, marker, label) in styles.items():
        ax_eta.plot(result.etas, result.late_relative, marker, ms=2.8, color=color, label=label)
    ax_eta.axvline(toy.convergence_threshold(total.alphas), color="k", ls="--", lw=1.0,
                   label=r"$1/\Sigma\alpha$")
    ax_eta.axvline(toy.individual_convergence_threshold(individual.alphas, radii_sq), color="C0", ls="--",
                   lw=1.0, label=r"$\mathrm{min}_i\, r_i^2/\alpha_i$")
    set_elr_axis(ax_eta)
    ax_eta.set(ylabel="late-time $F$ / random-direction level")
    ax_eta.legend(loc="lower right", fontsize="small")
    k = np.logspace(-3, 4, 400)
    for name, (result, color, marker, _) in styles.items():
        ax_k.plot((result.late_elrs * result.alphas).ravel(), result.late_group_sin2.ravel(), marker, ms=2.5,
                  color=color, alpha=0.5, label=f"{name}: each group")
    ax_k.plot(k, toy.two_cycle_sin2(k), color="C3", lw=1.2, label=r"2-cycle: $(1 - 1/(\eta_i\alpha_i))/2$")
    ax_k.axvline(1.0, color="k", ls=":", lw=1.0)
    set_elr_axis(ax_k, label=r"late-time $\eta_i\,\alpha_i$ (geometric mean; 1 = stability threshold)")
    ax_k.set(ylabel=r"late-time $\sin^2\varphi_i$ (mean)", xlim=(1e-3, 1e4))
    ax_k.legend(loc="lower right", fontsize="small")
    return fig


# --------------------------------------------------------------------------- real-network chapters

def elr_colors(elrs: Sequence[float]) -> dict[float, tuple[float, float, float]]:
    """One colour per ELR of a grid, ordered in log ELR (viridis: distinguishable for ten or more ELRs)."""
    return dict(zip(sorted(elrs), sns.color_palette("viridis", len(elrs))))


def _band(ax: Axes, band, color, label: str | None = None) -> None:
    """Mean line and min-max shading of a :func:`sphere_regimes.regimes.seed_band` table."""
    ax.plot(band.index, band["mean"], color=color, label=label)
    if len(band) and (band["high"] > band["low"]).any():
        ax.fill_between(band.index, band["low"], band["high"], color=color, alpha=0.2, linewidth=0)


def plot_regime_curves(groups: Mapping[float, Sequence], regimes: Mapping[float, int]) -> Figure:
    """Figure 1 of the paper: train loss, test error and mean effective gradient norm against the
    epoch for every ELR (mean over seeds, min-max band), and the train loss - effective gradient plane
    with the common starting point marked."""
    from .regimes import seed_band

    colors = elr_colors(list(groups))
    fig, axes = plt.subplots(2, 2, figsize=(11.5, 7.5))
    (loss_ax, error_ax), (grad_ax, plane_ax) = axes
    for elr, results in groups.items():
        label = f"ELR {elr:g} (regime {regimes[elr]})"
        loss, grad = seed_band(results, "train_loss"), seed_band(results, "effective_grad_norm")
        _band(loss_ax, loss, colors[elr], label)
        _band(error_ax, seed_band(results, "test_error"), colors[elr])
        _band(grad_ax, grad, colors[elr])
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
    fig.legend(*loss_ax.get_legend_handles_labels(), loc="outside right center")
    return fig


def _per_elr(ax: Axes, elrs, values, regimes: Mapping[float, int]) -> None:
    """Every run's value (a dot in its regime's colour) and the mean over seeds (line) against ELR."""
    means = values.groupby(elrs).mean()
    ax.plot(means.index, means.values, color="0.4", linewidth=1, zorder=1)
    ax.scatter(elrs, values, c=[REGIME_COLORS[regimes[e]] for e in elrs], s=18, zorder=2)
    set_elr_axis(ax, label="effective learning rate (ELR)")


def plot_regime_properties(summary, regimes: Mapping[float, int], boundaries: Sequence[float],
                           initial: Mapping[str, float], chance_error: float) -> Figure:
    """The regimes' signatures at the end of training against the ELR, one dot per run (colour: its
    regime): train loss, test error, effective gradient norm, angle per epoch, cosine to the initial
    point and ELR x sharpness. ``summary`` is :func:`sphere_regimes.regimes.run_summary`; ``initial``
    holds the initial point's ``train_loss`` and ``effective_grad_norm``."""
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    elrs = summary["elr"]
    panels = [(summary["train_loss"], "final train loss", "log"),
              (summary["test_error"], "final test error", "linear"),
              (summary["effective_grad_norm"], "final mean effective gradient norm", "log"),
              (summary["angle_epoch_deg"], "angle turned in the last epoch (degrees)", "log"),
              (summary["cos_to_init"], "cosine to the initial point", "linear"),
              (elrs * summary["sharpness"], r"ELR $\times$ sharpness on the unit sphere", "symlog")]
    for ax, (values, label, yscale) in zip(axes.flat, panels):
        _per_elr(ax, elrs, values, regimes)
        ax.set(ylabel=label, yscale=yscale)
    axes[0, 0].axhline(initial["train_loss"], **REFERENCE_STYLE, label="initial point")
    axes[0, 2].axhline(initial["effective_grad_norm"], **REFERENCE_STYLE, label="initial point")
    axes[0, 1].axhline(chance_error, **REFERENCE_STYLE, label="chance")
    best = summary.groupby("elr")["best_test_error"].mean()
    axes[0, 1].plot(best.index, best.values, color="0.4", linestyle=":", label="best epoch (mean over seeds)")
    for ax in axes[0]:
        ax.legend(loc="best")
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
    each ELR in ``elrs``: the network's counterpart of the toy's individual ELRs and ``eta_i alpha_i``."""
    fig, axes = plt.subplots(2, len(elrs), figsize=(4.3 * len(elrs), 6.5), sharex=True, squeeze=False)
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
        top.set(yscale="log", title=f"ELR {elr:g} (regime {regimes[elr]})")
        bottom.set(yscale="symlog", xlabel="epoch")
        top.title.set_color(REGIME_COLORS[regimes[elr]])
    axes[0, 0].set_ylabel(r"per-layer ELR $\mathrm{lr}/\|w_i\|^2$")
    axes[1, 0].set_ylabel(r"per-layer $\mathrm{lr}\,\mathrm{tr}\,H_{ii}$")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside right center")
    return fig


def plot_network_constraints(pairs: Mapping[float, tuple], regimes: Mapping[float, int]) -> Figure:
    """Total against individual norm constraint on the real network (paper §3 on a ConvNet): for each
    ELR of ``pairs`` (``elr -> (total_run, individual_run)``), the train loss against the epoch (top)
    and the per-layer ELRs (bottom), solid for the total and dashed for the individual constraint."""
    elrs = sorted(pairs)
    if not elrs:
        fig, ax = plt.subplots(figsize=FIGSIZE)
        ax.text(0.5, 0.5, "this preset trains no individual-constraint runs\n(individual_elrs is empty)",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    fig, axes = plt.subplots(2, len(elrs), figsize=(3.6 * len(elrs) + 1.5, 6.5), sharex=True, squeeze=False)
    for column, elr in enumerate(elrs):
        top, bottom = axes[0, column], axes[1, column]
        for run, linestyle, name in zip(pairs[elr], ("-", "--"), ("total", "individual")):
            rows = run.metrics.dropna(subset=["train_loss"])
            top.plot(rows.index, rows["train_loss"].clip(lower=LOG_FLOOR), color="0.2", linestyle=linestyle,
                     label=f"{name} constraint")
            layers = _layer_columns(run.metrics, "elr")
            for color, layer in zip(group_colors(len(layers)), layers):
                bottom.plot(run.metrics.index, run.metrics[layer], color=color, linestyle=linestyle,
                            label=layer.split("/", 1)[1] if name == "total" else None)
        top.set(yscale="log", title=f"ELR {elr:g}")
        top.title.set_color(REGIME_COLORS[regimes[elr]])
        bottom.set(yscale="log", xlabel="epoch")
    axes[0, 0].set_ylabel("train loss (train mode)")
    axes[1, 0].set_ylabel(r"per-layer ELR $\mathrm{lr}/\|w_i\|^2$")
    axes[0, 0].legend(loc="best", fontsize="small")
    fig.legend(*axes[1, 0].get_legend_handles_labels(), loc="outside right center", fontsize="small")
    return fig
