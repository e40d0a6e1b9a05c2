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
# # The toy example: three regimes in a function of several scale-invariant groups
#
# **Claim (paper §3).** Train a function made of several scale-invariant (SI) groups by projected
# gradient descent on the unit sphere at a fixed total effective learning rate (ELR) $\eta$. Each group
# then moves with its own ELR $\eta_i = \eta/\|\theta_i\|^2$, and these individual ELRs obey
# $\sum_i 1/\eta_i = 1/\eta$ and adapt during training. Convergence to a minimum is possible exactly for
# $\eta < 1/\sum_i\alpha_i$, where $\alpha_i$ is the sharpness of group $i$; above $1/\min_i\alpha_i$ no
# group can be stable, whatever the norms. The paper's Remark 2 adds that this simple deterministic
# formulation allegedly lacks the third, divergent (random-walk) regime. This page derives the
# thresholds, measures them in simulation, and reports what the simulation does above them.
#
# **Runtime and hardware.** A few seconds ({glue:text}`runtime_s:.0f` s for this build, preset
# {glue:md}`preset_md`) on one CPU core, numpy only. The convergence threshold is measured from
# $n$ = {glue:text}`n_inits` initial points; the other results use the first of them.

# %% tags=["parameters"]
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

# %% tags=["hide-input"]
import time

started = time.perf_counter()

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown
from myst_nb import glue

from sphere_regimes import plotting, toy

plotting.set_style()
alpha = np.asarray(alphas, dtype=float)
theta0 = toy.initial_point(len(alpha), dim, init_seeds[0])
common = dict(alphas=alpha, dim=dim, n_iterations=n_iterations, theta0=theta0)
threshold = toy.convergence_threshold(alpha)
no_stable = toy.no_stable_group_threshold(alpha)
level = toy.random_direction_level(alpha, dim)
glue("preset_md", Markdown(f"`{preset}`"), display=False)
glue("n_inits", len(init_seeds), display=False)
glue("n_groups", len(alpha), display=False)
glue("dim", dim, display=False)
glue("alphas_md", Markdown(", ".join(f"{a:g}" for a in alpha)), display=False)
glue("sum_alpha", float(alpha.sum()), display=False)
glue("threshold_theory", threshold, display=False)
glue("no_stable_theory", no_stable, display=False)
glue("random_level", level, display=False)
glue("plateau_limit", dim / (2 * (dim - 1)), display=False)

# %% [markdown]
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
# directions and a random split of the norm). A batch of ELRs runs at once (`sphere_regimes.toy`).

# %%
examples = toy.run_total(example_etas, noise_std=noise_std, seed=seed, **common)
example_regimes = toy.theory_regime(example_etas, alpha)
late = toy.late_window(examples, late_fraction)
late_angle_deg = np.degrees(examples.angle[late].mean(axis=0))
late_relative = examples.relative_loss[late].mean(axis=0)
initial_k = examples.elrs[0, 0] * alpha
final_k = examples.elrs[-1, 0] * alpha
tuned_group = int(np.argmax(initial_k))
late_k = np.exp(np.log(examples.elrs[late]).mean(axis=0)) * alpha
for name, values in [("eta", example_etas), ("range", example_regimes), ("late F / level", late_relative),
                     ("late angle per step (deg)", late_angle_deg)]:
    print(f"{name:>26}: " + "  ".join(f"{v:10.3g}" for v in values))
glue("examples_md", Markdown(", ".join(f"η = {eta:g} (range {r})" for eta, r in zip(example_etas, example_regimes))),
     display=False)
glue("late_relative_md", Markdown(", ".join(f"{v:.3g}" for v in late_relative)), display=False)
glue("late_angle_md", Markdown(", ".join(f"{v:.3g}°" for v in late_angle_deg)), display=False)
glue("tuned_group", tuned_group + 1, display=False)
glue("tuned_k_initial", float(initial_k[tuned_group]), display=False)
glue("tuned_k_final", float(final_k[tuned_group]), display=False)
glue("first_k_max_final", float(final_k.max()), display=False)
glue("middle_eta", float(example_etas[1]), display=False)
glue("middle_k_md", Markdown(", ".join(f"{v:.2f}" for v in late_k[1])), display=False)
glue("middle_k_equalised", float(example_etas[1] * alpha.sum()), display=False)
glue("last_eta", float(example_etas[-1]), display=False)
glue("last_k_min", float(late_k[-1].min()), display=False)

# %% tags=["hide-input"]
fig = plotting.toy.plot_toy_trajectories(examples)
glue("fig_toy_trajectories", fig, display=False)
plt.close(fig)

# %% [markdown]
# ## (a) The loss over iterations, one ELR per range
#
# ```{glue:figure} fig_toy_trajectories
# :name: fig-toy-trajectories
#
# Left: the loss $F(\theta_t)$ divided by the random-direction level for {glue:md}`examples_md` (colour:
# the range of the thresholds the ELR falls in; converged values are clipped at $10^{-12}$). Right: the
# angle between consecutive points on the total sphere.
# ```
#
# Below $1/\sum_i\alpha_i$ the loss falls to zero and the point stops moving. Above it, the loss settles at
# a non-zero level and the point keeps moving by a large angle every step. The late-time losses of the
# three runs are {glue:md}`late_relative_md` of the random-direction level, and the mean angles moved
# per step are {glue:md}`late_angle_md`.
#
# ## (b) The individual ELRs tune themselves
#
# ```{glue:figure} fig_toy_elrs
# :name: fig-toy-elrs
#
# Individual ELRs $\eta_i(t) = \eta/\|\theta_i(t)\|^2$ (solid) against their stability thresholds
# $1/\alpha_i$ (dashed, same colour), one panel per total ELR of panel (a).
# ```
#
# At the smallest ELR, group {glue:text}`tuned_group` starts unstable, with
# $\eta_i\alpha_i$ = {glue:text}`tuned_k_initial:.2f`; its oscillation feeds its norm until
# $\eta_i\alpha_i$ = {glue:text}`tuned_k_final:.2f`, and the run converges with every
# $\eta_i\alpha_i \le$ {glue:text}`first_k_max_final:.2f`. At $\eta$ = {glue:text}`middle_eta:g` no split can
# make all groups stable; the late-time $\eta_i\alpha_i$ (geometric means over the late window) are
# {glue:md}`middle_k_md`, close to each other and to the equalised value
# $\eta\sum_i\alpha_i$ = {glue:text}`middle_k_equalised:.2f`: the groups hover just above their thresholds,
# all equally. At $\eta$ = {glue:text}`last_eta:g` the individual ELRs swing over orders of magnitude and the
# smallest late-time $\eta_i\alpha_i$ is {glue:text}`last_k_min:.3g`, far above 1.

# %% tags=["hide-input"]
fig = plotting.toy.plot_individual_elrs(examples)
glue("fig_toy_elrs", fig, display=False)
plt.close(fig)

# %% [markdown]
# ## (c) A fine sweep over the total ELR
#
# We run {glue:text}`n_sweep` total ELRs from {glue:text}`eta_min:g` to {glue:text}`eta_max:g`
# ({glue:text}`per_decade` per decade) for {glue:text}`n_iterations` steps each and average the loss over the
# last {glue:text}`late_percent:.0f`% of the steps. A run counts as converged when its late-time loss is
# below {glue:text}`tolerance:.0e` of the random-direction level. The largest converged ELR of the sweep and
# the next one bracket the threshold; a zoomed sweep over that bracket and its neighbours
# ({glue:text}`zoom_per_decade` ELRs per decade) then measures it from each of the
# {glue:text}`n_inits` initial points.

# %%
sweep_etas = toy.log_spaced_etas(eta_min, eta_max, etas_per_decade)
sweep_options = dict(late_fraction=late_fraction, seed=seed, **common)
main = toy.sweep(sweep_etas, noise_std=noise_std, **sweep_options)
noisy = {f"gradient noise, std {std:g}": toy.sweep(sweep_etas, noise_std=std, **sweep_options)
         for std in comparison_noise_stds}
coarse = toy.measure_convergence_threshold(main, converged_tolerance)
grid_step = 10 ** (1 / etas_per_decade)
zoom_etas = toy.log_spaced_etas(coarse.last_below / grid_step, coarse.first_above * grid_step, zoom_etas_per_decade)
zoomed = toy.thresholds_over_inits(zoom_etas, init_seeds, alphas=alpha, dim=dim, tolerance=converged_tolerance,
                                   n_iterations=n_iterations, late_fraction=late_fraction, noise_std=noise_std,
                                   seed=seed)
ratios = np.array([estimate.estimate / threshold for estimate in zoomed])
onset = toy.random_walk_onset(main, random_walk_fraction)
noisy_onsets = {label: toy.random_walk_onset(result, random_walk_fraction) for label, result in noisy.items()}
above = main.etas >= coarse.first_above
cycle_deviation = np.abs(main.late_relative - toy.two_cycle_loss(main.etas, alpha) / level)[above]
near = (main.etas >= coarse.first_above) & (main.etas <= 1.5 * threshold)
late_k_sweep = main.late_elrs * alpha
equalised_spread = float(np.max(late_k_sweep[near].max(axis=1) / late_k_sweep[near].min(axis=1)))

glue("n_sweep", len(sweep_etas), display=False)
glue("eta_min", eta_min, display=False)
glue("eta_max", eta_max, display=False)
glue("per_decade", etas_per_decade, display=False)
glue("zoom_per_decade", zoom_etas_per_decade, display=False)
glue("n_iterations", n_iterations, display=False)
glue("late_percent", 100 * late_fraction, display=False)
glue("tolerance", converged_tolerance, display=False)
glue("coarse_low", coarse.last_below, display=False)
glue("coarse_high", coarse.first_above, display=False)
glue("threshold_measured", zoomed[0].estimate, display=False)
glue("threshold_ratio", float(ratios[0]), display=False)
glue("ratio_min", float(ratios.min()), display=False)
glue("ratio_max", float(ratios.max()), display=False)
glue("cycle_deviation", float(cycle_deviation.max()), display=False)
glue("equalised_spread", equalised_spread, display=False)
glue("largest_late_relative", float(main.late_relative.max()), display=False)
glue("random_walk_fraction", random_walk_fraction, display=False)
glue("onset_md", Markdown(
    f"reaches {random_walk_fraction:g} of the random-direction level from η ≈ {onset:.3g} on" if onset is not None
    else f"never reaches {random_walk_fraction:g} of the random-direction level in the sweep (up to η = {eta_max:g}): "
         f"the largest late-time value is {main.late_relative.max():.3f} of that level"), display=False)
glue("at_no_stable", float(np.interp(np.log(no_stable), np.log(main.etas), main.late_relative)), display=False)
glue("at_eta_max", float(main.late_relative[-1]), display=False)
glue("remark_md", Markdown(
    "So in this deterministic toy the range above the no-stable-group threshold is a 2-cycle plateau, not a "
    "random walk, as Remark 2 says." if onset is None
    else "So this deterministic toy does reach the random-walk level, which Remark 2 did not expect."), display=False)
glue("noisy_onsets_md", Markdown("; ".join(
    f"{label}: " + (f"from η ≈ {value:.3g}" if value is not None
                    else f"nowhere (largest late-time value {noisy[label].late_relative.max():.2f})")
    for label, value in noisy_onsets.items()) or "no noisy sweeps in this preset"), display=False)

# %% tags=["hide-input"]
main_label = "exact gradient" if noise_std == 0 else f"gradient noise, std {noise_std:g}"
fig = plotting.toy.plot_toy_sweep(main, noisy, main_label=main_label, random_walk_fraction=random_walk_fraction)
glue("fig_toy_sweep", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_toy_sweep
# :name: fig-toy-sweep
#
# Top: late-time loss relative to the random-direction level against the total ELR (dots), the 2-cycle
# prediction $(\sum_i\alpha_i - 1/\eta)/2$ (red), and sweeps with isotropic gradient noise (grey). Bottom:
# late-time $\eta_i\alpha_i$ of every group (1 = the group's stability threshold) and the equalised value
# $\eta\sum_i\alpha_i$. Shading: the ranges below $1/\sum_i\alpha_i$, between the two thresholds, and above
# $1/\min_i\alpha_i$.
# ```
#
# **Convergence threshold.** The sweep converges up to $\eta$ = {glue:text}`coarse_low:.4f` and not at
# {glue:text}`coarse_high:.4f`. The zoomed sweep puts the threshold at {glue:text}`threshold_measured:.4f`,
# which is {glue:text}`threshold_ratio:.3f` times $1/\sum_i\alpha_i$ = {glue:text}`threshold_theory:.4f`; over
# the {glue:text}`n_inits` initial points the ratio lies between {glue:text}`ratio_min:.3f` and
# {glue:text}`ratio_max:.3f`.
#
# **Chaotic equilibrium.** Above the threshold the late-time loss follows the 2-cycle law
# $(\sum_i\alpha_i - 1/\eta)/2$ to within {glue:text}`cycle_deviation:.3f` of the random-direction level over the
# whole sweep. Just above it (up to $1.5/\sum_i\alpha_i$) the groups' late-time $\eta_i\alpha_i$ agree with each
# other to a factor {glue:text}`equalised_spread:.3f` and sit on $\eta\sum_i\alpha_i$: the total constraint moves
# norm between the groups until all of them are equally far above their thresholds. Further up the split of
# the norm becomes erratic, while the loss still follows the law.
#
# **Random walk.** Crossing $1/\min_i\alpha_i$ = {glue:text}`no_stable_theory:.3g` changes little: the
# late-time loss is {glue:text}`at_no_stable:.3f` of the random-direction level there and
# {glue:text}`at_eta_max:.3f` at $\eta$ = {glue:text}`eta_max:g`. With the exact gradient the late-time loss
# {glue:md}`onset_md`. The 2-cycle law saturates at $\sum_i\alpha_i/2$, each group bouncing between
# $\pm 45°$ from its minimum, which is {glue:text}`plateau_limit:.3f` of the random-direction level.
# {glue:md}`remark_md` With isotropic gradient noise the random-walk criterion is met as follows:
# {glue:md}`noisy_onsets_md`. Noise lifts the groups whose gradient it drowns (small $\alpha_i$) towards the
# random level, and it keeps every run from converging exactly.
#
# ## (d) Total constraint against individual constraints
#
# Fixing each group's norm instead, $\|\theta_i\|^2 = r_i^2$ with the equal split $r_i^2 = 1/n$, freezes the
# individual ELRs at $\eta/r_i^2$: group $i$ converges iff $\eta\,\alpha_i < r_i^2$, so all groups converge
# only below $\min_i r_i^2/\alpha_i$ = {glue:text}`individual_theory:.4f`.

# %%
split = toy.equal_split(len(alpha))
individual = toy.sweep(sweep_etas, constraint="individual", radii_sq=split, noise_std=noise_std, **sweep_options)
individual_measured = toy.measure_convergence_threshold(individual, converged_tolerance)
glue("individual_theory", toy.individual_convergence_threshold(alpha, split), display=False)
glue("individual_low", individual_measured.last_below, display=False)
glue("individual_high", individual_measured.first_above, display=False)
glue("total_over_individual_measured", zoomed[0].estimate / individual_measured.estimate, display=False)
glue("total_over_individual", threshold / toy.individual_convergence_threshold(alpha, split), display=False)

# %% tags=["hide-input"]
fig = plotting.toy.plot_constraint_comparison(main, individual, split)
glue("fig_toy_constraints", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_toy_constraints
# :name: fig-toy-constraints
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
# thresholds' ratio is {glue:text}`total_over_individual:.2f`), because it finds the split of the norm that the
# fixed equal split lacks.
# Plotted against their own $\eta_i\alpha_i$, the groups of both constraints fall on
# the one-group curve: each group converges iff $\eta_i\alpha_i < 1$, and otherwise sits on its 2-cycle.
#
# ## Key numbers

# %%
# NBVAL_CHECK_OUTPUT
ratio = float(ratios[0])
print(f"1/sum alpha = {threshold:.4f}, 1/min alpha = {no_stable:.3g}")
print(f"threshold/(1/sum alpha) = {ratio:.2f}")
print(f"over {len(init_seeds)} initial points: {ratios.min():.2f} to {ratios.max():.2f}")
print(f"random-walk onset (exact gradient): {'none in the sweep' if onset is None else f'eta = {onset:.2g}'}")
assert abs(ratio - 1) < 0.05
assert np.all(np.abs(ratios - 1) < 0.05)

# %%
glue("runtime_s", time.perf_counter() - started, display=False)
