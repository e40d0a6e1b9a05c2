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
# # Conventional training: does SGD with weight decay pick the regime of its equilibrium ELR?
#
# **The paper's claim (§6; {cite:p}`li2020reconciling,wan2021spherical`).** Train the same scale-invariant network
# with plain SGD and weight decay in the full parameter space. The norm of the weights is no longer
# fixed, but it relaxes to an equilibrium in about $1/(\mathrm{lr}\cdot\mathrm{wd})$ steps, where the
# root mean square of the angular update per step is $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}/(1+\mu)}$ ($\mu$ the
# momentum) and the
# effective learning rate $\mathrm{lr}/\|w\|^2$ settles at a level (or, at low
# $\mathrm{lr}\cdot\mathrm{wd}$, oscillates periodically around one). That level depends on the intrinsic
# learning rate $\mathrm{lr}\cdot\mathrm{wd}$ alone, so runs with equal $\mathrm{lr}\cdot\mathrm{wd}$
# behave alike; and the run then behaves as training on the sphere at its equilibrium ELR does, in that
# ELR's regime of the three-regimes chapter. The chapter measures four parts of this claim; the
# {ref}`sec-sgd-claims` section gives the ledger's verdict on each.
#
# **Setting and runtime.** ConvNetSI of width {glue:text}`width` (every convolution feeds a BatchNorm
# without affine terms, the last layer frozen) on {glue:md}`data_md`, batch {glue:text}`batch_size`,
# {glue:text}`epochs` epochs, SGD with momentum {glue:text}`momentum` on the grid of learning rates
# {glue:md}`lrs_md` × weight decays {glue:md}`wds_md` ({glue:text}`n_pairs` pairs,
# $\mathrm{lr}\cdot\mathrm{wd}$ from {glue:text}`lr_wd_min:g` to {glue:text}`lr_wd_max:g`), and the
# `convnet_af` variant (affine BatchNorm, trainable last layer) at {glue:text}`n_af` of the pairs;
# {glue:text}`n_seeds` init seed(s), preset {glue:md}`preset_md`; plus {glue:text}`n_long` long run(s), each
# for its own number of epochs ({ref}`sec-sgd-long`). The runs took
# {glue:text}`core_hours:.2f` core-hours of training; this page reads them, and the three-regimes
# chapter's runs of {glue:md}`sphere_setting_md`, from the result store.

# %% tags=["parameters", "remove-cell"]
preset = "cpu"  # name of the preset that set these values
epochs = 150  # epochs per run
dense_metric_epochs = 20  # full metrics (train-mode loss, test error, effective gradient) every epoch up to here
metric_every = 5  # ... then every this many epochs
lrs = [0.1, 0.3, 1.0]  # SGD learning rates of the grid
weight_decays = [1e-3, 3e-3, 1e-2]  # weight decays of the grid (lambda: the step adds -lr * lambda * w)
momentum = 0.0  # heavy-ball momentum of SGD
af_pairs = [[0.1, 1e-3], [1.0, 1e-2]]  # [lr, weight decay] pairs also trained with convnet_af
seeds = [0]  # init seeds (the frozen last layer is shared by all runs)
tolerance = 0.2  # an angular update within this relative distance of its theory counts as at equilibrium
long_runs = []  # [lr, weight decay, epochs] of long ConvNetSI runs (first seed), epochs: at least 2 / (2 lr wd) steps
sphere_preset = ""  # the preset whose three-regimes setting (network, data, batches, map) this chapter uses; empty: its own

# %% tags=["remove-cell"]
from sphere_regimes import book, chapters, plotting

findings = chapters.conventional.analyse(chapters.conventional.Params.from_namespace(globals()))
book.glue_all(findings, plotting.conventional.figures)

# %% [markdown]
# (sec-sgd-angular)=
# ## The angular update per step against $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}}$
#
# For scale-invariant weights the gradient is orthogonal to $w$, so a step changes the squared norm by
# $-(2\,\mathrm{lr}\,\mathrm{wd} - \mathrm{lr}^2\mathrm{wd}^2)\|w\|^2 + \mathrm{lr}^2\|g\|^2$: the norm stops
# changing on average when the mean square of the angle a step turns $w$ by, $\mathrm{lr}\,\|g\|/\|w\|$, equals
# $2\,\mathrm{lr}\,\mathrm{wd}$ (to first order): the law fixes the root mean square (RMS) of the angular
# update, and the mean of the angles lies below it whenever they vary from step to step. Far above the equilibrium the squared norm
# shrinks by $(1-\mathrm{lr}\,\mathrm{wd})^2$ per step, so it takes about
# $\ln(\|w_0\|^2/\|w_\mathrm{eq}\|^2)/(2\,\mathrm{lr}\,\mathrm{wd})$ steps to get there
# ({glue:text}`steps_per_epoch` steps per epoch here).
#
# **The RMS angle from the norms.** The engine records the mean and the RMS of the angular update over each
# epoch's steps; the first edition's runs recorded the mean only. For plain SGD their RMS follows from the
# norms: a step $w' = (1-\mathrm{lr}\,\mathrm{wd})\,w - \mathrm{lr}\,g$ with $g \perp w$ turns $w$ by exactly
# $\cos\theta = (1-\mathrm{lr}\,\mathrm{wd})\,\|w\|/\|w'\|$, the cosines of an epoch's $S$ steps multiply to
# $(1-\mathrm{lr}\,\mathrm{wd})^S\,\|w_{e-1}\|/\|w_e\|$, and with $-2\ln\cos\theta \approx \theta^2$ the epoch's RMS
# angle is $\sqrt{-2\ln(1-\mathrm{lr}\,\mathrm{wd}) + (2/S)\ln(\|w_e\|/\|w_{e-1}\|)}$, within a relative
# $\theta^2/12$ of the steps' own (`tests/test_conventional.py` checks it on simulated steps and against the
# recorded RMS of a real run). A stationary norm gives
# $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}}$ to first order in $\mathrm{lr}\,\mathrm{wd}$: the law. The RMS here is
# {glue:md}`rms_source_md`.
#
# :::{div} full-width
# ```{glue:figure} fig_sgd_equilibrium
# :name: fig-sgd-equilibrium
# :alt: Four panels against the epoch for SGD with weight decay, one colour per lr times wd and one line style per lr: mean angular update with its equilibrium value dotted, effective learning rate, norm of the scale-invariant weights and mean effective gradient norm.
# :width: 100%
#
# SGD with weight decay on the fully scale-invariant net, one line per (lr, wd): colour by
# $\mathrm{lr}\cdot\mathrm{wd}$, line style by lr. Top left: the mean angular update per step of each
# epoch, with the equilibrium value of its RMS, $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}/(1+\mu)}$ (dotted, same
# colour), which the mean stays below (the table gives both). Top
# right: the effective learning rate $\mathrm{lr}/\|w\|^2$. Bottom: the norm of the scale-invariant
# weights and the mean effective gradient norm (gradient norm times weight norm, on the full-metric
# schedule).
# ```
# :::
#
# **Time to equilibrium.** A run is counted as having reached the equilibrium at the first epoch whose
# RMS angular update per step is within {glue:text}`tolerance_pct:.0f`% of
# $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}/(1+\mu)}$, and as staying there from the first epoch after which every
# epoch is within it ("outside again at the end" when the last epoch is outside), against the relaxation time
# $1/(2\,\mathrm{lr}\,\mathrm{wd})$ steps: {glue:md}`equilibrium_times_md` One epoch's RMS is a noisy reading:
# where the norm shrinks for many epochs and jumps back in a destabilisation, the epochs in between turn less
# and the jump more, so the claim reads the RMS over every step of the late window, not epoch by epoch.
#
# The late window is the last {glue:text}`late_pct:.0f`% of the epochs. The table compares the measured
# angular update, the mean (median over the late window of each epoch's mean) and the RMS (over every step
# of the late window: the few epochs of a destabilisation, whose steps are large, carry much of the mean
# square), with the theory for every run, with the equilibrium ELR
# (median of $\mathrm{lr}/\|w\|^2$ over the late window, and its minimum and maximum there), the regime each
# run is in by the three-regimes chapter's rule, and the regime that chapter's fixed-ELR map gives its
# equilibrium ELR (–: never, or no equilibrium).

# %% tags=["remove-input", "full-width"]
findings.tables["summary"]

# %% [markdown]
# **Measured against theory.** Over the late window the RMS angular update is within
# {glue:text}`tolerance_pct:.0f`% of $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}/(1+\mu)}$ for {glue:text}`n_at_theory`
# of the {glue:text}`n_si` scale-invariant runs, and {glue:text}`n_reached` of them come within it at some
# epoch; RMS / theory: {glue:md}`angle_ratio_md` (mean and range over the runs; each run's in the table).
# The mean angle is {glue:text}`mean_ratio_min:.2f` to {glue:text}`mean_ratio_max:.2f` of the theory: the
# steps' angles vary, and their mean is not what the law fixes. The first edition of this chapter compared the
# mean, and put its shortfall down to runs that converge and slow down or whose norm still shrinks; read on the
# RMS, which the law is about, the runs are at {glue:text}`rms_ratio_min:.2f` to
# {glue:text}`rms_ratio_max:.2f` of the theory. Verdict ("approaches" read as within
# {glue:text}`tolerance_pct:.0f`% at the end of the budget, on the RMS): {glue:md}`verdict_angular_update_md`.
#
# Over the same late window the effective learning rate moves between its minimum and maximum by a factor
# {glue:md}`elr_range_md` (mean and range over the runs; each run's *ELR max / min* in the table); it stays within a factor {glue:text}`level_factor:g` (the smallest step of the
# paper's ELR grid, our reading of "levels off") for {glue:text}`n_level` of the {glue:text}`n_si` runs.
# Verdict: {glue:md}`verdict_elr_levels_off_md`.
#
# (sec-sgd-equal)=
# ## Equal $\mathrm{lr}\cdot\mathrm{wd}$, equal dynamics?
#
# {glue:text}`n_equal_groups` values of $\mathrm{lr}\cdot\mathrm{wd}$ are shared by several learning rates.
# For each, the equilibrium ELR, the angular update and the stationary train loss of its runs (in the order of
# the learning rates) and the ratio of the largest to the smallest:

# %% tags=["remove-input", "full-width"]
findings.tables["equal_lr_wd"]

# %% [markdown]
# Verdict, on the equilibrium ELRs: {glue:md}`verdict_equal_lr_wd_alike_md`. Runs of equal
# $\mathrm{lr}\cdot\mathrm{wd}$ start from the same point but not at the same effective learning rate: the
# larger learning rate first inflates the norm more, and the equal-$\mathrm{lr}\cdot\mathrm{wd}$ runs can only
# agree once that excess has decayed (figure above, bottom left).
#
# :::{div} full-width
# ```{glue:figure} fig_sgd_training
# :name: fig-sgd-training
# :alt: Two panels against the epoch for the SGD runs: train loss on a log scale and test error.
# :width: 100%
#
# Train loss (train mode, log) and test error of the same runs against the epoch, in the styles of
# {numref}`fig-sgd-equilibrium`.
# ```
# :::
#
# (sec-sgd-map)=
# ## Where the equilibrium ELR falls on the regime map
#
# The three-regimes chapter trained the same network on the same data on the sphere at fixed ELRs, for
# {glue:text}`sphere_epochs` epochs ({glue:md}`sphere_setting_md`). Its map, with boundaries at the geometric midpoints of
# the ELR brackets where the regime changes, is the background of {numref}`fig-sgd-regime-map`; every SGD
# run sits at its equilibrium ELR, coloured by the regime the run itself is in. The paper's expectation:
# stable convergence with periodic destabilisation at low $\mathrm{lr}\cdot\mathrm{wd}$ (regime 1), a
# chaotic equilibrium in the middle (regime 2), divergence at high $\mathrm{lr}\cdot\mathrm{wd}$ (regime 3).
#
# :::{div} full-width
# ```{glue:figure} fig_sgd_regime_map
# :name: fig-sgd-regime-map
# :alt: Two panels against the ELR on the sphere's regime-shaded map: stationary train loss and final test error of the fixed-ELR sphere runs (grey line and dots), with every SGD run placed at its equilibrium ELR, coloured by its own regime and labelled lr/wd.
# :width: 100%
#
# The fixed-ELR regime map (background: the sphere runs' regimes; grey: their stationary train loss and
# final test error, mean over seeds and each seed) with every SGD run at its equilibrium ELR (median over
# the late window; bar: its minimum to maximum there), in the colour of the SGD run's own regime,
# labelled lr/wd.
# ```
# :::
#
# The run's own regime is the map's regime at its equilibrium ELR for {glue:text}`n_matches` of the
# {glue:text}`n_runs` runs with an equilibrium: {glue:md}`map_md` {glue:md}`diverged_md`
#
# {glue:md}`mismatch_md` Below the sphere's 1→2 boundary, SGD with weight decay need not converge as the
# sphere run at the same ELR does: while the loss falls the gradient shrinks, weight decay shrinks the
# norm, the effective learning rate creeps up until the run destabilises (a loss and test-error spike in
# {numref}`fig-sgd-training`, a jump of the norm in {numref}`fig-sgd-equilibrium`), and the cycle can
# start again: the paper's "stable convergence with periodic destabilisation" {cite:p}`lobacheva2021periodic` at low
# $\mathrm{lr}\cdot\mathrm{wd}$. The three-regimes chapter's rule, made for fixed-ELR runs, reads such a run
# as regime 2 because its weights never stop turning (median angle per epoch ≥ 3° over the last quarter);
# a run that spends long enough converging between spikes counts as regime 1. The ledger counts a run as
# in the regime of its ELR only when the two labels agree. Verdict:
# {glue:md}`verdict_regime_of_equilibrium_elr_md`.
#
# (sec-sgd-long)=
# ## Long runs at the periodic-behaviour setting
#
# The periodic-behaviour paper {cite:p}`lobacheva2021periodic` trains with smaller learning rates than this
# chapter's grid ({glue:md}`lrs_md`), where the norm relaxes slowly: far above the equilibrium the squared norm shrinks as
# $(1-\mathrm{lr}\,\mathrm{wd})^{2t} \approx e^{-2\,\mathrm{lr}\,\mathrm{wd}\,t}$, a relaxation time of
# $1/(2\,\mathrm{lr}\,\mathrm{wd})$ steps, far more than the grid's epoch budget at small
# $\mathrm{lr}\cdot\mathrm{wd}$. This preset trains {glue:text}`n_long` such run(s) (`long_runs`: one seed,
# the grid's network, data and metric schedule, each for its own number of epochs, planned in units of that
# relaxation time). They are read by rules fixed before they were trained:
#
# - **Settled.** A norm counts as settled when the run trained for at least {glue:text}`settle_relaxations:g`
#   relaxation times and the norm no longer drifts over its late window (the last
#   {glue:text}`late_pct:.0f`% of its epochs): the least-squares slope of $\ln\|w\|$ per step there, as a
#   fraction of the free decay $\ln(1-\mathrm{lr}\,\mathrm{wd})$ of a norm that receives no gradient, is within
#   the chapter's tolerance of {glue:text}`tolerance_pct:.0f`%. By the norm recurrence a drift $r$ puts the
#   window's mean square angular update at $(1-r)$ times its law value, so this is the angular law's balance,
#   read on the norm; near the equilibrium $\ln\|w\|$ relaxes at $4\,\mathrm{lr}\,\mathrm{wd}$ per step, so
#   $r$ is about four times the norm's remaining relative distance from its equilibrium.
# - **Destabilisation.** A loss spike is a rise of the running train loss (recorded every epoch) above
#   {glue:text}`spike_level:g`, {glue:text}`spike_factor:g` times the regime rule's converged level
#   {glue:text}`converged_loss:g`, after it has been below that level since the last spike; two or more spikes
#   are periodic destabilisation.
#
# {glue:md}`long_md`
#
# :::{div} full-width
# ```{glue:figure} fig_sgd_long_runs
# :name: fig-sgd-long-runs
# :alt: Four panels against the epoch for the long SGD runs, one colour per run: norm of the scale-invariant weights, effective learning rate, RMS angular update per step with its law dotted, and running train loss with the spike rule's levels and the spikes marked.
# :width: 100%
#
# The long runs over their whole length, one colour per run: the norm of the scale-invariant weights, the
# effective learning rate $\mathrm{lr}/\|w\|^2$, the RMS angular update per step with
# $\sqrt{2\,\mathrm{lr}\,\mathrm{wd}/(1+\mu)}$ (dotted), and the running train loss with the spike rule's two
# levels (grey) and its spikes (crosses). Dashed: twice the run's relaxation time (where the run reaches it);
# shaded: its late window.
# ```
# :::

# %% tags=["remove-input", "full-width"]
findings.tables["long_runs"]

# %% [markdown]
# ## The `Af` variant: affine BatchNorm and a trainable last layer
#
# :::{div} full-width
# ```{glue:figure} fig_af_comparison
# :name: fig-af-comparison
# :alt: Three panels against the epoch: angular update, ELR of the convolution weights and test error of the fully scale-invariant network (solid) and of the network with affine BatchNorm and a trainable last layer (dashed).
# :width: 100%
#
# The fully scale-invariant net (solid) and the `convnet_af` variant (dashed) at the same (lr, wd): the
# angular update per step of the convolution weights (dotted: its equilibrium value), their effective
# learning rate and the test error.
# ```
# :::
#
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
# this way. This is a finding of this chapter, not a claim of the paper.
#
# (sec-sgd-claims)=
# ## Claims
#
# Each claim's verdict comes from a rule written from the paper's wording before the runs were read
# (`held`: every instance passes, `partly`: some do, `not held`: none; * marks a verdict that depends on
# the regime rule, which was chosen after the first runs):
#
# - RMS angular update $\to\sqrt{2\,\mathrm{lr}\,\mathrm{wd}/(1+\mu)}$: {glue:md}`verdict_angular_update_md`.
# - The ELR levels off: {glue:md}`verdict_elr_levels_off_md`.
# - Equal $\mathrm{lr}\cdot\mathrm{wd}$ behave alike: {glue:md}`verdict_equal_lr_wd_alike_md`.
# - A run sits in the regime of its equilibrium ELR: {glue:md}`verdict_regime_of_equilibrium_elr_md`.

# %% tags=["remove-input", "full-width"]
findings.tables["claims"]

# %% [markdown]
# {glue:md}`edition_md`

# %% tags=["remove-input", "full-width"]
findings.tables["edition_changes"]

# %% tags=["remove-cell"]
# NBVAL_CHECK_OUTPUT
print(findings.report())
