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
# **Claim (the authors' NeurIPS 2024 follow-up; paper §4-§5 for the regimes).** Pre-train on the sphere at a
# fixed ELR, then fine-tune at a small ELR of regime 1. The best optimum comes from pre-training in the
# low part of regime 2 (the chaotic equilibrium), better than the best constant-ELR run; pre-training in
# regime 1 gives little; pre-training in regime 3 (a random walk) is no better than starting from scratch.
#
# **Setting and runtime.** Pre-training: the three-regimes chapter's setting under the same preset
# (ConvNetSI of width {glue:text}`width` on {glue:md}`data_md`, batch {glue:text}`batch_size`, total
# constraint, the same init and frozen last layer) for $T_1$ = {glue:text}`pretrain_epochs` epochs at
# {glue:text}`n_elrs` ELRs × {glue:text}`n_seeds` seeds; {glue:md}`pretraining_md` Fine-tuning: from each
# pre-training end point (its stored final weights), $T_2$ = {glue:text}`finetune_epochs` epochs on the sphere
# at ELR {glue:text}`finetune_elr:g` (same seed, full metrics every epoch); test errors are means over the
# last {glue:text}`average_epochs` epochs. Preset {glue:md}`preset_md`. {glue:md}`core_hours_md` This page
# reads all of them from the result store in {glue:text}`runtime_s:.0f` s.

# %% tags=["parameters"]
preset = "cpu"  # name of the preset that set these values
pretrain_elrs = [1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2]  # pre-training ELRs; empty: the three-regimes chapter's grid
pretrain_epochs = 100  # pre-training epochs T1; 0: the three-regimes chapter's epochs (its runs are reused)
seeds = []  # init seeds; empty: the three-regimes chapter's seeds
finetune_elr = 5e-4  # fine-tuning ELR on the sphere (regime 1 of the three-regimes chapter)
finetune_epochs = 50  # fine-tuning epochs T2 (full metrics every epoch)
average_epochs = 10  # test errors: mean over the evaluated epochs among the last this many epochs of a run

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

plotting.set_style()
params = presets.collect(globals(), "04_fine_tuning")
results = plans.load_results("04_fine_tuning", params)
sphere = presets.resolved_params(preset, "02_three_regimes")
num_classes = DATASET_INFO[sphere["dataset"]].num_classes
table = regimes.fine_tuning_summary(results, average_epochs, num_classes)
pretraining = [r for r in results if r.config.init_from is None]
finetuned = [r for r in results if r.config.init_from is not None]
not_tuned = [r for r in pretraining if r.config.run_id not in {f.config.init_from for f in finetuned}]

sphere_results = experiments.three_regimes_runs(sphere).grid
sphere_summary = regimes.run_summary(sphere_results, num_classes)
boundaries, spans = regimes.regime_map(sphere_summary)
table["map_regime"] = [regimes.regime_at(sphere_summary, elr) for elr in table["pretrain_elr"]]
own_pretraining = pretrain_epochs not in (0, sphere["epochs"])
core_hours = {name: report.core_hours(runs)
              for name, runs in (("fine-tuning", finetuned), ("pre-training", pretraining))}

glue("preset_md", Markdown(f"`{preset}`"), display=False)
glue("data_md", Markdown(report.data_description(sphere["dataset"], sphere["train_size"])), display=False)
glue("width", sphere["width"], display=False)
glue("batch_size", sphere["batch_size"], display=False)
glue("pretrain_epochs", pretraining[0].config.epochs, display=False)
glue("sphere_epochs", sphere["epochs"], display=False)
glue("pretraining_md", Markdown(
    f"these are runs of their own, so that $T_1 + T_2$ = {pretraining[0].config.epochs + finetune_epochs} epochs "
    f"compares with the three-regimes chapter's constant-ELR runs of {sphere['epochs']} epochs."
    if own_pretraining else "these are the three-regimes chapter's own runs."), display=False)
glue("n_elrs", table["pretrain_elr"].nunique(), display=False)
glue("n_seeds", table["seed"].nunique(), display=False)
glue("finetune_elr", finetune_elr, display=False)
glue("finetune_epochs", finetune_epochs, display=False)
glue("average_epochs", average_epochs, display=False)
glue("core_hours_md", Markdown(
    f"Training took {core_hours['pre-training']:.2f} core-hours of pre-training"
    + ("" if own_pretraining else " (the three-regimes chapter's runs)")
    + f" and {core_hours['fine-tuning']:.2f} of fine-tuning."), display=False)
glue("not_tuned_md", Markdown(
    "Every pre-training run was fine-tuned." if not not_tuned else
    "Not fine-tuned (the pre-training run diverged, so it has no end point): "
    + ", ".join(r.config.label() for r in not_tuned) + "."), display=False)

# %% [markdown]
# ## Test error after fine-tuning
#
# The references are the three-regimes chapter's constant-ELR runs (the same network trained for
# {glue:text}`sphere_epochs` epochs at one ELR): the best of them by the same measure (the mean test error over the evaluated
# epochs among its last {glue:text}`average_epochs` epochs, mean over seeds; that chapter evaluates every
# {glue:text}`metric_every` epochs at the end), and the lowest test error any of its epochs reached (mean
# over seeds at the best ELR by that measure: an optimistic, early-stopped reference). "From scratch" is
# {glue:md}`scratch_md` {glue:md}`not_tuned_md`
#
# ```{glue:figure} fig_fine_tuning
# :name: fig-fine-tuning
#
# Test error after fine-tuning (mean over the last epochs, see the text) against the pre-training ELR: a
# dot per seed, the mean over seeds and its min-max band (black), and the pre-training runs' own test
# error over their last epochs (grey). Red: the constant-ELR references. Background: the regimes of the
# three-regimes chapter's fixed-ELR map.
# ```

# %% tags=["hide-input"]
constant = pd.DataFrame([{"elr": r.config.elr, "tail_error": regimes.tail_mean(r.metrics, "test_error", average_epochs),
                          "best_test_error": r.metrics["test_error"].min()} for r in sphere_results])
per_elr = constant.groupby("elr")[["tail_error", "best_test_error"]].mean()
best_elr = float(per_elr["tail_error"].idxmin())
best_epoch_elr = float(per_elr["best_test_error"].idxmin())
references = {f"best constant ELR ({best_elr:g}), last epochs": float(per_elr.loc[best_elr, "tail_error"]),
              f"best constant ELR ({best_epoch_elr:g}), best epoch": float(per_elr.loc[best_epoch_elr, "best_test_error"])}
scratch = [r for r in sphere_results if np.isclose(r.config.elr, finetune_elr) and r.config.epochs >= finetune_epochs]
if scratch:
    scratch_error = float(np.mean([regimes.tail_mean(r.metrics.loc[:finetune_epochs], "test_error", average_epochs)
                                   for r in scratch]))
    references[f"from scratch at ELR {finetune_elr:g}, epoch {finetune_epochs}"] = scratch_error
    glue("scratch_md", Markdown(
        f"the three-regimes chapter's run at the fine-tuning ELR {finetune_elr:g} from the initial point, over the "
        f"evaluated epochs among epochs {max(finetune_epochs - average_epochs, 0) + 1}-{finetune_epochs} (the same "
        f"budget as the fine-tuning): {100 * scratch_error:.1f}% (mean over {len(scratch)} seeds)."), display=False)
else:
    scratch_error = float("nan")
    glue("scratch_md", Markdown(f"not available: the three-regimes chapter has no run at the fine-tuning ELR "
                                f"{finetune_elr:g} for {finetune_epochs} epochs."), display=False)
glue("metric_every", sphere["metric_every"], display=False)
fig = plotting.fine_tuning.plot_fine_tuning(table, references, boundaries, spans)
glue("fig_fine_tuning", fig, display=False)
plt.close(fig)

# %%
per_pretrain = table.groupby("pretrain_elr").agg(
    map_regime=("map_regime", "first"), pretrain_regimes=("pretrain_regime", lambda r: "".join(map(str, r))),
    pretrained_error=("pretrained_error", "mean"), finetuned_error=("finetuned_error", "mean"),
    finetuned_min=("finetuned_error", "min"), finetuned_max=("finetuned_error", "max"),
    finetuned_train_loss=("finetuned_train_loss", "mean"))
per_pretrain.style.format({"pretrained_error": "{:.4f}", "finetuned_error": "{:.4f}", "finetuned_min": "{:.4f}",
                           "finetuned_max": "{:.4f}", "finetuned_train_loss": "{:.3g}"})

# %% [markdown]
# The table gives, for every pre-training ELR, the regime of the map there and of each seed's pre-training
# run, the test error before and after fine-tuning (mean over seeds, with the seeds' minimum and maximum
# after) and the train loss after fine-tuning.
#
# ```{glue:figure} fig_fine_tuning_curves
# :name: fig-fine-tuning-curves
#
# Train loss (log) and test error against the fine-tuning epoch, one colour per pre-training ELR (mean
# over seeds, min-max band).
# ```

# %% tags=["hide-input"]
groups = {}
for result in sorted(finetuned, key=lambda r: r.config.seed):
    source = next(p for p in pretraining if p.config.run_id == result.config.init_from)
    groups.setdefault(source.config.elr, []).append(result)
fig = plotting.fine_tuning.plot_fine_tuning_curves(dict(sorted(groups.items())))
glue("fig_fine_tuning_curves", fig, display=False)
plt.close(fig)

# %%
best_tuned_elr = float(per_pretrain["finetuned_error"].idxmin())
best_tuned = per_pretrain.loc[best_tuned_elr]
constant_best = references[f"best constant ELR ({best_elr:g}), last epochs"]
regime2 = sorted(e for e, r in per_pretrain["map_regime"].items() if r == 2)
low_regime2 = regime2[:max(1, (len(regime2) + 1) // 2)]
gain = per_pretrain["pretrained_error"] - per_pretrain["finetuned_error"]
advantage = constant_best - best_tuned["finetuned_error"]


def mean_over(regime: int, column: pd.Series) -> float:
    """Mean of a per-pre-training-ELR column over the ELRs of one regime of the map (NaN if none)."""
    members = per_pretrain.index[per_pretrain["map_regime"] == regime]
    return float(column.loc[members].mean()) if len(members) else float("nan")


def points(value: float, unit: str = "%") -> str:
    """A fraction in percent (points), or "n/a" when the grid has no ELR for it."""
    return "n/a" if np.isnan(value) else f"{100 * value:.2f}{unit}"


claims = {
    "best_md": (f"The lowest fine-tuned test error, {100 * best_tuned['finetuned_error']:.2f}% (seeds "
                f"{100 * best_tuned['finetuned_min']:.2f}-{100 * best_tuned['finetuned_max']:.2f}%), comes from "
                f"pre-training at ELR {best_tuned_elr:g}, in regime {best_tuned['map_regime']} of the map"
                + (f", {'inside' if best_tuned_elr in low_regime2 else 'outside'} the low half of regime 2 "
                   f"(ELRs {', '.join(f'{e:g}' for e in low_regime2)})" if regime2 else " (the grid has no regime-2 ELR)")
                + f". The best constant-ELR run reaches {100 * constant_best:.2f}% (ELR {best_elr:g}): fine-tuning is "
                f"{100 * abs(advantage):.2f} points {'better' if advantage > 0 else 'worse'}, and "
                + ("every seed" if best_tuned["finetuned_max"] < constant_best else "not every seed")
                + " beats it."),
    "regime1_md": (f"Fine-tuning lowers the test error of regime-1 pre-training by {points(mean_over(1, gain), ' points')} "
                   f"on average, against {points(mean_over(2, gain), ' points')} for regime-2 pre-training; after "
                   f"fine-tuning, regime 1 averages {points(mean_over(1, per_pretrain['finetuned_error']))} and "
                   f"regime 2 {points(mean_over(2, per_pretrain['finetuned_error']))}."),
    "regime3_md": (f"After regime-3 pre-training the fine-tuned test error averages "
                   f"{points(mean_over(3, per_pretrain['finetuned_error']))}, against "
                   f"{points(scratch_error)} from scratch at the fine-tuning ELR with the same budget."),
}
for name, text in claims.items():
    glue(name, Markdown(text), display=False)

# %% [markdown]
# ## The paper's claims, checked
#
# - **The best optimum comes from the low part of regime 2** ("low half": the lower half of the grid's
#   regime-2 ELRs). {glue:md}`best_md`
# - **Regime-1 pre-training gives little.** {glue:md}`regime1_md`
# - **Regime-3 pre-training is no better than from scratch.** {glue:md}`regime3_md`
#
# ## Key numbers

# %%
# NBVAL_CHECK_OUTPUT
for elr, row in per_pretrain.iterrows():
    print(f"pre-training ELR {elr:g}: map regime {row['map_regime']}, pre-training regimes {row['pretrain_regimes']}")
print(f"fine-tuned runs: {len(finetuned)}; not fine-tuned: {len(not_tuned)}")

# %%
glue("runtime_s", time.perf_counter() - started, display=False)
