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
# **Claim ({cite:t}`kodryan2022three`, §4, Figure 1).** Train a fully scale-invariant network on the sphere at
# a fixed effective learning rate (ELR) from one common initial point. Depending on the ELR alone, the paper
# finds three regimes: (1) **convergence**, the train loss keeps falling towards zero and the best test error
# sits at the top of this range; (2) **chaotic equilibrium**, the loss and the effective gradient settle at
# stationary levels while the weights keep moving; (3) **divergence**, chance-level predictions and a random
# walk on the sphere. This page tests each of these statements on our runs; the verdicts
# ({glue:md}`claims_md`) are computed by rules written from the paper's wording
# (`sphere_regimes.chapters.three_regimes.CLAIMS`) and collected in the [claims](#claims) table.
#
# **Setting and runtime.** ConvNetSI of width {glue:text}`width` on {glue:md}`data_md`, batch
# {glue:text}`batch_size`, {glue:text}`epochs` epochs, {glue:text}`n_elrs` ELRs × {glue:text}`n_seeds` init
# seeds (the frozen last layer is shared), preset {glue:md}`preset_md`. The grid, boundary-search and
# constraint runs took {glue:text}`core_hours:.2f` core-hours of training; the pilot and the bfloat16
# validation (appendices) add {glue:text}`core_hours_other:.2f`, which the reproducibility page's total for
# this chapter includes. This page reads them all from the result store.

# %% tags=["parameters", "remove-cell"]
preset = "cpu"  # name of the preset that set these values
dataset = "fashion_mnist"  # fashion_mnist, cifar10 or cifar100
train_size = 10000  # first N training images (0: all of them)
width = 8  # ConvNetSI width: channels of the first conv layer
batch_size = 128  # images per step
epochs = 150  # epochs per run
dense_metric_epochs = 20  # full metrics (train-mode loss, test error, effective gradient) every epoch up to here
metric_every = 5  # ... then every this many epochs
drop_last_batch = False  # train on whole batches only (N // batch_size steps per epoch), see RunConfig
sharpness_every = 10  # Hutchinson sharpness every this many epochs (0: never)
elrs = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1]  # effective learning rates of the grid
seeds = [0, 1, 2]  # init seeds (the last layer is shared by all runs)
bisection_steps = 1  # rounds of geometric bisection of the ELR brackets where the regime changes
individual_elrs = [5e-3, 1e-1]  # ELRs also trained under the individual (per-layer) norm constraint, first seed
filter_elrs = []  # ELRs also trained under the official code's individual constraint (every filter at the common RMS norm), first seed
precision_elrs = []  # ELRs also trained with bfloat16 compute, every seed (validation of bfloat16)
budget_elrs = []  # the budget study: these runs of the grid (or its bisection) trained on to budget_epochs
budget_seeds = [0]  # ... for these seeds
budget_epochs = 1000  # ... epochs (the paper's budget)
budgets = [100, 150, 300, 1000]  # epochs after which the budget study reads its runs
budget_loss_levels = [1e-2, 1e-3]  # train-loss levels of the budget study's epochs to converge
pilot_widths = [4, 8, 16, 32]  # appendix: widths timed on this chapter's training set
pilot_train_sizes = [0]  # appendix: training-set sizes timed at this chapter's width (0: all images)
pilot_epochs = 2  # appendix: epochs of each pilot run (full metrics every epoch)

# %% tags=["remove-cell"]
from sphere_regimes import book, chapters, plotting

findings = chapters.three_regimes.analyse(chapters.three_regimes.Params.from_namespace(globals()))
book.glue_all(findings, plotting.three_regimes.figures)

# %% [markdown]
# (sec-regime-rule)=
# ## The regime rule, stated before the results
#
# Every label on this page comes from one rule (`sphere_regimes.regimes.classify`), which reads the end of a
# finished run: **regime 3** if its mean train error over the second half is within
# {glue:text}`rule_margin:g` of chance; **regime 2** if the weights keep moving, i.e. the
# {glue:md}`rule_statistic` angle they turn per epoch on the sphere over the last
# {glue:text}`rule_window_pct:.0f`% of the epochs is at least {glue:text}`rule_angle:g`° while the last
# train loss is at least {glue:text}`rule_loss:g`; **regime 1** otherwise.
#
# **How and when it was chosen.** Not before the runs. The first version of the chapter (commit `1f7eb05`,
# 2026-11-23 03:55) labelled runs by a power law fitted to the train loss over the second half. The first
# runs of the grid were committed at 03:55 (`f5a94f1`: ELR 1e-4 and 2e-4) and 04:16 (`d32e55f`: 5e-4 to
# 5e-3, seed 0); two minutes later, at 04:18, commit `ed415fc` replaced the power law by the angle
# threshold of 3°, because the loss spikes of the chaotic equilibrium fooled the trend test: the old rule
# would have called the 5e-3 run regime 1. The threshold was set between the two modes of the angle per
# epoch seen in those runs. The rule is therefore not pre-registered, and every verdict that depends on its
# labels is marked * in the claims table. The second edition of the `cpu` preset (whole batches, a wider grid,
# two bisection rounds) came later: the rule's parameters and the range of the table below were fixed in
# commit `ffc4615` (2026-12-01 13:09), and the first run of that edition was committed at 15:59 the same day.
# On those runs the rule was stated before the data was read, but it was still chosen on runs of the same
# network and data, so the * stays.
#
# **How much the labels depend on it.** The rule's choices are parameters of `RegimeRule`, with the book's
# values as defaults. The table below relabels the grid with one parameter at a time moved within the range
# the review of the first edition asked for (angle {glue:md}`range_angles_md`; chance margin
# {glue:md}`range_margins_md`; the last quarter or the last half of the epochs; median or mean), and gives
# every seed's label per ELR under each variation (a row per ELR, a column per rule, each digit one seed),
# then how many labels each variation changes and the boundaries it finds. Over all {glue:text}`n_rules_grid` combinations of these values, {glue:text}`n_unstable_runs` of
# the {glue:text}`n_labelled_runs` runs, at {glue:text}`n_unstable_elrs` of the {glue:text}`n_label_elrs`
# ELRs, change label at least once. Such a label is **unstable** and is shown as the book's label, a slash
# and the others (`1/2`: regime 1 by the book's rule, 2 under some rule of the range), here and in the regime
# table below: {glue:md}`unstable_md`. The claims keep the book's labels; a claim whose instances include an
# unstable label says so at the end of its reason. The boundaries (brackets of ELR) that the one-at-a-time
# variations find: {glue:md}`boundary_variants_md`.

# %% tags=["remove-input", "full-width"]
findings.tables["sensitivity"]

# %% [markdown]
# ## Figure 1: the three regimes
#
# Every ELR starts from the same initial point of each seed (the first seed's: train loss
# {glue:text}`initial_loss:.1f`, as the frozen last layer has norm 10, and mean effective gradient norm
# {glue:text}`initial_grad:.0f`). The metrics follow the paper's
# definitions: train loss in train mode (BatchNorm batch statistics) on un-augmented data, test error in eval
# mode, and the mean over minibatches of the gradient norm of the scale-invariant weights times their norm.
#
# :::{div} full-width
# ```{glue:figure} fig_regime_curves
# :name: fig-regime-curves
# :alt: The layout of the paper's Figure 1: train loss, test error and mean effective gradient norm against the epoch, one line per ELR from light (small ELR) to dark (large ELR) with the seeds' min-max band, and every run's path in the train loss against effective gradient norm plane from the common initial point.
# :width: 100%
#
# Train loss (log), test error and mean effective gradient norm (log) against the epoch, mean over the
# seeds with the min-max band, one colour per ELR (the legend gives each ELR's regime, by the rule below).
# Bottom right: every run's path in the train loss - effective gradient plane from the common initial
# point (star).
# ```
# :::
#
# (which-regime-each-run-is-in)=
# ## Which regime each run is in
#
# The labels are those of the rule stated in {ref}`sec-regime-rule` (*late angle per epoch* is its angle
# statistic); **the rule was chosen after the first runs of this preset had been seen**, so every verdict
# that depends on the labels is marked * in the claims table. The label also depends on the epoch budget:
# near the 1/2 boundary convergence can take very many epochs, so a run that would converge later is
# labelled 2 here. Per ELR, means over seeds (*majority regime*: the majority of the seeds; *regime per seed*:
# each seed's label; `1/2` marks a label that changes within the rule's range; *late test error* is the mean
# over the last {glue:text}`late_epochs` epochs):

# %% tags=["remove-input", "full-width"]
findings.tables["regimes"]

# %% [markdown]
# **Boundaries found** (on the grid, narrowed by {glue:text}`bisection_steps` rounds of geometric bisection):
# {glue:md}`boundaries_md` (the paper, ConvNetSI-32 on CIFAR-10: 1→2 between 5e-4 and 1e-3, 2→3 between
# 5e-3 and 5e-2). The lowest best-epoch test error, {glue:text}`best_test_error_pct:.2f`%, is reached at ELR
# {glue:md}`best_elr_md` (regime {glue:text}`best_regime`); the lowest late test error,
# {glue:text}`late_best_test_error_pct:.2f`%, at ELR {glue:md}`late_best_elr_md` (regime
# {glue:text}`late_best_regime`).
#
# ## The regimes' signatures
#
# :::{div} full-width
# ```{glue:figure} fig_regime_properties
# :name: fig-regime-properties
# :alt: Six panels against the ELR, one dot per run in its regime's colour on regime-shaded backgrounds: final train loss, test error, effective gradient norm, angle turned in the last epoch, cosine to the initial point, and ELR times sharpness.
# :width: 100%
#
# End-of-training metrics against the ELR, one dot per run in its regime's colour, the line the mean over
# seeds; background: the regimes by the rule above. The angle is the one the weights turn on the sphere in
# the last epoch; sharpness is the Hutchinson estimate of the trace of the Hessian at the point rescaled to
# unit norm.
# ```
# :::
#
# (regime-1-at-equal-loss)=
# ## Regime 1 at equal loss
#
# The paper (§4.1) compares the converging runs at equal train loss rather than at equal epoch. For every
# regime-1 run, the effective gradient norm and the sharpness where its train loss first falls to
# {glue:md}`loss_levels_md` (interpolated between the evaluated epochs that bracket the crossing; sharpness
# is measured every {glue:text}`sharpness_every` epochs), mean over seeds:

# %% tags=["remove-input", "full-width"]
findings.tables.get("equal_loss")

# %% [markdown]
# ## The per-layer effective learning rates
#
# The total constraint fixes only the joint norm of the four convolution layers, so each layer $i$ moves with
# its own ELR $\eta_i = \mathrm{lr}/\|w_i\|^2$, and $\sum_i 1/\eta_i = 1/\eta$ as in the toy chapter. Its
# counterpart of the toy's $\eta_i\alpha_i$ is $\mathrm{lr}\,\mathrm{tr}\,H_{ii}$, the layer's ELR times its
# sharpness on the unit sphere (Hutchinson estimate on {glue:text}`sharpness_images` training images).
#
# :::{div} full-width
# ```{glue:figure} fig_layer_self_tuning
# :name: fig-layer-self-tuning
# :alt: One column per regime: the per-layer ELRs against the epoch with the total ELR dashed, and below each layer's lr times the trace of its Hessian block.
# :width: 100%
#
# Top: per-layer ELRs of the first seed against the epoch (dashed: the total ELR) for one ELR per regime
# (the median ELR of each regime in the grid). Bottom: each layer's $\mathrm{lr}\,\mathrm{tr}\,H_{ii}$ on the
# sharpness schedule.
# ```
# :::
#
# ## Total against individual norm constraint
#
# Two individual constraints are trained, on the first seed:
# - **per layer** (at ELR {glue:md}`individual_elrs_md`): every layer keeps its own initial norm, so its ELR is
#   frozen at $\eta_i = \eta\,\|w_0\|^2/\|w_{i,0}\|^2$, the value the total-constraint run of the same $\eta$
#   starts from; the two runs differ only in whether the layers may trade norm.
# - **per filter (RMS norm)** (at ELR {glue:md}`filter_elrs_md`), the official code's choice (its `fix_all_elr`):
#   each of the $F$ filters of the SI layers is moved at the start, along its own direction, to the common norm
#   $\|w_0\|/\sqrt{F}$ and kept there. The total norm stays $\|w_0\|$, so the learning rate is the same, but the
#   initial point differs from every other run's and each filter's ELR is $F\eta$.
#
# :::{div} full-width
# ```{glue:figure} fig_network_constraints
# :name: fig-network-constraints
# :alt: One column per ELR: the train loss against the epoch under the total (solid), per-layer (dashed) and per-filter (dotted) constraints, and below the per-layer ELRs under each.
# :width: 100%
#
# Top: train loss against the epoch under the total (solid), per-layer (dashed) and per-filter RMS-norm
# (dotted) constraints, one column per ELR (title colour: the total-constraint run's regime). Bottom: the
# per-layer ELRs $\mathrm{lr}/\|w_i\|^2$ (solid: total constraint; flat under both individual constraints).
# ```
# :::

# %% tags=["remove-input", "full-width"]
findings.tables["constraints"]

# %% [markdown]
# At the end of training: {glue:md}`constraints_md`.
#
# (sec-budget)=
# ## How long is long enough?
#
# The paper trains for 1000 epochs; this chapter's grid for {glue:text}`epochs`. Near the 1→2 boundary the budget
# may decide the label: the authors' follow-up found the epochs a run needs to converge growing sharply there
# (ResNet18SI on CIFAR-10: 81–90 epochs at ELR 3e-4, 2621 at 3.9e-4). {glue:md}`budget_study_md` A run's
# *epochs to stay below* a loss level is the first evaluated epoch after which its train loss never exceeds the
# level again (evaluated every epoch up to {glue:text}`dense_metric_epochs`, then every
# {glue:text}`budget_metric_every`).
#
# :::{div} full-width
# ```{glue:figure} fig_budget
# :name: fig-budget
# :alt: Left, the train loss of each budget-study run against the epoch with the budgets marked; right, the epochs until the loss stays below each level against the ELR.
# :width: 100%
#
# Left: train loss against the epoch of each run of the study over its whole budget (dashed: the budgets it is
# read at). Right: epochs until the train loss stays below each level against the ELR (open markers on the
# dashed line: never within the run's epochs).
# ```
# :::

# %% tags=["remove-input"]
findings.tables["convergence"]

# %% [markdown]
# Labels and test errors after each budget (best: the best evaluated epoch; late: the mean over the last
# {glue:text}`late_epochs` epochs):

# %% tags=["remove-input", "full-width"]
findings.tables["budget"]

# %% [markdown]
# Where the 1→2 boundary lies among the study's ELRs: {glue:md}`budget_boundary_md`.
# {glue:md}`budget_resolution_md`

# %% tags=["remove-input"]
findings.tables["budget_boundary"]

# %% [markdown]
# (claims)=
# ## Claims
#
# Each claim of the paper that this chapter tests, our measurement and the verdict of its rule (`held`: at
# every instance the claim is about; `partly`: at some; `not held`: at none; * the verdict depends on the
# regime labels). The rules and the paper's wording they come from are in
# `sphere_regimes.chapters.three_regimes.CLAIMS`; `sphere-regimes claims PRESET` prints the whole ledger.

# %% tags=["remove-input", "full-width"]
findings.tables["claims"]

# %% [markdown]
# Every number the rules looked at where the *ours* column summarises them (per ELR: the mean over seeds, or
# one value per seed where the rule counts runs):

# %% tags=["remove-input", "full-width"]
findings.tables["claims_detail"]

# %% [markdown]
# {glue:md}`edition_md`

# %% tags=["remove-input", "full-width"]
findings.tables["edition_changes"]

# %% tags=["remove-cell"]
# NBVAL_CHECK_OUTPUT
print(findings.report())

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

# %% tags=["remove-input", "full-width"]
findings.tables["pilot"]

# %% [markdown]
# (precision)=
# ## Appendix: may bfloat16 compute the book's runs?
#
# This CPU's matrix units (AMX tiles) multiply bfloat16 matrices several times faster than float32 ones
# (`benchmarks/throughput.py` measures both peaks), so
# the engine can run the forward and backward passes under `torch.autocast` in bfloat16
# (`RunConfig.compute_dtype`; the weights, the optimizer step, the projection onto the sphere and every
# metric reduction stay in float32). Whether the book may use it was decided on data by a rule written down
# before any bfloat16 run of this preset existed (`sphere_regimes.chapters.three_regimes.precision_agreement`):
# train the grid's setting in bfloat16 with the same seeds at a set of ELRs across the three regimes; at
# each ELR, bfloat16 passes if (1) every bfloat16 seed's regime is one of the float32 seeds' regimes, and
# (2) for each summary the book uses (final train loss, best and late test error, final effective gradient,
# angle per epoch and cosine to the initial point), the bfloat16 mean over seeds lies inside the float32
# seeds' min–max range widened by half its width on each side; and no verdict of this chapter's claims may
# change when the bfloat16 runs take the place of the float32 ones.
#
# **Verdict.** {glue:md}`precision_md` The validation stopped once the rule had failed: more ELRs cannot turn
# a failed rule into a pass, so the ELRs planned above those in the table were not trained in bfloat16. The
# book's runs stay float32.

# %% tags=["remove-input", "full-width"]
findings.tables["precision"]

# %% [markdown]
# The numbers behind each row: the float32 seeds' range, the allowed interval and the bfloat16 mean.

# %% tags=["remove-input", "full-width"]
findings.tables["precision_detail"]
