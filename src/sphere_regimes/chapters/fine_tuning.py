"""Chapter 04, fine-tuning (the authors' 2024 follow-up): pre-training on the sphere at the ELRs of the
three regimes for T1 epochs, then T2 epochs at a small ELR from each stored end point; the test error
after fine-tuning against the pre-training regime, the best constant-ELR run and training from scratch
(PAPER.md, "Fine-tuning"; claim 9)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import presets, regimes
from ..claims import Claim, ClaimSpec, Verdict, by_elr, claims_table, count_margin, count_verdict, spread
from ..config import RunConfig
from ..engine import load
from ..store import RunResult, RunStore
from ..table import per_seed, scientific
from . import editions, three_regimes
from .base import (Findings, MissingRunsError, Table, core_hours, data_description, load_results)
from .base import Params as _Params

NOTEBOOK = "04_fine_tuning"


@dataclass(frozen=True)
class Params(_Params):
    notebook = NOTEBOOK
    pretrain_elrs: tuple[float, ...] = (1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2)  # pre-training ELRs; empty: the three-regimes chapter's grid
    pretrain_epochs: int = 100  # pre-training epochs T1; 0: the three-regimes chapter's epochs (its runs are reused)
    seeds: tuple[int, ...] = ()  # init seeds; empty: the three-regimes chapter's seeds
    finetune_elr: float = 5e-4  # fine-tuning ELR on the sphere (regime 1 of the three-regimes chapter)
    finetune_epochs: int = 50  # fine-tuning epochs T2 (full metrics every epoch)
    average_epochs: int = 10  # test errors: mean over the evaluated epochs among the last this many epochs of a run
    sphere_preset: str = ""  # the preset whose three-regimes setting (network, data, batches, grid) this chapter uses; empty: its own

    def sphere(self) -> three_regimes.Params:
        """The three-regimes chapter's parameters (network, data, metric schedule, grid) under ``sphere_preset``, by
        default this preset: a second edition that does not recompute this chapter keeps its earlier edition's."""
        return three_regimes.Params.from_preset(self.sphere_preset or self.preset)


def pretraining_configs(params: Params) -> list[RunConfig]:
    """The pre-training runs: the three-regimes chapter's setting at ``pretrain_elrs`` x ``seeds`` for
    ``pretrain_epochs`` epochs ($T_1$); an empty list takes that chapter's ELR grid or seeds.

    ``pretrain_epochs = 0`` (or that chapter's epochs) reuses that chapter's runs. Other values train
    runs of their own without sharpness measurements: a run's epochs do not name it (a longer run
    extends a shorter one), so the missing sharpness is what names them apart, and a three-regimes
    chapter that measures no sharpness cannot have a different ``pretrain_epochs``.
    """
    source = params.sphere()
    elrs = params.pretrain_elrs or source.elrs
    seeds = params.seeds or source.seeds
    epochs = params.pretrain_epochs or source.epochs
    changes = {}
    if epochs == source.epochs:
        _refuse_extended_sources(params, source, elrs, seeds)
    else:
        if not source.sharpness_every:
            raise presets.PresetError(
                f"{presets.where(params.preset, NOTEBOOK)}: pretrain_epochs {epochs} differs from the epochs of "
                f"{three_regimes.NOTEBOOK} ({source.epochs}), whose runs measure no sharpness, so the pre-training "
                "runs would be those runs (epochs do not name a run); set pretrain_epochs to 0")
        changes["sharpness_every"] = 0
    return [three_regimes.base_config(source, elr=elr, seed=seed, epochs=epochs, **changes)
            for seed in seeds for elr in elrs]


def _refuse_extended_sources(params: Params, source: three_regimes.Params, elrs: tuple[float, ...],
                             seeds: tuple[int, ...]) -> None:
    """One-line refusal when a reused run of the three-regimes chapter is also one its budget study trains
    on: the run would end at ``budget_epochs``, and fine-tuning would start there instead of at $T_1$."""
    extended = sorted({(c.elr, c.seed) for c in three_regimes.budget_configs(source) if c.epochs > source.epochs}
                      & {(elr, seed) for elr in elrs for seed in seeds})
    if extended:
        runs = ", ".join(f"ELR {elr:g} seed {seed}" for elr, seed in extended)
        raise presets.PresetError(
            f"{presets.where(params.preset, NOTEBOOK)}: pretrain_epochs {params.pretrain_epochs} reuses "
            f"{three_regimes.NOTEBOOK}'s runs, but its "
            f"budget study trains {runs} to {source.budget_epochs} epochs, so fine-tuning would start there, not at "
            f"epoch {source.epochs}; set pretrain_epochs to another number of epochs (the pre-training gets runs of its own)")


def fine_tuning_config(pretraining: RunConfig, params: Params) -> RunConfig:
    """Fine-tuning of ``pretraining``: from its final weights, ``finetune_epochs`` epochs on the sphere at
    ``finetune_elr`` with the full metrics every epoch (the follow-up paper's protocol)."""
    return pretraining.replace(elr=params.finetune_elr, epochs=params.finetune_epochs,
                               dense_metric_epochs=params.finetune_epochs, sharpness_every=0,
                               init_from=pretraining.run_id)


def plan(params: Params, store: RunStore | None = None) -> list[RunConfig]:
    """The pre-training runs, then a fine-tuning run from each of them that has finished in the store;
    the sweep plans again after each pass, so the fine-tuning runs follow their pre-training. A
    pre-training run that diverged has no end point to start from and gets none."""
    store = store if store is not None else presets.preset_store(params.preset)
    pretraining = pretraining_configs(params)
    finished = [c for c in pretraining if (r := load(c, store)) is not None and r.status.status == "done"]
    return pretraining + [fine_tuning_config(c, params) for c in finished]


# --------------------------------------------------------------------------- the claims (follow-up 2024)

def _spec(name: str, **fields) -> ClaimSpec:
    """A claim of this chapter: id ``finetune.<name>``, the follow-up's protocol as its source."""
    return ClaimSpec(id=f"finetune.{name}", chapter=NOTEBOOK, section="fine-tuning-claims",
                     source="follow-up (2024), fine-tuning protocol (PAPER.md, \"Fine-tuning\"); claim 9", **fields)


LOW_REGIME2_BEST = _spec(
    "low_regime2_best",
    statement="pre-training in low regime 2, then fine-tuning at a small ELR, gives the best test error",
    paper="best fine-tuned ≈88.5% accuracy from pre-training at ≈1e-3 (low regime 2)",
    quantity="the pre-training ELR with the lowest mean fine-tuned test error (mean over seeds)",
    rule="held if it is the lowest regime-2 ELR of the pre-training grid, partly if another regime-2 ELR, "
         "not held otherwise",
    reading="\"low regime 2\" read as the lowest regime-2 ELR of our pre-training grid (our reading)",
    uses_regime_rule=True)

BEATS_CONSTANT = _spec(
    "beats_constant",
    statement="the best fine-tuned test error beats the best constant-ELR run",
    paper="≈88.5% fine-tuned against ≈86.5% at the best constant ELR (3e-4): 2 points",
    quantity="best constant-ELR test error minus the best fine-tuned one (points; both the mean over the last "
             "average_epochs epochs, mean over seeds)",
    rule="held if the mean beats the best constant ELR and every seed does, partly if the mean only, "
         "not held otherwise; untested unless T1 + T2 equals the constant-ELR runs' epochs",
    reading="the constant-ELR runs are the three-regimes chapter's, of the same total budget T1 + T2 (our reading)")

REGIME1_GAINS_LITTLE = _spec(
    "regime1_gains_little",
    statement="pre-training in regime 1 gains nothing from fine-tuning",
    paper="regime-1 pre-training gains nothing (no number)",
    quantity="at each regime-1 pre-training ELR: mean gain (pre-trained minus fine-tuned test error, points) "
             "minus the seeds' spread (max - min) of the gain; value: the largest over those ELRs",
    rule="held if at every regime-1 pre-training ELR the mean gain is no larger than the seeds' spread of "
         "the gain, partly at some, not held at none",
    reading="\"gains nothing\" read as: a gain no larger than its own seed-to-seed spread, i.e. not told apart "
            "from the seeds' noise (our reading)",
    uses_regime_rule=True)

REGIME3_NO_BETTER_THAN_SCRATCH = _spec(
    "regime3_no_better_than_scratch",
    statement="pre-training in regime 3 is no better than training from scratch",
    paper="regime-3 pre-training ≈ training from scratch (no number)",
    quantity="lowest mean fine-tuned test error over the regime-3 pre-training ELRs minus the from-scratch test "
             "error at the fine-tuning ELR over the same T2 epochs (points)",
    rule="held if no regime-3 pre-training ELR's mean fine-tuned error beats the from-scratch error, partly if "
         "some do, not held if all do",
    reading="\"≈ from scratch\" read as one-sided: no better than from scratch (our reading)",
    uses_regime_rule=True)

CLAIMS: list[ClaimSpec] = [LOW_REGIME2_BEST, BEATS_CONSTANT, REGIME1_GAINS_LITTLE, REGIME3_NO_BETTER_THAN_SCRATCH]


# --------------------------------------------------------------------------- the analysis

POINTS = 100.0  # test errors are stored as fractions; the chapter reports them in percent (points)


@dataclass(frozen=True)
class References:
    """The constant-ELR and from-scratch test errors the fine-tuned runs are compared with (fractions)."""

    constant_elr: float  # the three-regimes grid's ELR with the lowest late test error (mean over seeds)
    constant_error: float  # ... that error: mean over the last ``average_epochs`` epochs, mean over seeds
    best_epoch_elr: float  # the grid's ELR with the lowest best-epoch test error (mean over seeds)
    best_epoch_error: float  # ... that error (optimistic: early-stopped)
    scratch_errors: tuple[float, ...]  # per seed: from scratch at the fine-tuning ELR over the first T2 epochs

    @property
    def scratch_error(self) -> float:
        """Mean of :attr:`scratch_errors` over seeds (NaN when the grid has no run at the fine-tuning ELR)."""
        return float(np.mean(self.scratch_errors)) if self.scratch_errors else float("nan")


@dataclass
class FineTuningFindings(Findings):
    """The chapter's findings and the data of its figures."""

    runs: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per fine-tuned run (fine_tuning_runs)
    per_elr: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per pre-training ELR (per_pretraining_elr)
    references: dict[str, float] = field(default_factory=dict)  # figure legend -> test error of a reference line
    boundaries: list[float] = field(default_factory=list)  # the fixed-ELR map's boundaries (regimes.regime_map)
    spans: list[int] = field(default_factory=list)  # ... and the regime of each span between them
    curves: dict[float, dict[str, pd.DataFrame]] = field(default_factory=dict)  # pre-training ELR -> column -> band


def fine_tuning_runs(results: list[RunResult], summary: pd.DataFrame, params: Params) -> pd.DataFrame:
    """:func:`regimes.fine_tuning_summary` of ``results`` with ``map_regime``, the regime of the fixed-ELR
    map (``summary`` of the three-regimes grid, :func:`regimes.regime_at`) at the pre-training ELR, and
    ``gain`` = pre-trained minus fine-tuned test error (each the mean over the last ``average_epochs``)."""
    runs = regimes.fine_tuning_summary(results, params.average_epochs, params.sphere().num_classes)
    runs["map_regime"] = [regimes.regime_at(summary, elr) for elr in runs["pretrain_elr"]]
    runs["gain"] = runs["pretrained_error"] - runs["finetuned_error"]
    return runs


def _range(values: pd.Series) -> float:
    return float(values.max() - values.min())


def per_pretraining_elr(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per pre-training ELR of :func:`fine_tuning_runs`: the map's regime, each seed's pre-training
    regime (``"112"``: seed by seed), the means over seeds of the test errors before and after fine-tuning,
    the seeds' min and max after, the mean ``gain`` and its spread (max - min over seeds), and the mean
    train loss after fine-tuning."""
    return runs.groupby("pretrain_elr").agg(
        map_regime=("map_regime", "first"), pretrain_regimes=("pretrain_regime", per_seed),
        pretrained_error=("pretrained_error", "mean"), finetuned_error=("finetuned_error", "mean"),
        finetuned_min=("finetuned_error", "min"), finetuned_max=("finetuned_error", "max"),
        gain=("gain", "mean"), gain_spread=("gain", _range), finetuned_train_loss=("finetuned_train_loss", "mean"))


def references(grid: list[RunResult], params: Params) -> References:
    """The best constant-ELR run of the three-regimes ``grid`` by the fine-tuned runs' measure (mean test
    error over the last ``average_epochs`` epochs, mean over seeds), the optimistic best-epoch reference,
    and from scratch: the grid's runs at ``finetune_elr`` over their first ``finetune_epochs`` epochs
    (T2, the fine-tuning budget), by the same measure."""
    frame = pd.DataFrame([{"elr": r.config.elr, "best_epoch": r.metrics["test_error"].min(),
                           "late": regimes.tail_mean(r.metrics, "test_error", params.average_epochs)} for r in grid])
    per_elr = frame.groupby("elr")[["late", "best_epoch"]].mean()
    late_elr, best_epoch_elr = float(per_elr["late"].idxmin()), float(per_elr["best_epoch"].idxmin())
    scratch = tuple(regimes.tail_mean(r.metrics.loc[:params.finetune_epochs], "test_error", params.average_epochs)
                    for r in grid if np.isclose(r.config.elr, params.finetune_elr)
                    and r.config.epochs >= params.finetune_epochs)
    return References(late_elr, float(per_elr.loc[late_elr, "late"]), best_epoch_elr,
                      float(per_elr.loc[best_epoch_elr, "best_epoch"]), scratch)


def _seed_errors(runs: pd.DataFrame, elr: float) -> pd.Series:
    """The fine-tuned test errors (points) of the seeds pre-trained at ``elr``."""
    return POINTS * runs.loc[runs["pretrain_elr"] == elr, "finetuned_error"]


def low_regime2_best(runs: pd.DataFrame, per_elr: pd.DataFrame) -> Claim:
    """:data:`LOW_REGIME2_BEST`: is the pre-training ELR with the lowest mean fine-tuned test error the
    lowest regime-2 ELR of the pre-training grid (value: that ELR; margin: the gap to the runner-up)?"""
    regime2 = per_elr.index[per_elr["map_regime"] == 2]
    if len(per_elr) < 2:
        return LOW_REGIME2_BEST.untested("fewer than two pre-training ELRs were fine-tuned")
    if regime2.empty:
        return LOW_REGIME2_BEST.untested("no fine-tuned pre-training ELR is in regime 2 of the map")
    ranked = per_elr["finetuned_error"].sort_values()
    best, runner_up = float(ranked.index[0]), float(ranked.index[1])
    lowest = float(regime2.min())
    verdict = Verdict.HELD if best == lowest else Verdict.PARTLY if best in regime2 else Verdict.NOT_HELD
    regime = per_elr.loc[best, "map_regime"]
    ours = (f"best at ELR {scientific(best)} (regime {regime}): {spread(_seed_errors(runs, best))}%; lowest regime-2 "
            f"pre-training ELR {scientific(lowest)}")
    margin = (f"{POINTS * (ranked.iloc[1] - ranked.iloc[0]):.2f} points to the runner-up, ELR {runner_up:g} "
              f"(regime {per_elr.loc[runner_up, 'map_regime']})")
    reason = (f"the lowest mean fine-tuned error comes from ELR {best:g}, in regime {regime}"
              + ("" if verdict is Verdict.HELD else f", not the lowest regime-2 ELR {lowest:g}"))
    return LOW_REGIME2_BEST.measured(ours, best, verdict, margin, reason)


def beats_constant(runs: pd.DataFrame, per_elr: pd.DataFrame, refs: References, budgets: tuple[int, int]) -> Claim:
    """:data:`BEATS_CONSTANT`: does the best mean fine-tuned test error, and each of its seeds, beat the
    best constant-ELR run (value: the constant's error minus the fine-tuned mean, points)? ``budgets`` is
    ``(T1 + T2, the constant-ELR runs' epochs)``; the comparison needs them equal."""
    if budgets[0] != budgets[1]:
        return BEATS_CONSTANT.untested(f"T1 + T2 = {budgets[0]} epochs against {budgets[1]} of the constant-ELR "
                                       "runs: not the same budget")
    best = float(per_elr["finetuned_error"].idxmin())
    seeds = _seed_errors(runs, best)
    constant = POINTS * refs.constant_error
    advantage = constant - seeds.mean()
    every = bool((seeds < constant).all())
    verdict = Verdict.HELD if advantage > 0 and every else Verdict.PARTLY if advantage > 0 else Verdict.NOT_HELD
    ours = (f"{spread(seeds)}% after pre-training at ELR {scientific(best)}, against {constant:.2f}% (ELR "
            f"{scientific(refs.constant_elr)})")
    margin = f"mean {advantage:.2f} points below the constant, worst seed {constant - seeds.max():.2f}"
    reason = (f"the fine-tuned mean is {abs(advantage):.2f} points {'below' if advantage > 0 else 'above'} the best "
              f"constant ELR's; {'every' if every else 'not every'} seed beats it")
    return BEATS_CONSTANT.measured(ours, advantage, verdict, margin, reason)


def regime1_gains_little(per_elr: pd.DataFrame, n_seeds: int) -> Claim:
    """:data:`REGIME1_GAINS_LITTLE`: at each regime-1 pre-training ELR, is the mean gain of fine-tuning no
    larger than the seeds' spread of the gain (value: the largest gain minus spread, points)?"""
    members = per_elr[per_elr["map_regime"] == 1]
    if members.empty:
        return REGIME1_GAINS_LITTLE.untested("no fine-tuned pre-training ELR is in regime 1 of the map")
    if n_seeds < 2:
        return REGIME1_GAINS_LITTLE.untested("one seed: no spread to compare the gain with")
    excess = POINTS * (members["gain"] - members["gain_spread"])
    passed, total = int((excess <= 0).sum()), len(excess)
    worst = excess.idxmax()
    ours = (f"gain ≤ spread at {passed} of {total} regime-1 ELRs; worst: {POINTS * members.loc[worst, 'gain']:.2f} "
            f"against {POINTS * members.loc[worst, 'gain_spread']:.2f} points (ELR {scientific(worst)})")
    detail = by_elr(members.index, [f"gain {POINTS * row.gain:.2f}, spread {POINTS * row.gain_spread:.2f} points"
                                    for row in members.itertuples()], fmt=None)
    closest = excess.abs().idxmin()
    margin = f"{count_margin(passed, total)}; closest: ELR {closest:g}, gain minus spread {excess[closest]:.2f} points"
    reason = f"the mean gain is within the seeds' spread at {passed} of {total} regime-1 pre-training ELRs"
    return REGIME1_GAINS_LITTLE.measured(ours, excess.max(), count_verdict(passed, total), margin, reason, detail)


def regime3_no_better_than_scratch(per_elr: pd.DataFrame, refs: References, params: Params) -> Claim:
    """:data:`REGIME3_NO_BETTER_THAN_SCRATCH`: does no regime-3 pre-training ELR's mean fine-tuned test
    error beat the from-scratch one (value: the lowest of them minus from scratch, points)?"""
    members = per_elr[per_elr["map_regime"] == 3]
    if not refs.scratch_errors:
        return REGIME3_NO_BETTER_THAN_SCRATCH.untested(
            f"the three-regimes chapter has no run at the fine-tuning ELR {params.finetune_elr:g} of at least "
            f"{params.finetune_epochs} epochs")
    if members.empty:
        return REGIME3_NO_BETTER_THAN_SCRATCH.untested("no fine-tuned pre-training ELR is in regime 3 of the map")
    errors = POINTS * members["finetuned_error"]
    difference = errors - POINTS * refs.scratch_error
    passed, total = int((difference >= 0).sum()), len(difference)
    ours = (f"{passed} of {total} regime-3 ELRs no better than scratch, "
            f"{spread(POINTS * np.asarray(refs.scratch_errors))}%; best {errors.min():.2f}% (ELR "
            f"{scientific(errors.idxmin())})")
    closest = difference.abs().idxmin()
    margin = f"{count_margin(passed, total)}; closest: ELR {closest:g}, {difference[closest]:+.2f} points from scratch"
    reason = f"{total - passed} of {total} regime-3 pre-training ELRs beat training from scratch"
    return REGIME3_NO_BETTER_THAN_SCRATCH.measured(ours, difference.min(), count_verdict(passed, total), margin, reason,
                                                   by_elr(errors.index, [f"{e:.2f}%" for e in errors], fmt=None))


# --------------------------------------------------------------------------- the chapter

def analyse(params: Params, store: RunStore | None = None) -> FineTuningFindings:
    """Every number, table, figure datum and claim of the chapter from the runs of :func:`plan` and the
    three-regimes chapter's grid (its fixed-ELR map and constant-ELR references) in ``store``."""
    store = store if store is not None else presets.preset_store(params.preset)
    sphere = params.sphere()
    results = load_results(plan(params, store), store, NOTEBOOK, params.preset)
    grid = three_regimes.runs(sphere, store).grid
    summary = regimes.run_summary(grid, sphere.num_classes)
    runs = fine_tuning_runs(results, summary, params)
    if runs.empty:
        raise MissingRunsError(f"{NOTEBOOK}: no pre-training run of preset {params.preset!r} ended without "
                               "diverging, so nothing was fine-tuned")
    per_elr = per_pretraining_elr(runs)
    refs = references(grid, params)
    pretraining = [r for r in results if r.config.init_from is None]
    pretrain_epochs = pretraining[0].config.epochs
    claims = [low_regime2_best(runs, per_elr),
              beats_constant(runs, per_elr, refs, (pretrain_epochs + params.finetune_epochs, sphere.epochs)),
              regime1_gains_little(per_elr, runs["seed"].nunique()),
              regime3_no_better_than_scratch(per_elr, refs, params)]
    boundaries, spans = regimes.regime_map(summary)
    findings = FineTuningFindings(
        params=params, runs=runs, per_elr=per_elr, references=_reference_lines(refs, params),
        boundaries=boundaries, spans=spans, curves=_curves(results), claims=claims,
        tables={"fine_tuning": _table(per_elr), "claims": claims_table(claims)},
        key_numbers=[*(f"pre-training ELR {elr:g}: map regime {row.map_regime}, pre-training regimes "
                       f"{row.pretrain_regimes}" for elr, row in per_elr.iterrows()),
                     f"fine-tuned runs: {len(runs)}; not fine-tuned: {len(pretraining) - len(runs)}"])
    findings.values = {**_setting_values(params, results, store), **_claim_sentences(findings, refs)}
    editions.compare(findings, editions.earlier_findings(params, analyse))
    return findings


def _reference_lines(refs: References, params: Params) -> dict[str, float]:
    """The figure's horizontal reference lines: legend -> test error."""
    lines = {f"best constant ELR ({refs.constant_elr:g}), last epochs": refs.constant_error,
             f"best constant ELR ({refs.best_epoch_elr:g}), best epoch": refs.best_epoch_error}
    if refs.scratch_errors:
        lines[f"from scratch at ELR {params.finetune_elr:g}, epoch {params.finetune_epochs}"] = refs.scratch_error
    return lines


def _curves(results: list[RunResult]) -> dict[float, dict[str, pd.DataFrame]]:
    """Per pre-training ELR (sorted), the seed bands (:func:`regimes.seed_band`) of the fine-tuned runs'
    train loss and test error against the fine-tuning epoch."""
    source_elr = {r.config.run_id: r.config.elr for r in results if r.config.init_from is None}
    groups: dict[float, list[RunResult]] = {}
    for result in sorted((r for r in results if r.config.init_from is not None), key=lambda r: r.config.seed):
        groups.setdefault(source_elr[result.config.init_from], []).append(result)
    return {elr: {column: regimes.seed_band(groups[elr], column) for column in ("train_loss", "test_error")}
            for elr in sorted(groups)}


TABLE_COLUMNS = {"map_regime": "map regime", "pretrain_regimes": "pre-training regimes (per seed)",
                 "pretrained_error": "test error before (%)", "finetuned_error": "after (%)",
                 "finetuned_min": "after, min (%)", "finetuned_max": "after, max (%)", "gain": "gain (points)",
                 "gain_spread": "gain spread (points)", "finetuned_train_loss": "train loss after"}
"""The chapter's table: column of :func:`per_pretraining_elr` -> heading."""


def _table(per_elr: pd.DataFrame) -> Table:
    """The per-pre-training-ELR table as the chapter shows it (errors in percent)."""
    frame = per_elr.copy()
    errors = ["pretrained_error", "finetuned_error", "finetuned_min", "finetuned_max", "gain", "gain_spread"]
    frame[errors] = POINTS * frame[errors]
    frame = frame[list(TABLE_COLUMNS)].rename(columns=TABLE_COLUMNS).rename_axis("pre-training ELR")
    formats = {heading: ".2f" for column, heading in TABLE_COLUMNS.items() if column in errors}
    return Table(frame, {**formats, "pre-training ELR": scientific, "train loss after": ".3g"})


def _setting_values(params: Params, results: list[RunResult], store: RunStore) -> dict[str, object]:
    """The glued numbers and sentences of the chapter's setting (network, data, budgets, core-hours)."""
    sphere = params.sphere()
    pretraining = [r for r in results if r.config.init_from is None]
    tuned_from = {r.config.init_from for r in results if r.config.init_from is not None}
    not_tuned = [r.config.label() for r in pretraining if r.config.run_id not in tuned_from]
    pretrain_epochs = pretraining[0].config.epochs
    own = pretrain_epochs != sphere.epochs
    hours = {name: core_hours(runs, store)
             for name, runs in (("pre", pretraining), ("fine", [r for r in results if r.config.init_from]))}
    return {
        "width": sphere.width, "batch_size": sphere.batch_size, "sphere_epochs": sphere.epochs,
        "metric_every": sphere.metric_every, "pretrain_epochs": pretrain_epochs,
        "n_elrs": len({r.config.elr for r in pretraining}), "n_seeds": len({r.config.seed for r in pretraining}),
        "finetune_elr": params.finetune_elr, "finetune_epochs": params.finetune_epochs,
        "average_epochs": params.average_epochs,
        "sphere_setting_md": editions.sphere_setting_md(params.sphere_preset, "runs and the grid they are compared with"),
        "data_md": data_description(sphere.dataset, sphere.train_size),
        "pretraining_md": (f"these are runs of their own, so that $T_1 + T_2$ = "
                           f"{pretrain_epochs + params.finetune_epochs} epochs compares with the three-regimes "
                           f"chapter's constant-ELR runs of {sphere.epochs} epochs." if own else
                           "these are the three-regimes chapter's own runs."),
        "core_hours_md": (f"Training took {hours['pre']:.2f} core-hours of pre-training"
                          + ("" if own else " (the three-regimes chapter's runs)")
                          + f" and {hours['fine']:.2f} of fine-tuning."),
        "not_tuned_md": ("Every pre-training run was fine-tuned." if not not_tuned else
                         "Not fine-tuned (the pre-training run diverged, so it has no end point): "
                         + ", ".join(not_tuned) + "."),
    }


def _percent(value: float, unit: str = "%") -> str:
    """A test error (fraction) in percent (``unit`` after it), or "n/a" where the grid has no ELR for it."""
    return "n/a" if np.isnan(value) else f"{POINTS * value:.2f}{unit}"


def _verdict_md(claim: Claim) -> str:
    """The ledger's verdict on ``claim`` as the prose cites it."""
    return f"ledger: **{claim.verdict}**" + (f", {claim.reason}" if claim.verdict is Verdict.NOT_TESTED else "")


def _mean_over_regime(per_elr: pd.DataFrame, regime: int, column: str) -> float:
    """Mean of ``column`` over the pre-training ELRs in ``regime`` of the map (NaN if none)."""
    members = per_elr.loc[per_elr["map_regime"] == regime, column]
    return float(members.mean()) if len(members) else float("nan")


def _claim_sentences(findings: FineTuningFindings, refs: References) -> dict[str, str]:
    """The sentences of the section on the claims: each gives the numbers and cites the ledger's verdict."""
    per_elr, params = findings.per_elr, findings.params
    best_claim, constant_claim, regime1_claim, regime3_claim = findings.claims
    best = float(per_elr["finetuned_error"].idxmin())
    row = per_elr.loc[best]
    regime2 = per_elr.index[per_elr["map_regime"] == 2]
    advantage = refs.constant_error - row["finetuned_error"]
    every = row["finetuned_max"] < refs.constant_error
    error = {regime: _percent(_mean_over_regime(per_elr, regime, "finetuned_error")) for regime in (1, 2, 3)}
    gain = {regime: _percent(_mean_over_regime(per_elr, regime, "gain"), "") for regime in (1, 2)}
    first = max(params.finetune_epochs - params.average_epochs, 0) + 1  # the first epoch of the averaging window
    return {
        "best_md": (f"The lowest fine-tuned test error, {_percent(row['finetuned_error'])} (seeds "
                    f"{_percent(row['finetuned_min'])}–{_percent(row['finetuned_max'])}), comes from pre-training at "
                    f"ELR {best:g}, in regime {row['map_regime']} of the map; "
                    + (f"the lowest regime-2 pre-training ELR is {regime2.min():g}" if len(regime2) else
                       "no pre-training ELR is in regime 2") + f" ({_verdict_md(best_claim)}). The best constant-ELR "
                    f"run reaches {_percent(refs.constant_error)} (ELR {refs.constant_elr:g}): the fine-tuned best is "
                    f"{POINTS * abs(advantage):.2f} points {'lower' if advantage > 0 else 'higher'}, and "
                    f"{'every' if every else 'not every'} seed is lower ({_verdict_md(constant_claim)})."),
        "regime1_md": (f"The mean gain of fine-tuning (test error before minus after, in points) is "
                       f"{gain[1]} after regime-1 pre-training and {gain[2]} "
                       f"after regime-2 pre-training; after fine-tuning, regime 1 averages {error[1]} "
                       f"and regime 2 {error[2]} ({_verdict_md(regime1_claim)}; the gain and its "
                       "seeds' spread at each ELR are in the table above)."),
        "regime3_md": (f"After regime-3 pre-training the fine-tuned test error averages {error[3]}, "
                       f"against {_percent(refs.scratch_error)} from scratch at the fine-tuning ELR "
                       f"{params.finetune_elr:g} over the same {params.finetune_epochs} epochs "
                       f"({_verdict_md(regime3_claim)})."),
        "scratch_md": (f"the three-regimes chapter's run at the fine-tuning ELR {params.finetune_elr:g} from the "
                       f"initial point, over the evaluated epochs among epochs {first}–{params.finetune_epochs} (the "
                       f"budget of the fine-tuning): {_percent(refs.scratch_error)} (mean over "
                       f"{len(refs.scratch_errors)} seeds)." if refs.scratch_errors else
                       f"not available: the three-regimes chapter has no run at the fine-tuning ELR "
                       f"{params.finetune_elr:g} of {params.finetune_epochs} epochs or more."),
    }
