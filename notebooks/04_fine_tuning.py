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
# # Fine-tuning: which pre-training regime leads to the best optimum
#
# **Claim (the authors' follow-up {cite:p}`sadrtdinov2024large`; {cite:t}`kodryan2022three` §4-§5 for the
# regimes).** Pre-train on the sphere at a fixed ELR, then fine-tune at a small ELR of regime 1. The follow-up
# reports that the best optimum comes from pre-training in the low part of regime 2 (the chaotic equilibrium),
# better than the best constant-ELR run; that pre-training in regime 1 gains nothing; and that pre-training in
# regime 3 (a random walk) is no better than starting from scratch. This chapter tests the four statements on
# our setting; the {ref}`fine-tuning-claims` section gives the ledger's verdicts.
#
# **Setting and runtime.** Pre-training: the three-regimes chapter's setting under {glue:md}`sphere_setting_md`
# (ConvNetSI of width {glue:text}`width` on {glue:md}`data_md`, batch {glue:text}`batch_size`, total
# constraint, the same init and frozen last layer) for $T_1$ = {glue:text}`pretrain_epochs` epochs at
# {glue:text}`n_elrs` ELRs × {glue:text}`n_seeds` seeds; {glue:md}`pretraining_md:myst` Fine-tuning: from each
# pre-training end point (its stored final weights), $T_2$ = {glue:text}`finetune_epochs` epochs on the sphere
# at ELR {glue:text}`finetune_elr:g` (same seed, full metrics every epoch); test errors are means over the
# last {glue:text}`average_epochs` epochs. Preset {glue:md}`preset_md`. {glue:md}`core_hours_md` This page
# reads all of them from the result store.

# %% tags=["parameters", "remove-cell"]
preset = "cpu"  # name of the preset that set these values
pretrain_elrs = [1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2]  # pre-training ELRs; empty: the three-regimes chapter's grid
pretrain_epochs = 100  # pre-training epochs T1; 0: the three-regimes chapter's epochs (its runs are reused)
seeds = []  # init seeds; empty: the three-regimes chapter's seeds
finetune_elr = 5e-4  # fine-tuning ELR on the sphere (regime 1 of the three-regimes chapter)
finetune_epochs = 50  # fine-tuning epochs T2 (full metrics every epoch)
average_epochs = 10  # test errors: mean over the evaluated epochs among the last this many epochs of a run
sphere_preset = ""  # the preset whose three-regimes setting (network, data, batches, grid) this chapter uses; empty: its own

# %% tags=["remove-cell"]
from sphere_regimes import book, chapters, plotting

findings = chapters.fine_tuning.analyse(chapters.fine_tuning.Params.from_namespace(globals()))
book.glue_all(findings, plotting.fine_tuning.figures)

# %% [markdown]
# ## Test error after fine-tuning
#
# The references are the three-regimes chapter's constant-ELR runs (the same network trained for
# {glue:text}`sphere_epochs` epochs at one ELR): the best of them by the same measure (the mean test error over
# the evaluated epochs among its last {glue:text}`average_epochs` epochs, mean over seeds; that chapter evaluates
# every {glue:text}`metric_every` epochs at the end), and the lowest test error any of its epochs reached (mean
# over seeds at the best ELR by that measure: an optimistic, early-stopped reference). "From scratch" is
# {glue:md}`scratch_md` {glue:md}`not_tuned_md`
#
# ```{glue:figure} fig_fine_tuning
# :name: fig-fine-tuning
# :alt: Test error after fine-tuning against the pre-training ELR on the regime-shaded map: each seed as a dot, the mean with its band, the pre-training runs' own error in grey, and horizontal reference levels.
# :width: 100%
#
# Test error after fine-tuning (mean over the last epochs, see the text) against the pre-training ELR: a
# dot per seed, the mean over seeds and its min-max band (black), and the pre-training runs' own test
# error over their last epochs (grey). Red: the constant-ELR references. Background: the regimes of the
# three-regimes chapter's fixed-ELR map.
# ```

# %% tags=["remove-input", "full-width"]
findings.tables["fine_tuning"]

# %% [markdown]
# The table gives, for every pre-training ELR, the regime of the map there and of each seed's pre-training
# run, the test error before and after fine-tuning (mean over seeds, with the seeds' minimum and maximum
# after), the gain (before minus after, mean over seeds) with its spread over seeds (maximum minus minimum),
# and the train loss after fine-tuning.
#
# ```{glue:figure} fig_fine_tuning_curves
# :name: fig-fine-tuning-curves
# :alt: Two panels against the fine-tuning epoch: train loss on a log scale and test error, one colour per pre-training ELR from light (small) to dark (large).
# :width: 100%
#
# Train loss (log) and test error against the fine-tuning epoch, one colour per pre-training ELR (mean
# over seeds, min-max band).
# ```
#
# (fine-tuning-claims)=
# ## Claims
#
# - *Paper: the best optimum comes from low regime 2* (we take the lowest regime-2 ELR of the pre-training
#   grid), *and it beats the best constant ELR.* {glue:md}`best_md`
# - *Paper: regime-1 pre-training gains nothing* (our reading: the mean gain is no larger than its seeds'
#   spread at each regime-1 ELR). {glue:md}`regime1_md`
# - *Paper: regime-3 pre-training is no better than from scratch.* {glue:md}`regime3_md`
#
# The ledger's rows for this chapter (a verdict marked * depends on the regime rule, which was chosen after
# the first runs of the `cpu` preset had been seen):

# %% tags=["remove-input", "full-width"]
findings.tables["claims"]

# %% [markdown]
# {glue:md}`edition_md`

# %% tags=["remove-input", "full-width"]
findings.tables["edition_changes"]

# %% tags=["remove-cell"]
# NBVAL_CHECK_OUTPUT
print(findings.report())
