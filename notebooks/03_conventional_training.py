# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Conventional training: SGD with weight decay picks its regime
#
# **Claim (paper §6; Li, Lyu & Arora 2020; Wan et al. 2021).** Train the same scale-invariant network
# with plain SGD and weight decay in the full parameter space. The norm of the weights is no longer
# fixed, but it relaxes to an equilibrium in about $1/(\mathrm{lr}\cdot\mathrm{wd})$ steps, where the
# angular update per step is $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}/(1+\mu)}$ ($\mu$ the momentum) and the
# effective learning rate $\mathrm{lr}/\|w\|^2$ settles at a level (or, at low
# $\mathrm{lr}\cdot\mathrm{wd}$, oscillates periodically around one). That level depends on the intrinsic
# learning rate $\mathrm{lr}\cdot\mathrm{wd}$ alone, so runs with equal $\mathrm{lr}\cdot\mathrm{wd}$
# behave alike; and the run then behaves as training on the sphere at its equilibrium ELR does, in that
# ELR's regime of the three-regimes chapter.
#
# **Setting and runtime.** ConvNetSI of width {glue:text}`width` (every convolution feeds a BatchNorm
# without affine terms, the last layer frozen) on {glue:md}`data_md`, batch {glue:text}`batch_size`,
# {glue:text}`epochs` epochs, SGD with momentum {glue:text}`momentum` on the grid of learning rates
# {glue:md}`lrs_md` × weight decays {glue:md}`wds_md` ({glue:text}`n_pairs` pairs,
# $\mathrm{lr}\cdot\mathrm{wd}$ from {glue:text}`lr_wd_min:g` to {glue:text}`lr_wd_max:g`), and the
# `convnet_af` variant (affine BatchNorm, trainable last layer) at {glue:text}`n_af` of the pairs;
# {glue:text}`n_seeds` init seed(s), preset {glue:md}`preset_md`. The runs took
# {glue:text}`core_hours:.2f` core-hours of training; this page reads them, and the three-regimes
# chapter's runs of the same preset, from the result store in {glue:text}`runtime_s:.0f` s.

# %% tags=["parameters"]
preset = "cpu"  # name of the preset that set these values
dataset = "fashion_mnist"  # fashion_mnist, cifar10 or cifar100 (as in the three-regimes chapter)
train_size = 10000  # first N training images (0: all of them)
width = 8  # ConvNetSI width: channels of the first conv layer
batch_size = 128  # images per step
epochs = 150  # epochs per run
dense_metric_epochs = 20  # full metrics (train-mode loss, test error, effective gradient) every epoch up to here
metric_every = 5  # ... then every this many epochs
lrs = [0.1, 0.3, 1.0]  # SGD learning rates of the grid
weight_decays = [1e-3, 3e-3, 1e-2]  # weight decays of the grid (lambda: the step adds -lr * lambda * w)
momentum = 0.0  # heavy-ball momentum of SGD
af_pairs = [[0.1, 1e-3], [1.0, 1e-2]]  # [lr, weight decay] pairs also trained with convnet_af
seeds = [0]  # init seeds (the frozen last layer is shared by all runs)
tolerance = 0.2  # an angular update within this relative distance of its theory counts as at equilibrium

# %% tags=["hide-input"]
import math
import time

started = time.perf_counter()

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown
from myst_nb import glue

from sphere_regimes import conventional, experiments, plans, plotting, presets, regimes, report
from sphere_regimes.data import DATASET_INFO, load_raw

plotting.set_style()
params = presets.collect(globals(), "03_conventional_training")
results = plans.load_results("03_conventional_training", params)
num_classes = DATASET_INFO[dataset].num_classes
si_results = [r for r in results if r.config.model == "convnet_si"]
af_results = [r for r in results if r.config.model == "convnet_af"]
summary = conventional.sgd_summary(results, num_classes, tolerance)

sphere_params = presets.resolved_params(preset, "02_three_regimes")
sphere_results = experiments.three_regimes_runs(sphere_params).grid
sphere_summary = regimes.run_summary(sphere_results, num_classes)
boundaries, spans = regimes.regime_map(sphere_summary)
summary["map_regime"] = [regimes.regime_at(sphere_summary, elr) if elr > 0 else math.nan
                         for elr in summary["equilibrium_elr"]]  # NaN: a diverged run has no equilibrium
steps_per_epoch = math.ceil((train_size or len(load_raw(dataset).train_labels)) / batch_size)
summary["relaxation_epochs"] = 1 / (2 * summary["lr_wd"] * steps_per_epoch)
core_hours = report.core_hours(results)

glue("preset_md", Markdown(f"`{preset}`"), display=False)
glue("data_md", Markdown(report.data_description(dataset, train_size)), display=False)
glue("width", width, display=False)
glue("batch_size", batch_size, display=False)
glue("epochs", epochs, display=False)
glue("momentum", momentum, display=False)
glue("lrs_md", Markdown(", ".join(f"{lr:g}" for lr in lrs)), display=False)
glue("wds_md", Markdown(", ".join(f"{wd:g}" for wd in weight_decays)), display=False)
glue("n_pairs", len(lrs) * len(weight_decays), display=False)
glue("lr_wd_min", float(summary["lr_wd"].min()), display=False)
glue("lr_wd_max", float(summary["lr_wd"].max()), display=False)
glue("n_af", len(af_pairs), display=False)
glue("n_seeds", len(seeds), display=False)
glue("core_hours", core_hours, display=False)
glue("steps_per_epoch", steps_per_epoch, display=False)
glue("tolerance_pct", 100 * tolerance, display=False)
glue("sphere_epochs", sphere_params["epochs"], display=False)

# %% [markdown]
# ## The angular update per step reaches $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}}$
#
# For scale-invariant weights the gradient is orthogonal to $w$, so a step changes the squared norm by
# $-(2\,\mathrm{lr}\,\mathrm{wd} - \mathrm{lr}^2\mathrm{wd}^2)\|w\|^2 + \mathrm{lr}^2\|g\|^2$: the norm stops
# changing when the angle a step turns $w$ by, $\mathrm{lr}\,\|g\|/\|w\|$, equals
# $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}}$ (to first order). Far above the equilibrium the squared norm
# shrinks by $(1-\mathrm{lr}\,\mathrm{wd})^2$ per step, so it takes about
# $\ln(\|w_0\|^2/\|w_\mathrm{eq}\|^2)/(2\,\mathrm{lr}\,\mathrm{wd})$ steps to get there
# ({glue:text}`steps_per_epoch` steps per epoch here).
#
# ```{glue:figure} fig_sgd_equilibrium
# :name: fig-sgd-equilibrium
#
# SGD with weight decay on the fully scale-invariant net, one line per (lr, wd): colour by
# $\mathrm{lr}\cdot\mathrm{wd}$, line style by lr. Top left: the mean angular update per step of each
# epoch, with its equilibrium value $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}/(1+\mu)}$ (dotted, same colour). Top
# right: the effective learning rate $\mathrm{lr}/\|w\|^2$. Bottom: the norm of the scale-invariant
# weights and the mean effective gradient norm (gradient norm times weight norm, on the full-metric
# schedule).
# ```

# %% tags=["hide-input"]
fig = plotting.conventional.plot_sgd_equilibrium(si_results)
glue("fig_sgd_equilibrium", fig, display=False)
plt.close(fig)


def time_text(row) -> str:
    """When one run's angular update reached its theory value, in words."""
    if math.isnan(row.first_epoch):
        reached = f"never within {100 * tolerance:.0f}%"
    elif math.isnan(row.settled_epoch):
        reached = f"first within {100 * tolerance:.0f}% at epoch {row.first_epoch:.0f}, outside again at the end"
    else:
        reached = f"within {100 * tolerance:.0f}% from epoch {row.settled_epoch:.0f} on (first at {row.first_epoch:.0f})"
    return f"lr {row.lr:g}, wd {row.weight_decay:g}: {reached} (1/(2 lr·wd) = {row.relaxation_epochs:.2g} epochs)"


glue("equilibrium_times_md", Markdown("; ".join(time_text(row) for row in summary[summary["model"] == "convnet_si"]
                                                .itertuples()) + "."), display=False)

# %% [markdown]
# **Time to equilibrium.** A run is counted as having reached the equilibrium at the first epoch whose
# mean angular update per step is within {glue:text}`tolerance_pct:.0f`% of
# $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}/(1+\mu)}$, and as staying there from the first epoch after which every
# epoch is within it ("never" when the last epoch is outside, as for a run that converges and slows down,
# or one whose norm still shrinks), against the relaxation time $1/(2\,\mathrm{lr}\,\mathrm{wd})$ steps:
# {glue:md}`equilibrium_times_md`
#
# The table compares the measured angular update (median over the last quarter of the epochs) with the
# theory for every run, with the equilibrium ELR (median of $\mathrm{lr}/\|w\|^2$ over the last quarter, and
# its minimum and maximum there), the regime each run is in by the three-regimes chapter's rule, and the
# regime that chapter's fixed-ELR map gives its equilibrium ELR.

# %%
columns = {"model": "model", "lr": "lr", "weight_decay": "wd", "lr_wd": "lr·wd", "theory_angle": "theory (rad)",
           "late_angle": "measured (rad)", "angle_ratio": "measured / theory", "first_epoch": "first within",
           "settled_epoch": "within from", "relaxation_epochs": "1/(2 lr·wd) (epochs)",
           "equilibrium_elr": "equilibrium ELR", "elr_min": "ELR min", "elr_max": "ELR max", "regime": "regime",
           "map_regime": "regime of its ELR", "late_train_loss": "stationary train loss",
           "test_error": "final test error", "best_test_error": "best test error"}
table = summary[list(columns)].rename(columns=columns)
table.style.hide(axis="index").format(
    {"lr": "{:g}", "wd": "{:g}", "lr·wd": "{:.3g}", "theory (rad)": "{:.4f}", "measured (rad)": "{:.4f}",
     "measured / theory": "{:.2f}", "first within": "{:.0f}", "within from": "{:.0f}",
     "1/(2 lr·wd) (epochs)": "{:.3g}", "equilibrium ELR": "{:.3g}", "ELR min": "{:.3g}", "ELR max": "{:.3g}",
     "stationary train loss": "{:.3g}", "final test error": "{:.3f}", "best test error": "{:.3f}"}, na_rep="never")

# %%
si = summary[summary["model"] == "convnet_si"]
at_theory = si[(si["angle_ratio"] - 1).abs() <= tolerance]
reached = si[si["first_epoch"].notna()]
spread = si.assign(elr_range=si["elr_max"] / si["elr_min"])
equal_elr = conventional.equal_lr_wd_spread(si, "equilibrium_elr")
equal_angle = conventional.equal_lr_wd_spread(si, "late_angle")
equal_loss = conventional.equal_lr_wd_spread(si, "late_train_loss")
placed = summary[summary["map_regime"].notna()]
matches = placed[placed["regime"] == placed["map_regime"]]
mismatches = placed[placed["regime"] != placed["map_regime"]]

glue("n_si", len(si), display=False)
glue("n_reached", len(reached), display=False)
glue("n_at_theory", len(at_theory), display=False)
off_theory = si[(si["angle_ratio"] - 1).abs() > tolerance]
glue("off_theory_md", Markdown("; the others stay below it: " + ", ".join(
    f"{r.angle_ratio:.2f} at lr·wd {r.lr_wd:.3g} (lr {r.lr:g})" for r in off_theory.itertuples())
    if len(off_theory) else ""), display=False)
glue("angle_ratio_md", Markdown(", ".join(f"{r.angle_ratio:.2f} (lr {r.lr:g}, wd {r.weight_decay:g})"
                                           for r in si.itertuples())), display=False)
glue("elr_range_md", Markdown(", ".join(f"×{r.elr_range:.2g} (lr·wd {r.lr_wd:.3g}, lr {r.lr:g})"
                                         for r in spread.sort_values(["lr_wd", "lr"]).itertuples())), display=False)


def agreement(spread_table, what: str) -> str:
    return "; ".join(f"{what} at lr·wd {row.lr_wd:g} (lr {', '.join(f'{lr:g}' for lr in row.lrs)}): "
                     f"{', '.join(f'{v:.3g}' for v in getattr(row, spread_table.columns[3]))}, "
                     f"a ratio of {row.ratio:.2f}" for row in spread_table.itertuples())


glue("n_equal_groups", len(equal_elr), display=False)
glue("equal_elr_md", Markdown(agreement(equal_elr, "equilibrium ELR") or "no two pairs share lr·wd"), display=False)
glue("equal_angle_md", Markdown(agreement(equal_angle, "angular update") or "–"), display=False)
glue("equal_loss_md", Markdown(agreement(equal_loss, "stationary train loss") or "–"), display=False)
glue("max_equal_ratio", float(equal_elr["ratio"].max()) if len(equal_elr) else float("nan"), display=False)
glue("n_runs", len(placed), display=False)
glue("n_matches", len(matches), display=False)

# %% [markdown]
# **Measured against theory.** Over the last quarter of the epochs the angular update is within
# {glue:text}`tolerance_pct:.0f`% of $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}/(1+\mu)}$ for {glue:text}`n_at_theory`
# of the {glue:text}`n_si` scale-invariant runs, and {glue:text}`n_reached` of them come within it at some
# epoch; measured / theory: {glue:md}`angle_ratio_md`. Over the same last quarter the effective learning
# rate moves between its minimum and maximum by a factor {glue:md}`elr_range_md` (near 1: settled; large:
# oscillating or still drifting, see the figure).
#
# ## Equal $\mathrm{lr}\cdot\mathrm{wd}$, equal dynamics?
#
# {glue:text}`n_equal_groups` values of $\mathrm{lr}\cdot\mathrm{wd}$ are shared by several learning rates.
# Their {glue:md}`equal_elr_md`. The {glue:md}`equal_angle_md`. The {glue:md}`equal_loss_md`. Runs of equal
# $\mathrm{lr}\cdot\mathrm{wd}$ start from the same point but not at the same effective learning rate: the
# larger learning rate first inflates the norm more, and the equal-$\mathrm{lr}\cdot\mathrm{wd}$ runs can only
# agree once that excess has decayed (figure above, bottom left).
#
# ```{glue:figure} fig_sgd_training
# :name: fig-sgd-training
#
# Train loss (train mode, log) and test error of the same runs against the epoch, in the styles of
# {numref}`fig-sgd-equilibrium`.
# ```

# %% tags=["hide-input"]
fig = plotting.conventional.plot_sgd_training(si_results)
glue("fig_sgd_training", fig, display=False)
plt.close(fig)

# %% [markdown]
# ## Where the equilibrium ELR falls on the regime map
#
# The three-regimes chapter trained the same network on the same data on the sphere at fixed ELRs, for
# {glue:text}`sphere_epochs` epochs (same preset). Its map, with boundaries at the geometric midpoints of the ELR brackets where the
# regime changes, is the background of {numref}`fig-sgd-regime-map`; every SGD run sits at its equilibrium
# ELR, coloured by the regime the run itself is in. The paper's expectation: stable convergence with
# periodic destabilisation at low $\mathrm{lr}\cdot\mathrm{wd}$ (regime 1), a chaotic equilibrium in the
# middle (regime 2), divergence at high $\mathrm{lr}\cdot\mathrm{wd}$ (regime 3).
#
# ```{glue:figure} fig_sgd_regime_map
# :name: fig-sgd-regime-map
#
# The fixed-ELR regime map (background: the sphere runs' regimes; grey: their stationary train loss and
# final test error, mean over seeds and each seed) with every SGD run at its equilibrium ELR (median over
# the last quarter of the epochs; bar: its minimum to maximum there), in the colour of the SGD run's own
# regime, labelled lr/wd.
# ```

# %% tags=["hide-input"]
fig = plotting.conventional.plot_sgd_regime_map(sphere_summary, summary, boundaries, spans)
glue("fig_sgd_regime_map", fig, display=False)
plt.close(fig)
glue("map_md", Markdown("; ".join(
    f"{'Af ' if r.model.endswith('_af') else ''}lr {r.lr:g}, wd {r.weight_decay:g}: ELR {r.equilibrium_elr:.3g}, "
    f"map regime {r.map_regime:.0f}, own regime {r.regime}" for r in placed.itertuples()) + "."), display=False)
diverged = summary[summary["map_regime"].isna()]
glue("diverged_md", Markdown(" ".join(
    f"{'Af ' if r.model.endswith('_af') else ''}lr {r.lr:g}, wd {r.weight_decay:g} diverged at epoch "
    f"{r.diverged_epoch:.0f} and has no equilibrium ELR, so no place on the map." for r in diverged.itertuples())),
     display=False)
boundary_12 = boundaries[0] if boundaries else math.nan
sphere_late_loss = sphere_summary.groupby("elr")["late_train_loss"].mean()
near = sphere_late_loss[(sphere_late_loss.index >= mismatches["equilibrium_elr"].min() / 1.5)
                        & (sphere_late_loss.index < boundary_12)] if len(mismatches) else sphere_late_loss[:0]
glue("mismatch_md", Markdown(
    f"The {len(mismatches)} runs whose own regime differs from the map's sit at equilibrium ELRs of "
    f"{mismatches['equilibrium_elr'].min():.2g} to {mismatches['equilibrium_elr'].max():.2g} (the map's 1→2 boundary "
    f"is at {boundary_12:.2g}); over the last quarter their train loss swings between "
    + ", ".join(f"{r.late_loss_min:.2g} and {r.late_loss_max:.2g} (lr {r.lr:g}, wd {r.weight_decay:g})"
                for r in mismatches.itertuples())
    + ", while the sphere runs at fixed ELRs "
    + ", ".join(f"{elr:.2g}" for elr in near.index)
    + " settle at mean second-half losses of " + ", ".join(f"{v:.2g}" for v in near.values) + "."
    if len(mismatches) else "Every run with an equilibrium is in the regime of its equilibrium ELR."), display=False)

# %% [markdown]
# The run's own regime is the map's regime at its equilibrium ELR for {glue:text}`n_matches` of the
# {glue:text}`n_runs` runs with an equilibrium: {glue:md}`map_md` {glue:md}`diverged_md`
#
# {glue:md}`mismatch_md` Below the sphere's 1→2 boundary, SGD with weight decay need not converge as the
# sphere run at the same ELR does: while the loss falls the gradient shrinks, weight decay shrinks the
# norm, the effective learning rate creeps up until the run destabilises (a loss and test-error spike in
# {numref}`fig-sgd-training`, a jump of the norm in {numref}`fig-sgd-equilibrium`), and the cycle starts
# again. This is the paper's "stable convergence with periodic destabilisation" at low
# $\mathrm{lr}\cdot\mathrm{wd}$. The three-regimes chapter's rule, made for fixed-ELR runs, reads such a run
# as regime 2 because its weights never stop turning (median angle per epoch ≥ 3° over the last quarter);
# a run that spends long enough converging between spikes counts as regime 1.
#
# ## The `Af` variant: affine BatchNorm and a trainable last layer
#
# ```{glue:figure} fig_af_comparison
# :name: fig-af-comparison
#
# The fully scale-invariant net (solid) and the `convnet_af` variant (dashed) at the same (lr, wd): the
# angular update per step of the convolution weights (dotted: its equilibrium value), their effective
# learning rate and the test error.
# ```

# %% tags=["hide-input"]
pairs = []
for af in af_results:
    twins = [r for r in si_results if (r.config.lr, r.config.weight_decay, r.config.seed)
             == (af.config.lr, af.config.weight_decay, af.config.seed)]
    pairs.append((twins[0] if twins else None, af))
fig = plotting.conventional.plot_af_comparison(pairs)
glue("fig_af_comparison", fig, display=False)
plt.close(fig)
af_rows = summary[summary["model"] == "convnet_af"]
si_index = si.set_index(["lr", "weight_decay", "seed"])
af_text = []
for row in af_rows.itertuples():
    key = (row.lr, row.weight_decay, row.seed)
    twin = (f" (ConvNetSI: {si_index.loc[key, 'angle_ratio']:.2f}, ELR {si_index.loc[key, 'equilibrium_elr']:.3g}, "
            f"regime {si_index.loc[key, 'regime']}, test error {si_index.loc[key, 'test_error']:.3f})"
            if key in si_index.index else "")
    if row.status == "diverged":
        dead = (f"its loss sat at ln {num_classes} = {math.log(num_classes):.3f} (a constant output) from epoch "
                f"{row.constant_output_from:.0f}, " if row.constant_output_from > 0 else "")
        af_text.append(f"lr {row.lr:g}, wd {row.weight_decay:g} collapsed: {dead}test error {row.test_error:.3f}, and "
                       f"the run ended diverged at epoch {row.diverged_epoch:.0f}, when the norm of its convolution "
                       f"weights underflowed to 0{twin}")
        continue
    af_text.append(f"lr {row.lr:g}, wd {row.weight_decay:g}: measured / theory {row.angle_ratio:.2f}, equilibrium "
                   f"ELR {row.equilibrium_elr:.3g}, regime {row.regime}, test error {row.test_error:.3f}{twin}")
glue("af_md", Markdown("; ".join(af_text) + "." if af_text else "no Af runs in this preset."), display=False)

# %% [markdown]
# With affine BatchNorm and a trainable last layer the network is no longer fully scale-invariant, but
# its convolution weights still are, and weight decay still drives their norm to the same kind of
# equilibrium: {glue:md}`af_md`
#
# A collapse is how divergence ends when weight decay also acts on non-scale-invariant parameters: at a
# high ELR the run loses its signal, the last layer and the BatchNorm affine weights then receive no
# useful gradient and decay, the output stops depending on the input, no gradient reaches the
# convolution weights, and weight decay alone shrinks them by $(1-\mathrm{lr}\cdot\mathrm{wd})$ per step,
# their effective learning rate growing without bound (the straight line in the middle panel). The
# fully scale-invariant net at the same (lr, wd), whose last layer is frozen, cannot lose its output
# this way.
#
# ## Which claims held
#
# - Angular update $\to\sqrt{2\,\mathrm{lr}\,\mathrm{wd}}$: within {glue:text}`tolerance_pct:.0f`% over the
#   last quarter for {glue:text}`n_at_theory` of {glue:text}`n_si` runs ({glue:text}`n_reached` reach it at
#   some epoch){glue:md}`off_theory_md`. A run that converges between destabilisations turns slower than
#   the equilibrium while it converges, and a run whose norm still drifts has not reached it.
# - Equal $\mathrm{lr}\cdot\mathrm{wd}$ behave alike: the equilibrium ELRs of runs sharing
#   $\mathrm{lr}\cdot\mathrm{wd}$ differ by a factor of at most {glue:text}`max_equal_ratio:.2f`.
# - The run is in the regime of its equilibrium ELR: {glue:text}`n_matches` of {glue:text}`n_runs` runs with
#   an equilibrium; the others destabilise periodically below the sphere's 1→2 boundary (see above).
#
# ## Key numbers

# %%
# NBVAL_CHECK_OUTPUT
for row in summary.itertuples():
    place = f"regime of its equilibrium ELR {row.map_regime:.0f}" if row.map_regime > 0 else \
        f"diverged at epoch {row.diverged_epoch:.0f}"
    print(f"{row.model} lr {row.lr:g} wd {row.weight_decay:g} seed {row.seed}: regime {row.regime}, {place}")
print("lr*wd shared by:", "; ".join(f"{row.lr_wd:g} (lr {', '.join(f'{lr:g}' for lr in row.lrs)})"
                                     for row in equal_elr.itertuples()))

# %%
glue("runtime_s", time.perf_counter() - started, display=False)
