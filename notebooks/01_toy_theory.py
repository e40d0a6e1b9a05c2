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
# # The toy example: thresholds of several scale-invariant groups on one sphere
#
# **Claims ({cite:t}`kodryan2022three`, §3 and Remark 2).** Train a function made of several scale-invariant
# (SI) groups by projected gradient descent on the unit sphere at a fixed total effective learning rate (ELR)
# $\eta$. Each group then moves with its own ELR $\eta_i = \eta/\|\theta_i\|^2$; these individual ELRs obey
# $\sum_i 1/\eta_i = 1/\eta$ and adapt during training. Convergence to a minimum is possible only for $\eta <
# 1/\sum_i\alpha_i$, where $\alpha_i$ is the sharpness of group $i$, and just above that threshold the
# individual ELRs self-tune around their own thresholds. The paper's Remark 2 adds that this simple
# deterministic formulation allegedly lacks the third, divergent (random-walk) regime. This page derives the
# thresholds, simulates the toy, and gives each claim a verdict by a rule fixed in advance (section
# {ref}`toy-claims`).
#
# **Runtime and hardware.** Seconds ({glue:text}`runtime_s:.0f` s for this build, preset
# {glue:md}`preset_md`) on one CPU core, numpy only; nothing is trained and no run store is read. The
# convergence threshold is measured from $n$ = {glue:text}`n_inits` initial points; the other results use
# the first of them.

# %% tags=["parameters", "remove-cell"]
preset = "cpu"  # name of the preset that set these values
alphas = [1.0, 2.0, 5.0, 10.0]  # sharpness alpha_i of each group: f_i is alpha_i sin^2 of the angle to e_i
dim = 10  # dimension d of each group
init_seeds = [0, 1, 2, 3, 4]  # seeds of the initial points (standard normal, total norm 1); the first is the main one
n_iterations = 4000  # projected GD steps per run
late_fraction = 0.25  # late-time window: this last fraction of the iterations
eta_min = 0.001  # smallest total ELR of the sweep
eta_max = 100.0  # largest total ELR of the sweep
etas_per_decade = 40  # sweep density, ELRs per factor of 10
zoom_etas_per_decade = 1000  # density of the zoomed sweep around the measured convergence threshold
example_etas = [0.02, 0.08, 3.0]  # total ELRs of panels (a), (b): below 1/sum alpha, between, above 1/min alpha
converged_tolerance = 1e-6  # late-time F / random-direction level below which a run counts as converged
random_walk_fraction = 0.9  # late-time F / random-direction level from which a run counts as a random walk
noise_std = 0.0  # std per coordinate of isotropic gradient noise on the unit sphere of each group (0: exact GD, §3)
comparison_noise_stds = [0.3, 3.0]  # noise stds (same unit) of the extra sweeps drawn in grey in panel (c)
seed = 0  # seed of the gradient noise

# %% tags=["remove-cell"]
from sphere_regimes import book, chapters, plotting

findings = chapters.toy.analyse(chapters.toy.Params.from_namespace(globals()))
book.glue_all(findings, plotting.toy.figures)

# %% [markdown]
# (toy-function)=
# ## The function and the individual ELRs
#
# The parameters are $n$ = {glue:text}`n_groups` groups $\theta = (\theta_1, \dots, \theta_n)$,
# $\theta_i \in \mathbb{R}^d$ with $d$ = {glue:text}`dim`, and
#
# $$
# F(\theta) = \sum_{i=1}^{n} f_i(\theta_i), \qquad
# f_i(\theta_i) = \alpha_i\left(1 - \frac{\langle\theta_i, e_i\rangle^2}{\|\theta_i\|^2}\right)
#   = \alpha_i \sin^2\varphi_i ,
# $$
#
# where $\varphi_i$ is the angle between $\theta_i$ and a fixed unit vector $e_i$, and the sharpnesses are
# $\alpha_i$ = {glue:md}`alphas_md` (so $\sum_i\alpha_i$ = {glue:text}`sum_alpha:g`). Each $f_i$ depends on
# $\theta_i/\|\theta_i\|$ only, so $F$ is scale-invariant in every group separately, like the weights in
# front of each BatchNorm layer of a network. Two consequences: the gradient of $f_i$ is orthogonal to
# $\theta_i$, and it shrinks with the norm, $\nabla f_i(c\,\theta_i) = \nabla f_i(\theta_i)/c$.
#
# Projected gradient descent on the total sphere takes the step $\theta - \eta\nabla F(\theta)$ at
# $\|\theta\| = 1$ and rescales all groups jointly back to norm 1. Group $i$ sits at norm
# $\|\theta_i\| = \sqrt{\rho_i}$, so its step turns the direction $\theta_i/\|\theta_i\|$ exactly as a step
# of size $\eta/\rho_i$ on its own unit sphere would: its **individual ELR** is $\eta_i = \eta/\rho_i$.
# Because the groups share the total norm, $\sum_i \rho_i = 1$, and
#
# $$
# \sum_i \frac{1}{\eta_i} = \frac{1}{\eta}\sum_i \rho_i = \frac{1}{\eta}.
# $$
#
# The norms are not frozen. Since the gradient is orthogonal to each group, one step changes them to
# $\rho_i' = (\rho_i + \eta^2\|\nabla_{\theta_i}F\|^2)/(1 + \eta^2\|\nabla F\|^2)$: a group with a large
# gradient gains norm and so *lowers* its own ELR, at the expense of the groups that are at rest.
#
# ## One group: stable iff $\eta_i\alpha_i < 1$
#
# On the unit sphere of group $i$, $f_i = \alpha_i\sin^2\varphi$ has derivative $\alpha_i\sin 2\varphi$ and
# second derivative $2\alpha_i$ at the minimum. A step of size $\eta_i$ followed by renormalisation keeps
# $\theta_i$ in the plane of $e_i$ and $\theta_i$ and maps, with $k_i = \eta_i\alpha_i$,
#
# $$
# \tan\varphi' = \tan\varphi\,\frac{1 - 2k_i\cos^2\varphi}{1 + 2k_i\sin^2\varphi}
# \;\approx\; (1 - 2k_i)\tan\varphi \quad (\varphi \to 0).
# $$
#
# The minimum is stable iff $|1 - 2k_i| < 1$, that is $\eta_i\alpha_i < 1$. For $k_i > 1$ the exact map has a
# 2-cycle $\varphi \to -\varphi$ where $1 - 2k_i\cos^2\varphi = -(1 + 2k_i\sin^2\varphi)$, i.e.
# $\cos 2\varphi = 1/k_i$ and $\sin^2\varphi = (1 - 1/k_i)/2$.
#
# (toy-threshold-theory)=
# ## Convergence is possible exactly below $1/\sum_i\alpha_i$
#
# At a stable minimum every group needs $\eta_i\alpha_i < 1$, i.e. $\eta\,\alpha_i < \rho_i$. Summing over
# the groups,
#
# $$
# \eta \sum_i \alpha_i < \sum_i \rho_i = 1 \quad\Longleftrightarrow\quad \eta < \frac{1}{\sum_i\alpha_i},
# $$
#
# which is {glue:text}`threshold_theory:.4f` here. Conversely, for $\eta < 1/\sum_i\alpha_i$ the split
# $\rho_i = \alpha_i/\sum_j\alpha_j$ gives every group
# $\eta_i\alpha_i = \eta\sum_j\alpha_j < 1$, so stable minima exist. Whether gradient descent finds them,
# by moving norm between the groups, is what the simulation tests.
#
# ## Above $1/\min_i\alpha_i$ no group can be stable
#
# Every $\rho_i \le 1$, so $\eta_i = \eta/\rho_i \ge \eta$. If $\eta > 1/\min_i\alpha_i$
# (= {glue:text}`no_stable_theory:.3g`), then $\eta_i\alpha_i \ge \eta\,\alpha_i > \alpha_i/\min_j\alpha_j \ge 1$
# for every group and every split of the norm: no group can settle.
#
# **What to expect in between and above.** If every group sits on its 2-cycle, the identity above gives
# the loss in closed form, whatever the split of the norm:
#
# $$
# F = \sum_i \frac{\alpha_i}{2}\left(1 - \frac{1}{\eta_i\alpha_i}\right)
#   = \frac{1}{2}\Big(\sum_i\alpha_i - \sum_i\frac{1}{\eta_i}\Big)
#   = \frac{1}{2}\Big(\sum_i\alpha_i - \frac{1}{\eta}\Big).
# $$
#
# It rises from 0 at $\eta = 1/\sum_i\alpha_i$ towards $\sum_i\alpha_i/2$ (every group at $45°$ from its
# minimum). We measure late-time losses relative to the **random-direction level**
# $\mathbb{E}F = \sum_i\alpha_i (d-1)/d$ (= {glue:text}`random_level:.2f`), the mean loss of a direction
# drawn uniformly on every group's sphere, which a random walk on the sphere would reach. The 2-cycle
# limit $\sum_i\alpha_i/2$ is {glue:text}`plateau_limit:.3f` of that level: exact gradient descent keeps each
# $\theta_i$ in the plane of $e_i$ and $\theta_i(0)$, and the 2-cycles do not explore even that plane.
#
# ## The simulation
#
# Every run starts from the same point: a standard normal vector scaled to total norm 1 (random
# directions and a random split of the norm). A batch of ELRs runs at once (`sphere_regimes.toy`); the
# chapter's numbers come from `sphere_regimes.chapters.toy.analyse`. The three example runs, one per
# range of the thresholds ({glue:md}`examples_md`), late-time means over the last
# {glue:text}`late_percent:.0f`% of the steps:

# %% tags=["remove-input", "full-width"]
findings.tables["examples"]

# %% [markdown]
# ## (a) The loss over iterations, one ELR per range
#
# ```{glue:figure} fig_toy_trajectories
# :name: fig-toy-trajectories
# :alt: Two panels against the iteration, log scales: the toy's loss relative to its random-direction level and the angle moved per step, one line per total ELR in the colour of the regime its theory range predicts.
# :width: 100%
#
# Left: the loss $F(\theta_t)$ divided by the random-direction level for {glue:md}`examples_md` (colour:
# the range of the thresholds the ELR falls in; converged values are clipped at $10^{-12}$). Right: the
# angle between consecutive points on the total sphere.
# ```
#
# The late-time losses of the three runs are {glue:md}`late_relative_md` of the random-direction level, and
# the mean angles moved per step are {glue:md}`late_angle_md`: the run below $1/\sum_i\alpha_i$ reaches the
# minimum and stops, the two above it keep a non-zero loss and keep moving.
#
# (toy-elrs)=
# ## (b) The individual ELRs adapt
#
# :::{div} full-width
# ```{glue:figure} fig_toy_elrs
# :name: fig-toy-elrs
# :alt: One panel per total ELR: each group's individual ELR against the iteration, with its stability threshold one over alpha as a dashed line of the same colour.
# :width: 100%
#
# Individual ELRs $\eta_i(t) = \eta/\|\theta_i(t)\|^2$ (solid) against their stability thresholds
# $1/\alpha_i$ (dashed, same colour), one panel per total ELR of panel (a).
# ```
# :::
#
# At the smallest ELR, group {glue:text}`tuned_group` starts with the largest $\eta_i\alpha_i$,
# {glue:text}`tuned_k_initial:.2f` (its threshold is 1); it ends at {glue:text}`tuned_k_final:.2f`, and at the
# end every $\eta_i\alpha_i \le$ {glue:text}`first_k_max_final:.2f`. At $\eta$ = {glue:text}`middle_eta:g` no
# split can make all groups stable; the late-time $\eta_i\alpha_i$ (geometric means over the late window) are
# {glue:md}`middle_k_md`, against the equalised value $\eta\sum_i\alpha_i$ =
# {glue:text}`middle_k_equalised:.2f`. At $\eta$ = {glue:text}`last_eta:g` the smallest late-time
# $\eta_i\alpha_i$ is {glue:text}`last_k_min:.3g`.
#
# (toy-sweep)=
# ## (c) A fine sweep over the total ELR
#
# We run {glue:text}`n_sweep` total ELRs from {glue:text}`eta_min:g` to {glue:text}`eta_max:g`
# ({glue:text}`per_decade` per decade) for {glue:text}`n_iterations` steps each and average the loss over the
# last {glue:text}`late_percent:.0f`% of the steps. A run counts as converged when its late-time loss is
# below {glue:text}`tolerance:.0e` of the random-direction level. The largest converged ELR of the sweep and
# the next one bracket the threshold; a zoomed sweep over that bracket and its neighbours
# ({glue:text}`zoom_per_decade` ELRs per decade, neighbours a factor {glue:text}`resolution:.4f` apart) then
# measures it from each of the {glue:text}`n_inits` initial points.
#
# :::{div} full-width
# ```{glue:figure} fig_toy_sweep
# :name: fig-toy-sweep
# :alt: Two stacked panels against the total ELR, with the three theory ranges shaded: the late-time loss relative to the random-direction level with the 2-cycle prediction, and each group's late-time eta_i alpha_i with the stability threshold 1.
# :width: 100%
#
# Top: late-time loss relative to the random-direction level against the total ELR (dots), the 2-cycle
# prediction $(\sum_i\alpha_i - 1/\eta)/2$ (red), and sweeps with isotropic gradient noise (grey). Bottom:
# late-time $\eta_i\alpha_i$ of every group (1 = the group's stability threshold) and the equalised value
# $\eta\sum_i\alpha_i$. Shading: the ranges below $1/\sum_i\alpha_i$, between the two thresholds, and above
# $1/\min_i\alpha_i$.
# ```
# :::
#
# **Convergence threshold.** The sweep converges up to $\eta$ = {glue:text}`coarse_low:.4f` and not at
# {glue:text}`coarse_high:.4f`. From the first initial point the zoomed sweep puts the threshold at
# {glue:text}`threshold_measured:.4f`, which is {glue:text}`threshold_ratio:.4f` times $1/\sum_i\alpha_i$ =
# {glue:text}`threshold_theory:.4f`; over the {glue:text}`n_inits` initial points the ratio lies between
# {glue:text}`ratio_min:.4f` and {glue:text}`ratio_max:.4f`. The claim that the threshold is $1/\sum_i\alpha_i$
# asks each measured threshold to lie within one step of the zoomed sweep of it.
# {glue:md}`threshold_md`

# %% tags=["remove-input", "full-width"]
findings.tables["thresholds"]

# %% [markdown]
# **Chaotic equilibrium.** Above the threshold the late-time loss follows the 2-cycle law
# $(\sum_i\alpha_i - 1/\eta)/2$ to within {glue:text}`cycle_deviation:.3f` of the random-direction level over the
# whole sweep. Just above it ($\eta$ up to {glue:text}`just_above:g`$/\sum_i\alpha_i$) the groups' late-time
# $\eta_i\alpha_i$ agree with each other to a factor {glue:text}`equalised_spread:.3f`.
# {glue:md}`self_tuning_md`
#
# **Random walk.** Crossing $1/\min_i\alpha_i$ = {glue:text}`no_stable_theory:.3g`: the late-time loss is
# {glue:text}`at_no_stable:.3f` of the random-direction level there and {glue:text}`at_eta_max:.3f` at
# $\eta$ = {glue:text}`eta_max:g`. With the exact gradient the late-time loss {glue:md}`onset_md`. The 2-cycle
# law saturates at $\sum_i\alpha_i/2$, each group bouncing between $\pm 45°$ from its minimum, which is
# {glue:text}`plateau_limit:.3f` of the random-direction level. {glue:md}`remark_md` With isotropic gradient
# noise the random-walk criterion ({glue:text}`random_walk_fraction:g` of the level) is met as follows:
# {glue:md}`noisy_onsets_md`.
#
# ## (d) Total constraint against individual constraints
#
# Fixing each group's norm instead, $\|\theta_i\|^2 = r_i^2$ with the equal split $r_i^2 = 1/n$, freezes the
# individual ELRs at $\eta/r_i^2$: group $i$ converges iff $\eta\,\alpha_i < r_i^2$, so all groups converge
# only below $\min_i r_i^2/\alpha_i$ = {glue:text}`individual_theory:.4f`.
#
# ```{glue:figure} fig_toy_constraints
# :name: fig-toy-constraints
# :alt: Two panels: the late-time loss against the total ELR under the total and the individual constraints with both thresholds, and each group's late-time sin squared phi against its eta_i alpha_i with the 2-cycle curve.
# :width: 100%
#
# Left: late-time loss relative to the random-direction level under the total constraint (black) and under
# individual constraints with the equal split (blue), with their convergence thresholds. Right: every
# group's late-time $\sin^2\varphi_i$ against its late-time $\eta_i\alpha_i$, with the one-group 2-cycle
# curve $(1 - 1/(\eta_i\alpha_i))/2$.
# ```
#
# Under the individual constraints the sweep converges up to $\eta$ = {glue:text}`individual_low:.4f` and not at
# {glue:text}`individual_high:.4f` (compare $\min_i r_i^2/\alpha_i$ = {glue:text}`individual_theory:.4f`). The
# total constraint converges up to an ELR {glue:text}`total_over_individual_measured:.2f` times larger (the
# thresholds' ratio is {glue:text}`total_over_individual:.2f`): under the total constraint the split of the
# norm is free to move, under the individual ones it stays equal.
#
# (toy-claims)=
# ## Claims
#
# Each claim's verdict comes from a rule written from the paper's words before the simulation ran (`held`:
# at every instance the claim is about; `partly`: at some; `not held`: at none; `not tested here`: this
# preset cannot test it). Where the paper is qualitative, the rule is our reading (see
# `sphere_regimes.chapters.toy.CLAIMS`). The margin says how far the measurement is from flipping the verdict.

# %% tags=["remove-input", "full-width"]
findings.tables["claims"]

# %% tags=["remove-cell"]
# NBVAL_CHECK_OUTPUT
print(findings.report())
