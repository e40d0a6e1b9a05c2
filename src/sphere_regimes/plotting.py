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

from . import conventional, toy
from .regimes import REGIME_NAMES

__all__ = [
    "REGIME_COLORS", "REGIME_NAMES", "TOY_RANGE_NAMES", "group_colors", "mark_thresholds",
    "elr_colors", "plot_af_comparison", "plot_constraint_comparison", "plot_fine_tuning", "plot_fine_tuning_curves",
    "plot_individual_elrs", "plot_layer_self_tuning", "plot_network_constraints", "plot_regime_curves",
    "plot_regime_properties", "plot_sgd_equilibrium", "plot_sgd_regime_map", "plot_sgd_training", "plot_toy_sweep",
    "plot_toy_trajectories",
    "set_elr_axis", "set_style", "sgd_styles", "shade_regimes",
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


# --------------------------------------------------------------------------- conventional training

LR_LINESTYLES: tuple = ("-", "--", (0, (4, 1, 1, 1)), (0, (1, 1)), (0, (6, 2)))
"""Line styles of the learning rates of an SGD grid (colour: the intrinsic LR lr x wd)."""
THEORY_STYLE = {"linestyle": ":", "linewidth": 1.1, "alpha": 0.9}
"""The equilibrium angular update sqrt(2 lr wd / (1 + momentum)), in the colour of its lr x wd."""


def _lr_wd_key(config) -> float:
    return conventional.intrinsic_lr(config.lr, config.weight_decay)


def sgd_styles(configs: Sequence) -> dict[str, dict]:
    """Line colour and style of each SGD run (by run id): one colour per intrinsic LR ``lr x wd``
    (viridis, ordered), one line style per learning rate; and its legend label."""
    products = sorted({_lr_wd_key(c) for c in configs})
    colors = dict(zip(products, sns.color_palette("viridis", len(products))))
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
    lr/||w||^2, the norm of the scale-invariant weights and the mean effective gradient norm."""
    styles = sgd_styles([r.config for r in results])
    fig, axes = plt.subplots(2, 2, figsize=(11.5, 7.5), sharex=True)
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
    fig.legend(handles, labels, loc="outside right center")
    return fig


def plot_sgd_training(results: Sequence) -> Figure:
    """Train loss (train mode, log) and test error against the epoch, in the styles of
    :func:`plot_sgd_equilibrium`."""
    styles = sgd_styles([r.config for r in results])
    fig, (loss_ax, error_ax) = plt.subplots(1, 2, figsize=(11.5, 4.0))
    for result in results:
        style = styles[result.config.run_id]
        rows = result.metrics.dropna(subset=["train_loss"])
        line = {"color": style["color"], "linestyle": style["linestyle"]}
        loss_ax.plot(rows.index, np.maximum(rows["train_loss"], LOG_FLOOR), label=style["label"], **line)
        error_ax.plot(rows.index, rows["test_error"], **line)
    loss_ax.set(yscale="log", ylabel="train loss (train mode)", xlabel="epoch")
    error_ax.set(ylabel="test error", xlabel="epoch")
    fig.legend(*loss_ax.get_legend_handles_labels(), loc="outside right center")
    return fig


def plot_sgd_regime_map(sphere_summary, sgd_summary, boundaries: Sequence[float], spans: Sequence[int]) -> Figure:
    """The fixed-ELR regime map of the sphere with the SGD runs placed on it.

    Line and grey dots: the sphere runs' stationary train loss (mean over the second half) and final
    test error against their fixed ELR (mean over seeds, and each seed); background: the sphere's
    regimes. Markers: every SGD run at its equilibrium ELR (:func:`sphere_regimes.conventional.sgd_summary`;
    horizontal bar: min to max over the last quarter), filled in the colour of the regime the run itself
    is in (circle: fully scale-invariant net, square: ``convnet_af``), labelled lr/wd. Runs without an
    equilibrium ELR (diverged) have no place on the map and are left out.
    """
    sgd_summary = sgd_summary[sgd_summary["equilibrium_elr"].notna()]
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.4))
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
            ax.annotate(f"{row['lr']:g}/{row['weight_decay']:g}", (row["equilibrium_elr"], row[sgd_column]),
                        textcoords="offset points", xytext=(5, 4), fontsize="x-small", zorder=5)
        ax.set(yscale=yscale, ylabel=label, xlim=(all_elrs.min() / 1.5, all_elrs.max() * 1.5))
        set_elr_axis(ax, label="effective learning rate (ELR)")
        shade_regimes(ax, boundaries, spans)
    handles = [plt.Line2D([], [], color="0.35", label="sphere at a fixed ELR (mean over seeds)"),
               *[plt.Line2D([], [], marker="o", linestyle="none", color=REGIME_COLORS[r], markeredgecolor="black",
                            label=f"SGD run in regime {r} ({REGIME_NAMES[r]})") for r in (1, 2, 3)],
               plt.Line2D([], [], marker="s", linestyle="none", color="white", markeredgecolor="black",
                          label="square: affine BN, trainable last layer")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig


def plot_af_comparison(pairs: Sequence[tuple]) -> Figure:
    """The fully scale-invariant net (solid) against ``convnet_af`` (dashed) at the same (lr, wd), one
    colour per pair: angular update per step with its equilibrium value (dotted), effective learning
    rate of the convolution weights, and test error against the epoch. ``pairs`` holds
    ``(si_result or None, af_result)``. A run that diverged by collapsing (its ELR growing without
    bound) leaves the ELR panel, whose scale the other runs set, with an arrow at the epoch it leaves."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.9))
    colors = sns.color_palette("colorblind", len(pairs))
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
                                 xy=(leaves, elr_top), xytext=(leaves + 5, elr_top / 20), color=color, fontsize=8,
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
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center")
    return fig


# --------------------------------------------------------------------------- fine-tuning

def plot_fine_tuning(table, references: Mapping[str, float], boundaries: Sequence[float],
                     spans: Sequence[int]) -> Figure:
    """Test error after fine-tuning against the pre-training ELR: a dot per seed, the mean over seeds
    with its min-max band, the pre-training runs' own test error before fine-tuning (grey), and
    horizontal ``references`` (label -> test error); background: the sphere's regimes.

    ``table`` has one row per fine-tuned run with ``pretrain_elr``, ``finetuned_error`` and
    ``pretrained_error``.
    """
    fig, ax = plt.subplots(figsize=(FIGSIZE[0] * 1.5, FIGSIZE[1] * 1.1))
    per_elr = table.groupby("pretrain_elr")
    before = per_elr["pretrained_error"].mean()
    ax.plot(before.index, before.values, color="0.6", marker=".", label="pre-training alone (mean over seeds)")
    after = per_elr["finetuned_error"].agg(["mean", "min", "max"])
    ax.fill_between(after.index, after["min"], after["max"], color="black", alpha=0.15, linewidth=0)
    ax.plot(after.index, after["mean"], color="black", label="after fine-tuning (mean over seeds, min-max band)")
    ax.scatter(table["pretrain_elr"], table["finetuned_error"], s=14, color="black", zorder=3,
               label="after fine-tuning, each seed")
    for (label, value), style in zip(references.items(), ("-", (0, (1, 1)), "--")):
        ax.axhline(value, color="C3", linestyle=style, linewidth=1.2, label=label)
    elrs = table["pretrain_elr"]
    ax.set(xlim=(elrs.min() / 1.5, elrs.max() * 1.5), ylabel="test error (mean over the last epochs)")
    set_elr_axis(ax, label="pre-training ELR")
    shade_regimes(ax, boundaries, spans)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def plot_fine_tuning_curves(groups: Mapping[float, Sequence]) -> Figure:
    """Train loss (log) and test error against the fine-tuning epoch, one colour per pre-training ELR
    (mean over seeds, min-max band); ``groups`` maps the pre-training ELR to its fine-tuned runs."""
    from .regimes import seed_band

    colors = elr_colors(list(groups))
    fig, (loss_ax, error_ax) = plt.subplots(1, 2, figsize=(11.5, 4.0))
    for elr, results in groups.items():
        _band(loss_ax, seed_band(results, "train_loss"), colors[elr], f"pre-trained at ELR {elr:g}")
        _band(error_ax, seed_band(results, "test_error"), colors[elr])
    loss_ax.set(yscale="log", ylabel="train loss (train mode)", xlabel="fine-tuning epoch")
    error_ax.set(ylabel="test error", xlabel="fine-tuning epoch")
    fig.legend(*loss_ax.get_legend_handles_labels(), loc="outside right center")
    return fig
