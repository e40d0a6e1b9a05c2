"""Figures of the toy chapter (01): trajectories, individual ELRs, the ELR sweep, total vs individual constraint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import toy
from ..chapters.toy import ToyFindings
from .style import (
    ANGLE_FLOOR,
    COLUMN_WIDTH,
    FULL_WIDTH,
    LOG_FLOOR,
    REGIME_COLORS,
    THEORY_COLOR,
    TOY_RANGE_NAMES,
    group_colors,
    legend_below,
    mark_thresholds,
    set_elr_axis,
    shade_regimes,
)


def _theory_thresholds(alphas: Sequence[float]) -> dict[str, float]:
    return {r"$1/\Sigma\alpha$ (convergence threshold)": toy.convergence_threshold(alphas),
            r"$1/\alpha_\min$ (no group stable above)": toy.no_stable_group_threshold(alphas)}


def _regime_labels(trajectory: toy.Trajectory) -> list[str]:
    regimes = toy.theory_regime(trajectory.etas, trajectory.alphas)
    return [rf"$\eta$ = {eta:.3g} ({TOY_RANGE_NAMES[int(r)]})" for eta, r in zip(trajectory.etas, regimes)]


def _iteration_axis(ax: Axes) -> None:
    ax.set_xscale("log")
    ax.set_xlabel("iteration + 1")


def plot_toy_trajectories(trajectory: toy.Trajectory) -> Figure:
    """Left: F(t) relative to its random-direction level, one line per total ELR of the batch,
    coloured by the theory range of the ELR. Right: the angle moved per step on the sphere. Legend below."""
    fig, (ax_loss, ax_angle) = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.9))
    regimes = toy.theory_regime(trajectory.etas, trajectory.alphas)
    steps = trajectory.iterations + 1
    for run, (label, regime) in enumerate(zip(_regime_labels(trajectory), regimes)):
        color = REGIME_COLORS[int(regime)]
        ax_loss.plot(steps, np.maximum(trajectory.relative_loss[:, run], LOG_FLOOR), color=color, lw=0.7,
                     label=label)
        ax_angle.plot(steps, np.maximum(np.degrees(trajectory.angle[:, run]), ANGLE_FLOOR), color=color, lw=0.7)
    ax_loss.axhline(1.0, color="k", lw=1.0, ls="--", label="random direction in every group")
    ax_loss.set(yscale="log", ylim=(LOG_FLOOR / 3, 3), ylabel=r"$F(\theta_t)$ / random-direction level")
    ax_angle.set(yscale="log", ylim=(ANGLE_FLOOR / 3, 360), ylabel="angle moved per step (°)")
    for ax in (ax_loss, ax_angle):
        _iteration_axis(ax)
    legend_below(fig, *ax_loss.get_legend_handles_labels(), ncols=2)
    return fig


def plot_individual_elrs(trajectory: toy.Trajectory) -> Figure:
    """One panel per total ELR: the individual ELRs ``eta_i(t) = eta / rho_i(t)`` of every group
    (solid) against their stability thresholds ``1/alpha_i`` (dashed, same colour); three panels a row,
    full-width, the legend below."""
    n_runs, n_groups = len(trajectory.etas), len(trajectory.alphas)
    n_rows, n_columns = -(-n_runs // 3), min(n_runs, 3)
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(FULL_WIDTH, 2.9 * n_rows + 0.9), squeeze=False)
    for ax in axes.flat[n_runs:]:
        ax.set_axis_off()
    colors = group_colors(n_groups)
    regimes = toy.theory_regime(trajectory.etas, trajectory.alphas)
    steps = trajectory.iterations + 1
    for run, ax in zip(range(n_runs), axes.flat):
        for group in range(n_groups):
            alpha = trajectory.alphas[group]
            ax.plot(steps, trajectory.elrs[:, run, group], color=colors[group], lw=0.6,
                    label=rf"$\eta_{group + 1}$ ($\alpha_{group + 1}$ = {alpha:g})")
            ax.axhline(1.0 / alpha, color=colors[group], ls="--", lw=1.3,
                       label=rf"$1/\alpha_{group + 1}$ = {1 / alpha:.3g}")
        regime = int(regimes[run])
        ax.set_title(rf"$\eta$ = {trajectory.etas[run]:.3g}, {TOY_RANGE_NAMES[regime]}",
                     color=REGIME_COLORS[regime])
        ax.set_yscale("log")
        _iteration_axis(ax)
    for ax in axes[:, 0]:
        ax.set_ylabel(r"individual ELR $\eta_i = \eta/\|\theta_i\|^2$")
    legend_below(fig, *axes[0, 0].get_legend_handles_labels(), ncols=4)
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
    fig, (ax_loss, ax_k) = plt.subplots(2, 1, figsize=(FULL_WIDTH, 6.4), sharex=True, height_ratios=[1.2, 1])
    level = toy.random_direction_level(main.alphas, main.dim)
    shades = sns.color_palette("Greys", len(extra or {}) + 2)[2:]
    for (label, result), shade in zip((extra or {}).items(), shades):
        ax_loss.plot(result.etas, result.late_relative, color=shade, lw=1.3, label=label)
    ax_loss.plot(main.etas, main.late_relative, "o", ms=3, color="k", label=main_label, zorder=3)
    ax_loss.plot(main.etas, toy.two_cycle_loss(main.etas, main.alphas) / level, color=THEORY_COLOR, lw=1.2,
                 label=r"every group on its 2-cycle: $(\Sigma\alpha - 1/\eta)/2$", zorder=4)
    ax_loss.axhline(1.0, color="k", ls="--", lw=1.0, label="random direction in every group")
    ax_loss.axhline(random_walk_fraction, color="k", ls=":", lw=1.0,
                    label=f"{random_walk_fraction:g} of it (random-walk criterion)")
    ax_loss.set(ylim=(-0.02, 1.08), ylabel="late-time $F$ / random-direction level")
    colors = group_colors(len(main.alphas))
    for group, alpha in enumerate(main.alphas):
        ax_k.plot(main.etas, main.late_elrs[:, group] * alpha, ".", ms=3.5, color=colors[group],
                  label=rf"group {group + 1}, $\alpha_{group + 1}$ = {alpha:g}")
    ax_k.plot(main.etas, main.etas * main.alphas.sum(), color=THEORY_COLOR, lw=1.0,
              label=r"$\eta\,\Sigma\alpha$ (all groups equalised)")
    ax_k.axhline(1.0, color="k", ls="--", lw=1.0, label=r"$\eta_i\alpha_i = 1$ (stability threshold)")
    ax_k.set(yscale="log", ylabel=r"late-time $\eta_i\,\alpha_i$ (geometric mean)")
    set_elr_axis(ax_k)
    for ax in (ax_loss, ax_k):
        ax.set_xlim(main.etas.min(), main.etas.max())
        shade_regimes(ax, sorted(_theory_thresholds(main.alphas).values()), labels=ax is ax_loss)
        mark_thresholds(ax, _theory_thresholds(main.alphas), legend=ax is ax_loss)
    ax_loss.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax_k.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_constraint_comparison(total: toy.Sweep, individual: toy.Sweep, radii_sq: Sequence[float]) -> Figure:
    """Total constraint ``||theta|| = 1`` against individual constraints ``||theta_i||^2 = r_i^2``.

    Left: late-time F / random-direction level against the total ELR, with the thresholds
    ``1/sum alpha`` (total) and ``min r_i^2/alpha_i`` (individual). Right: every group's late-time
    ``sin^2 phi_i`` against its late-time ``eta_i alpha_i``, with the one-group 2-cycle curve.
    """
    fig, (ax_eta, ax_k) = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.6))
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
    ax_eta.legend(loc="lower right")
    k = np.logspace(-3, 4, 400)
    for name, (result, color, marker, _) in styles.items():
        ax_k.plot((result.late_elrs * result.alphas).ravel(), result.late_group_sin2.ravel(), marker, ms=2.5,
                  color=color, alpha=0.5, label=f"{name}: each group")
    ax_k.plot(k, toy.two_cycle_sin2(k), color=THEORY_COLOR, lw=1.2, label=r"2-cycle: $(1 - 1/(\eta_i\alpha_i))/2$")
    ax_k.axvline(1.0, color="k", ls=":", lw=1.0)
    set_elr_axis(ax_k, label=r"late-time $\eta_i\,\alpha_i$ (geom. mean; 1: threshold)")
    ax_k.set(ylabel=r"late-time $\sin^2\varphi_i$ (mean)", xlim=(1e-3, 1e4))
    ax_k.legend(loc="lower right")
    return fig


def figures(findings: ToyFindings) -> dict[str, Figure]:
    """The chapter's four figures under their glue names."""
    return {"fig_toy_trajectories": plot_toy_trajectories(findings.examples),
            "fig_toy_elrs": plot_individual_elrs(findings.examples),
            "fig_toy_sweep": plot_toy_sweep(findings.main, findings.noisy, main_label=findings.main_label,
                                            random_walk_fraction=findings.params.random_walk_fraction),
            "fig_toy_constraints": plot_constraint_comparison(findings.main, findings.individual, findings.split)}
