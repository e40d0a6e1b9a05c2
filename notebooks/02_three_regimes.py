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
# # The three regimes on real data
#
# **Claim (paper §4, Figure 1).** Train a fully scale-invariant network on the sphere at a fixed effective
# learning rate (ELR) from one common initial point. Depending on the ELR alone, training falls into one of
# three regimes: (1) **convergence**: the train loss keeps falling towards zero, and the best test error is
# reached at the top of this range; (2) **chaotic equilibrium**: the train loss and the effective gradient
# norm settle at stationary levels, the loss level rising with the ELR, while the weights keep moving;
# (3) **divergence**: the loss stays at its initial level, the network predicts at chance, and the
# effective gradient is huge (a random walk on the sphere).
#
# **Setting and runtime.** ConvNetSI of width {glue:text}`width` on {glue:md}`data_md`, batch
# {glue:text}`batch_size`, {glue:text}`epochs` epochs, {glue:text}`n_elrs` ELRs × {glue:text}`n_seeds` init
# seeds (the frozen last layer is shared), preset {glue:md}`preset_md`. The runs took
# {glue:text}`core_hours:.2f` core-hours of training; this page reads them from the result store in
# {glue:text}`runtime_s:.0f` s.

# %% tags=["parameters"]
preset = "cpu"  # name of the preset that set these values
dataset = "fashion_mnist"  # fashion_mnist, cifar10 or cifar100
train_size = 10000  # first N training images (0: all of them)
width = 8  # ConvNetSI width: channels of the first conv layer
batch_size = 128  # images per step
epochs = 150  # epochs per run
dense_metric_epochs = 20  # full metrics (train-mode loss, test error, effective gradient) every epoch up to here
metric_every = 5  # ... then every this many epochs
sharpness_every = 10  # Hutchinson sharpness every this many epochs (0: never)
elrs = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1]  # effective learning rates of the grid
seeds = [0, 1, 2]  # init seeds (the last layer is shared by all runs)
bisection_steps = 1  # rounds of geometric bisection of the ELR brackets where the regime changes
individual_elrs = [5e-3, 1e-1]  # ELRs also trained under the individual (per-layer) norm constraint, first seed
pilot_widths = [4, 8, 16, 32]  # appendix: widths timed on this chapter's training set
pilot_train_sizes = [0]  # appendix: training-set sizes timed at this chapter's width (0: all images)
pilot_epochs = 2  # appendix: epochs of each pilot run (full metrics every epoch)

# %% tags=["hide-input"]
import time

started = time.perf_counter()

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from sphere_regimes import experiments, plans, plotting, presets, regimes, report
from sphere_regimes.data import DATASET_INFO
from sphere_regimes.store import RunStore

plotting.set_style()
params = presets.collect(globals(), "02_three_regimes")
results, individual, pilot = experiments.three_regimes_runs(params)
num_classes = DATASET_INFO[dataset].num_classes
chance_error = 1 - 1 / num_classes
summary = regimes.run_summary(results, num_classes)
groups = regimes.by_elr([r for r in results if r.config.elr in elrs])  # the grid; bisection runs join the table
regime_of = summary.groupby("elr")["regime"].agg(lambda r: int(r.mode().max())).to_dict()
initial = results[0].metrics.loc[0]
core_hours = report.core_hours(results)

glue("preset_md", Markdown(f"`{preset}`"), display=False)
glue("data_md", Markdown(report.data_description(dataset, train_size)), display=False)
glue("width", width, display=False)
glue("batch_size", batch_size, display=False)
glue("epochs", epochs, display=False)
glue("n_elrs", len(elrs), display=False)
glue("n_seeds", len(seeds), display=False)
glue("core_hours", core_hours, display=False)
glue("initial_loss", float(initial["train_loss"]), display=False)
glue("initial_grad", float(initial["effective_grad_norm"]), display=False)

# %% [markdown]
# ## Figure 1: the three regimes
#
# Every run starts from the same point: train loss {glue:text}`initial_loss:.1f` (the frozen last layer has
# norm 10) and mean effective gradient norm {glue:text}`initial_grad:.0f`. The metrics follow the paper's
# definitions: train loss in train mode (BatchNorm batch statistics) on un-augmented data, test error in eval
# mode, and the mean over minibatches of the gradient norm of the scale-invariant weights times their norm.
#
# ```{glue:figure} fig_regime_curves
# :name: fig-regime-curves
#
# Train loss (log), test error and mean effective gradient norm (log) against the epoch, mean over the
# seeds with the min-max band, one colour per ELR (the legend gives each ELR's regime, by the rule below).
# Bottom right: every run's path in the train loss - effective gradient plane from the common initial
# point (star).
# ```

# %% tags=["hide-input"]
fig = plotting.three_regimes.plot_regime_curves(groups, regime_of)
glue("fig_regime_curves", fig, display=False)
plt.close(fig)

# %% [markdown]
# ## Which regime each run is in
#
# The rule (`sphere_regimes.regimes.classify`) reads the end of a finished run: regime 3 if its train error
# over the second half is within 0.1 of chance; regime 2 if the weights keep moving, i.e. the median angle they
# turn per epoch on the sphere over the last quarter of the run (`late_angle_deg`) is at least 3° while the
# loss is above $10^{-3}$; regime 1 otherwise, since a converging run slows to a stop as its gradient vanishes.
# Trend tests on the loss are fooled by the spikes and dips of the chaotic equilibrium; the angle is not (the
# table also gives `decay_exponent`, minus the slope of $\log L$ against $\log t$ over the second half, as a
# diagnostic). The label depends on the epoch budget: near the 1/2 boundary convergence can take very
# many epochs, so a run that would converge later is labelled 2 here.

# %%
table = summary.groupby("elr").agg(
    regimes=("regime", lambda r: "".join(str(v) for v in r)), late_angle_deg=("late_angle_deg", "mean"), decay_exponent=("decay_exponent", "mean"),
    train_loss=("train_loss", "mean"), test_error=("test_error", "mean"),
    test_error_std=("test_error", "std"), best_test_error=("best_test_error", "mean"),
    effective_grad_norm=("effective_grad_norm", "mean"), angle_epoch_deg=("angle_epoch_deg", "mean"),
    cos_to_init=("cos_to_init", "mean"))
table.style.format({"late_angle_deg": "{:.2g}", "decay_exponent": "{:.2f}", "train_loss": "{:.3g}", "test_error": "{:.3f}", "test_error_std": "{:.3f}",
                    "best_test_error": "{:.3f}", "effective_grad_norm": "{:.3g}", "angle_epoch_deg": "{:.2g}",
                    "cos_to_init": "{:.2f}"})

# %%
boundaries = regimes.grid_boundaries(summary)
boundary_elrs = [float(np.sqrt(low * high)) for _, _, low, high in boundaries]
best_elr = float(summary.groupby("elr")["best_test_error"].mean().idxmin())
glue("boundaries_md", Markdown("; ".join(f"{a}→{b} between ELR {low:g} and {high:g}"
                                         for a, b, low, high in boundaries) or "no regime change in this grid"),
     display=False)
glue("best_elr", best_elr, display=False)
glue("bisection_steps", bisection_steps, display=False)
glue("best_regime", regime_of[best_elr], display=False)
glue("best_test_error_pct", 100 * float(summary.groupby("elr")["best_test_error"].mean().min()), display=False)

# %% [markdown]
# **Boundaries found** (on the grid, narrowed by {glue:text}`bisection_steps` rounds of geometric bisection,
# each a run per seed at the geometric midpoint of every bracket where the majority regime changes):
# {glue:md}`boundaries_md` (the paper, ConvNetSI-32 on CIFAR-10: 1→2 between 5e-4 and
# 1e-3, 2→3 between 5e-3 and 5e-2). The lowest test error (best epoch, mean over seeds,
# {glue:text}`best_test_error_pct:.1f`%) is reached at ELR {glue:text}`best_elr:g`, in regime
# {glue:text}`best_regime`.
#
# ## The regimes' signatures
#
# ```{glue:figure} fig_regime_properties
# :name: fig-regime-properties
#
# End-of-training metrics against the ELR, one dot per run in its regime's colour, the line the mean over
# seeds; background: the regimes by the rule above. The angle is the one the weights turn on the sphere in
# the last epoch; sharpness is the Hutchinson estimate of the trace of the Hessian at the point rescaled to
# unit norm.
# ```

# %% tags=["hide-input"]
fig = plotting.three_regimes.plot_regime_properties(summary, regime_of, boundary_elrs, initial, chance_error)
glue("fig_regime_properties", fig, display=False)
plt.close(fig)

# %%
per_elr = summary.groupby("elr").mean(numeric_only=True)
in_regime = {r: [e for e in sorted(regime_of) if regime_of[e] == r] for r in (1, 2, 3)}


def trend(values: pd.Series) -> str:
    """How a per-ELR series moves with the ELR, as a clause ("" for a single ELR)."""
    steps = np.diff(values.to_numpy())
    if len(steps) == 0:
        return ""
    word = "rises" if (steps > 0).all() else "falls" if (steps < 0).all() else "is not monotonic"
    return f" ({word} with the ELR)"


def listing(column: str, elr_list: list[float], fmt: str = ".3g") -> str:
    return ", ".join(f"{per_elr.loc[e, column]:{fmt}} (ELR {e:g})" for e in elr_list)


regime_text = {}
if in_regime[1]:
    regime_text[1] = (f"the final train loss is {listing('train_loss', in_regime[1])}"
                      f"{trend(per_elr.loc[in_regime[1], 'train_loss'])}, and the weights end up turning "
                      f"{listing('late_angle_deg', in_regime[1], '.2g')} degrees per epoch.")
if in_regime[2]:
    two = per_elr.loc[in_regime[2]]
    regime_text[2] = (f"the stationary train loss (mean over the second half) is "
                      f"{listing('late_train_loss', in_regime[2])}{trend(two['late_train_loss'])}; the stationary "
                      f"effective gradient norm is {listing('late_effective_grad_norm', in_regime[2])}"
                      f"{trend(two['late_effective_grad_norm'])}; ELR × sharpness at the end is "
                      + ", ".join(f"{e * two.loc[e, 'sharpness']:.3g}" for e in in_regime[2])
                      + f"; the weights keep turning {listing('late_angle_deg', in_regime[2], '.2g')} degrees per epoch "
                      f"and end at a cosine of {listing('cos_to_init', in_regime[2], '.2f')} to the initial point.")
if in_regime[3]:
    three = per_elr.loc[in_regime[3]]
    regime_text[3] = (f"the final train loss is {listing('train_loss', in_regime[3])} (initial "
                      f"{initial['train_loss']:.3g}), the test error {listing('test_error', in_regime[3], '.3f')} "
                      f"(chance {chance_error:.2f}), the effective gradient "
                      + ", ".join(f"{v:.3g}×" for v in three["grad_over_initial"])
                      + f" its initial value, and the cosine to the initial point {listing('cos_to_init', in_regime[3], '.2f')}.")
for regime in (1, 2, 3):
    glue(f"regime{regime}_md", Markdown(regime_text.get(regime, "no ELR of this grid falls in this regime.")),
         display=False)

# %% [markdown]
# What the runs show, regime by regime (means over seeds at the end of training):
#
# - **Regime 1 (convergence):** {glue:md}`regime1_md`
# - **Regime 2 (chaotic equilibrium):** {glue:md}`regime2_md`
# - **Regime 3 (divergence):** {glue:md}`regime3_md`

# %% [markdown]
# ## Regime 1 at equal loss
#
# The paper (§4.1) compares the converging runs at equal train loss rather than at equal epoch: their paths in
# the loss–gradient plane collapse onto one line, and a higher ELR reaches a given loss at a flatter point.
# For every regime-1 run, the effective gradient norm and the sharpness where its train loss first falls to
# each level (interpolated between the evaluated epochs that bracket the crossing; sharpness is measured
# every {glue:text}`sharpness_every` epochs), mean over seeds: {glue:md}`equal_loss_md`

# %% tags=["hide-input"]
loss_levels = [0.1, 0.05, 0.03]
converging = [r for r in results if regime_of[r.config.elr] == 1]
equal_loss = {column: regimes.at_equal_loss(converging, column, loss_levels).groupby("elr").mean().drop(columns="seed")
              for column in ("effective_grad_norm", "sharpness")} if converging else {}


def spread(column: str, level: float) -> str:
    values = equal_loss[column][level].dropna()
    if values.empty:
        return f"(no run reaches loss {level:g})"
    return f"{values.max() / values.min():.2f}× at loss {level:g} ({len(values)} ELRs)"


def sharpness_range(level: float) -> str:
    values = equal_loss["sharpness"][level].dropna()
    if values.empty:
        return f"(no run reaches loss {level:g})"
    return f"{trend(values).strip(' ()') or 'one ELR'} at loss {level:g}, {values.iloc[0]:.3g} to {values.iloc[-1]:.3g}"


glue("sharpness_every", sharpness_every, display=False)
glue("equal_loss_md", Markdown(
    "the effective gradient norm at equal loss differs between the regime-1 ELRs by a factor (max/min) of "
    + "; ".join(spread("effective_grad_norm", level) for level in loss_levels)
    + " (one line would give 1); the sharpness at equal loss "
    + "; ".join(sharpness_range(level) for level in loss_levels) + "." if converging
    else "no regime-1 runs in this preset."), display=False)
pd.concat(equal_loss, axis=1).style.format("{:.3g}") if converging else None

# %% [markdown]
# ## The per-layer effective learning rates
#
# The total constraint fixes only the joint norm of the four convolution layers, so each layer $i$ moves with
# its own ELR $\eta_i = \mathrm{lr}/\|w_i\|^2$, and $\sum_i 1/\eta_i = 1/\eta$ as in the toy chapter. Its
# counterpart of the toy's $\eta_i\alpha_i$ is $\mathrm{lr}\,\mathrm{tr}\,H_{ii}$, the layer's ELR times its
# sharpness on the unit sphere (Hutchinson estimate on {glue:text}`sharpness_images` training images).
#
# ```{glue:figure} fig_layer_self_tuning
# :name: fig-layer-self-tuning
#
# Top: per-layer ELRs of the first seed against the epoch (dashed: the total ELR) for one ELR per regime
# (the median ELR of each regime in the grid). Bottom: each layer's $\mathrm{lr}\,\mathrm{tr}\,H_{ii}$ on the
# sharpness schedule.
# ```

# %% tags=["hide-input"]
fig = plotting.three_regimes.plot_layer_self_tuning(groups, regimes.representative_elrs(regime_of), regime_of)
glue("fig_layer_self_tuning", fig, display=False)
glue("sharpness_images", results[0].config.sharpness_images, display=False)
plt.close(fig)

# %% [markdown]
# ## Total against individual norm constraint
#
# Under the individual constraint every layer keeps its own initial norm, so its ELR is frozen at
# $\eta_i = \eta\,\|w_0\|^2/\|w_{i,0}\|^2$, the value the total-constraint run of the same $\eta$ starts from
# ($\sum_i 1/\eta_i = 1/\eta$ holds at every step). The two runs differ only in whether the layers may trade
# norm. The toy chapter predicts that the total constraint lets the $\eta_i$ self-tune, while under the individual
# constraint each layer converges or not by its own frozen $\eta_i$. The first seed, at
# {glue:text}`n_individual` ELRs:
#
# ```{glue:figure} fig_network_constraints
# :name: fig-network-constraints
#
# Top: train loss against the epoch under the total (solid) and the individual (dashed) constraint, one
# column per ELR (title colour: the total-constraint run's regime). Bottom: the per-layer ELRs
# $\mathrm{lr}/\|w_i\|^2$ (solid: total constraint; dashed, flat: individual constraint).
# ```

# %% tags=["hide-input"]
total_of = {r.config.elr: r for r in results if r.config.seed == individual[0].config.seed} if individual else {}
pairs = {r.config.elr: (total_of[r.config.elr], r) for r in individual}
fig = plotting.three_regimes.plot_network_constraints(pairs, regime_of)
glue("fig_network_constraints", fig, display=False)
plt.close(fig)
glue("n_individual", len(pairs), display=False)
constraints = pd.DataFrame([
    {"elr": elr, "constraint": name, "regime": regimes.classify(run.metrics, num_classes),
     "train_loss": run.final["train_loss"], "test_error": run.final["test_error"],
     "late_angle_deg": regimes.late_angle_deg(run.metrics), "cos_to_init": run.final["cos_to_init"]}
    for elr, pair in sorted(pairs.items()) for name, run in zip(("total", "individual"), pair)],
    columns=["elr", "constraint", "regime", "train_loss", "test_error", "late_angle_deg", "cos_to_init"])


def outcome(row: pd.Series) -> str:
    return f"regime {row.regime} (loss {row.train_loss:.3g}, test error {row.test_error:.3f})"


glue("constraints_md", Markdown("; ".join(
    f"ELR {elr:g}: {outcome(runs.iloc[0])} under the total constraint, {outcome(runs.iloc[1])} under the "
    "individual one" for elr, runs in constraints.groupby("elr")) or "no runs"), display=False)

# %%
constraints.pivot(index="elr", columns="constraint", values=["regime", "train_loss", "test_error", "late_angle_deg"])

# %% [markdown]
# At the end of training: {glue:md}`constraints_md`.
#
# ## Key numbers

# %%
# NBVAL_CHECK_OUTPUT
for elr, runs in summary.groupby("elr"):
    print(f"ELR {elr:g}: regime {regime_of[elr]} (seeds: {' '.join(str(r) for r in runs['regime'])})")
print("boundaries:", "; ".join(f"{a}->{b} in ({low:g}, {high:g})" for a, b, low, high in boundaries))
for row in constraints.itertuples():
    print(f"ELR {row.elr:g}, {row.constraint} constraint: regime {row.regime}")

# %% [markdown]
# ## Appendix: sizing the setting with a pilot
#
# The whole `cpu` preset of the book has to train within 8 hours of wall time on a 2-core machine with both
# cores busy (two single-thread runs at a time). Before the grid, a pilot timed {glue:text}`pilot_epochs`
# epochs (full metrics every epoch) of each candidate: ConvNetSI widths at this chapter's training set, and
# the whole training set at this chapter's width. The projection is the time of this chapter's
# {glue:text}`n_grid_runs` grid and boundary-search runs of {glue:text}`epochs` epochs on 2 single-thread
# processes at the pilot's seconds per epoch (an upper bound: the chapter evaluates every epoch only for the
# first {glue:text}`dense_metric_epochs` epochs). {glue:md}`pilot_md`

# %% tags=["hide-input"]
n_grid_runs = len(results)
projection = experiments.pilot_projection(pilot, RunStore(), n_grid_runs, epochs, workers=2)
if projection.empty:
    pilot_md = "This preset runs no pilot."
else:
    chosen = projection[(projection["width"] == width) & (projection["train_size"] == train_size)]
    measured = core_hours / 2
    pilot_md = (f"At the chosen setting (width {width}, {train_size or 'all'} images) the pilot projected "
                + (f"{float(chosen['projected_hours'].iloc[0]):.1f} h" if len(chosen) else "(not timed)")
                + f"; the runs took {measured:.1f} h of wall time on 2 cores ({core_hours:.1f} core-hours). "
                + "; ".join(f"width {int(row.width)} on {int(row.train_size) or 'all'} images: "
                            f"{row.seconds_per_epoch:.1f} s per epoch, {row.projected_hours:.1f} h"
                            for row in projection.itertuples()) + ". "
                + "Over the 8-hour budget for this chapter alone: "
                + (", ".join(f"width {int(row.width)} on {int(row.train_size) or 'all'} images"
                             for row in projection.itertuples() if row.projected_hours > 8) or "none") + "; "
                + f"the chosen setting shows regimes {', '.join(map(str, sorted(set(regime_of.values()))))} "
                + "(see above), within the budget that the other chapters share.")
glue("pilot_epochs", pilot_epochs, display=False)
glue("n_grid_runs", n_grid_runs, display=False)
glue("dense_metric_epochs", dense_metric_epochs, display=False)
glue("pilot_md", Markdown(pilot_md), display=False)
projection.style.format({"seconds_per_epoch": "{:.2f}", "projected_hours": "{:.2f}"}).hide(axis="index")

# %%
glue("runtime_s", time.perf_counter() - started, display=False)
