"""Chapter 02, the three regimes on real data (paper §4, Figure 1): a grid of fixed ELRs on the sphere,
a geometric bisection of the brackets where the regime changes, the individual constraint, and the
pilot that sized the setting."""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field

import pandas as pd
import torch

from .. import presets, regimes
from ..claims import (Claim, ClaimSpec, Verdict, by_elr, claims_table, count_margin, count_verdict, detail_table,
                      extremes, monotone_claim, ratio_margin, steps_in_direction, verdict_counts)
from ..config import RunConfig, check_finite
from ..models import ConvNetSI, si_parameters
from ..optim import SphereSGD
from ..regime_map import boundary_search
from ..store import RunResult, RunStore
from ..table import Table, scientific
from . import budget, editions
from .base import Findings, core_hours, data_description, load_results
from .base import NetworkParams

NOTEBOOK = "02_three_regimes"


@dataclass(frozen=True)
class Params(NetworkParams):
    notebook = NOTEBOOK
    sharpness_every: int = 10  # Hutchinson sharpness every this many epochs (0: never)
    elrs: tuple[float, ...] = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1)  # effective learning rates of the grid
    seeds: tuple[int, ...] = (0, 1, 2)  # init seeds (the last layer is shared by all runs)
    bisection_steps: int = 1  # rounds of geometric bisection of the ELR brackets where the regime changes
    individual_elrs: tuple[float, ...] = (5e-3, 1e-1)  # ELRs also trained under the individual (per-layer) norm constraint, first seed
    filter_elrs: tuple[float, ...] = ()  # ELRs also trained under the official code's individual constraint (every filter at the common RMS norm), first seed
    precision_elrs: tuple[float, ...] = ()  # ELRs also trained with bfloat16 compute, every seed (validation of bfloat16)
    budget_elrs: tuple[float, ...] = ()  # the budget study: these runs of the grid (or its bisection) trained on to budget_epochs
    budget_seeds: tuple[int, ...] = (0,)  # ... for these seeds
    budget_epochs: int = 1000  # ... epochs (the paper's budget)
    budgets: tuple[int, ...] = (100, 150, 300, 1000)  # epochs after which the budget study reads its runs
    budget_loss_levels: tuple[float, ...] = (1e-2, 1e-3)  # train-loss levels of the budget study's epochs to converge
    pilot_widths: tuple[int, ...] = (4, 8, 16, 32)  # appendix: widths timed on this chapter's training set
    pilot_train_sizes: tuple[int, ...] = (0,)  # appendix: training-set sizes timed at this chapter's width (0: all images)
    pilot_epochs: int = 2  # appendix: epochs of each pilot run (full metrics every epoch)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.elrs or not self.seeds:
            raise ValueError("elrs and seeds must not be empty")
        for elr in self.elrs + self.individual_elrs + self.filter_elrs + self.precision_elrs:
            check_finite("elr", elr, positive=True)
        if self.budget_elrs and not (max(self.budgets) <= self.budget_epochs and self.epochs <= self.budget_epochs):
            raise ValueError(f"budgets {list(self.budgets)} and epochs {self.epochs} must not exceed budget_epochs "
                             f"{self.budget_epochs}: the budget study reads its runs after at most that many epochs")
        if self.budget_elrs:
            probe = base_config(self, elr=self.budget_elrs[0], seed=self.budget_seeds[0], epochs=self.budget_epochs)
            short = [b for b in self.budgets if sum(map(probe.has_full_metrics, range(1, b))) < 2]
            if short:
                raise ValueError(f"budgets {short} leave fewer than 3 evaluated epochs to label a run (metrics every "
                                 f"epoch up to {self.dense_metric_epochs}, then every {self.metric_every}); use longer budgets")
        for name in ("individual_elrs", "filter_elrs"):
            outside = sorted(set(getattr(self, name)) - set(self.elrs))
            if outside:
                raise ValueError(f"{name} {outside} are not in the grid elrs {list(self.elrs)}: each individual-"
                                 "constraint run is compared with the total-constraint run of the same ELR")


def base_config(params: Params, **changes) -> RunConfig:
    """The chapter's common setting (dataset, model, data size, metric schedule), with ``changes``;
    ``train_size = 0`` means the whole training set."""
    values = dict(dataset=params.dataset, train_size=params.train_size or None, model="convnet_si",
                  width=params.width, batch_size=params.batch_size, epochs=params.epochs,
                  dense_metric_epochs=params.dense_metric_epochs, metric_every=params.metric_every,
                  sharpness_every=params.sharpness_every, drop_last_batch=params.drop_last_batch)
    return RunConfig(**{**values, **changes})


def grid_configs(params: Params, elrs: tuple[float, ...] | list[float]) -> list[RunConfig]:
    """Every seed at each of ``elrs``, total constraint (the grid and the boundary search)."""
    return [base_config(params, elr=float(elr), seed=seed) for elr in elrs for seed in params.seeds]


def plan(params: Params, store: RunStore | None = None) -> list[RunConfig]:
    """The grid (every ELR x every init seed on the sphere, total constraint, shared last layer), then
    ``bisection_steps`` rounds of boundary search (:func:`bisection_elrs`), the individual-constraint
    runs (:func:`individual_configs`) and the pilot (:func:`pilot_configs`)."""
    store = store if store is not None else presets.preset_store(params.preset)
    grid = [base_config(params, elr=elr, seed=seed) for seed in params.seeds for elr in params.elrs]
    return (grid + grid_configs(params, bisection_elrs(params, store)) + individual_configs(params) + pilot_configs(params)
            + precision_configs(params) + budget_configs(params))


def budget_configs(params: Params) -> list[RunConfig]:
    """The budget study's runs: the grid's setting at each of ``budget_elrs`` and ``budget_seeds`` for
    ``budget_epochs``. The epochs are not part of a run's id, so where the grid (or its bisection) has the
    same ELR and seed, this is that run trained on, and the grid reads its first ``epochs``."""
    return [base_config(params, elr=elr, seed=seed, epochs=params.budget_epochs)
            for elr in params.budget_elrs for seed in params.budget_seeds]


def precision_configs(params: Params) -> list[RunConfig]:
    """Every seed at each of ``precision_elrs`` with the passes in bfloat16 (``compute_dtype``), the grid's
    setting otherwise: the runs that decide whether bfloat16 leaves the regimes unchanged
    (:func:`precision_agreement`)."""
    return [base_config(params, elr=elr, seed=seed, compute_dtype="bfloat16")
            for elr in params.precision_elrs for seed in params.seeds]


def pilot_configs(params: Params) -> list[RunConfig]:
    """The pilot that sizes the chapter's setting: ``pilot_epochs`` epochs at the grid's first ELR (full
    metrics every epoch) for each of ``pilot_widths`` on the chapter's training set, and for each of
    ``pilot_train_sizes`` (0: all images) at the chapter's width."""
    shapes = {(w, params.train_size) for w in params.pilot_widths} | {(params.width, n) for n in params.pilot_train_sizes}
    epochs = params.pilot_epochs
    return [base_config(params, width=width, train_size=train_size or None, elr=params.elrs[0], seed=params.seeds[0],
                        epochs=epochs, dense_metric_epochs=epochs, sharpness_every=0)
            for width, train_size in sorted(shapes, key=lambda shape: (shape[0], shape[1] or 10**9))]


def individual_configs(params: Params) -> list[RunConfig]:
    """The first seed at each of ``individual_elrs`` under the per-layer individual constraint, and at each of
    ``filter_elrs`` under the official code's per-filter one.

    Per layer, each layer keeps its initial norm, so its ELR stays frozen at
    ``eta_i = elr ||w_0||^2 / ||w_i0||^2``, the value the total-constraint run of the same ELR starts from
    (paper §3, §5.2). Per filter (``grouping="filter_rms"``, the official ``fix_all_elr``), each of the F
    filters of the SI layers is moved at the start to the common RMS norm ``||w_0|| / sqrt(F)`` and kept there,
    so each filter's ELR is ``F elr`` and the total norm stays ``||w_0||`` (:class:`~sphere_regimes.optim.SphereSGD`).
    """
    return ([base_config(params, elr=elr, seed=params.seeds[0], constraint="individual", grouping="layer")
             for elr in params.individual_elrs]
            + [base_config(params, elr=elr, seed=params.seeds[0], constraint="individual", grouping="filter_rms")
               for elr in params.filter_elrs])


CONSTRAINT_NAMES = {"layer": "per layer", "filter_rms": "per filter (RMS norm)"}
"""How the chapter names the individual constraint of each ``grouping`` it trains."""


def constraint_name(config: RunConfig) -> str:
    """``total``, or the individual constraint's :data:`CONSTRAINT_NAMES` entry."""
    return "total" if config.constraint == "total" else CONSTRAINT_NAMES[config.grouping]


def bisection_elrs(params: Params, store: RunStore) -> list[float]:
    """ELRs that bisect (geometrically) the brackets where the majority regime changes, ``bisection_steps``
    rounds from the grid (:func:`sphere_regimes.regime_map.boundary_search`): after k rounds a grid step of
    2 is narrowed to ``2^(1/2^k)``. Until the store holds a round, the later rounds are not planned (the
    sweep plans again after each pass)."""
    return boundary_search(params.elrs, lambda elrs: grid_configs(params, elrs), store, params.num_classes,
                           params.bisection_steps)


@dataclass(frozen=True)
class Runs:
    """The chapter's finished runs by role."""

    grid: list[RunResult]  # total constraint: the ELR grid and the boundary search
    individual: list[RunResult]  # individual constraint (:func:`individual_configs`)
    pilot: list[RunResult]  # timing pilot (:func:`pilot_configs`)
    bfloat16: list[RunResult]  # the grid's setting with bfloat16 passes (:func:`precision_configs`)
    budget: list[RunResult]  # the budget study's runs to budget_epochs (:func:`budget_configs`)


def runs(params: Params, store: RunStore | None = None) -> Runs:
    """The chapter's finished runs under ``params``, by role (:class:`~.base.MissingRunsError` if any is missing)."""
    store = store if store is not None else presets.preset_store(params.preset)
    results = load_results(plan(params, store), store, NOTEBOOK, params.preset)
    pilot_ids = {c.run_id for c in pilot_configs(params)}
    budget = {c for c in budget_configs(params)}
    main = [r for r in results if r.config.run_id not in pilot_ids and r.config not in budget]
    float32 = [r for r in main if r.config.compute_dtype == "float32"]
    return Runs(grid=[r for r in float32 if r.config.constraint == "total"],
                individual=[r for r in float32 if r.config.constraint == "individual"],
                bfloat16=[r for r in main if r.config.compute_dtype == "bfloat16"],
                pilot=[r for r in results if r.config.run_id in pilot_ids],
                budget=[r for r in results if r.config in budget])


# --------------------------------------------------------------------------- claims

LOSS_LEVELS = (0.1, 0.05, 0.03)
"""Train losses at which the regime-1 runs are compared (paper §4.1: "at equal loss")."""
LATE_EPOCHS = 10
"""The late test error: the mean over the evaluated epochs among the last this many epochs (as in the
fine-tuning chapter), beside the best-epoch test error."""
NORM_RTOL = 1e-5
"""Float32 rounding of a norm over about 10^4 squares (eps * sqrt(n) ≈ 1.2e-7 * 100)."""

CLAIMS = [
    ClaimSpec("projection.norm_exact", NOTEBOOK, "The projection is exact: the total SI norm stays at ||w0|| after every step",
              "§2, Algorithm (projected SGD)", "exact", "largest relative deviation of the recorded SI norm from its initial "
              "value, over every recorded epoch of every total-constraint run",
              f"held if at most {NORM_RTOL:g} (float32 rounding of a sum of ~10^4 squares); not held otherwise",
              section="fig-regime-curves"),
    ClaimSpec("projection.elr_only", NOTEBOOK, "Only the ELR matters: scaling ||w0|| by c and lr by c^2 gives the same trajectory",
              "§2", "exact", "largest relative difference of the unit-norm weights after 20 steps of SphereSGD at ELR 1e-3 from "
              "||w0|| and from 10·||w0|| (float64, a width-2 ConvNetSI on fixed random data, BatchNorm eps 1e-300)",
              "held if at most 1e-9 (float64 rounding); not held otherwise"),
    ClaimSpec("regimes.three_ordered", NOTEBOOK, "Three regimes exist, ordered by the ELR and contiguous", "§4, Figure 1",
              "1: up to 5e-4, 2: 1e-3 to 5e-3, 3: from 5e-2 (ConvNetSI-32, CIFAR-10)", "the majority regime of the seeds at "
              "each ELR of the grid", "held if all three regimes occur and the majority regime never falls as the ELR "
              "grows; partly if only one of the two holds; not held otherwise", uses_regime_rule=True,
              section="which-regime-each-run-is-in"),
    ClaimSpec("regimes.boundaries", NOTEBOOK, "Boundaries (ConvNetSI-32, CIFAR-10): 1→2 between 5e-4 and 1e-3, 2→3 between "
              "5e-3 and 5e-2", "§4, Figure 1", "1→2 in (5e-4, 1e-3); 2→3 in (5e-3, 5e-2)", "our brackets of each boundary",
              "held if both our brackets overlap the paper's, partly if one does, not held if none (the paper says the "
              "boundaries may move with width and data: a shift is not a contradiction)", uses_regime_rule=True),
    ClaimSpec("regime1.loss_keeps_falling", NOTEBOOK, "Regime 1: the train loss keeps falling towards zero", "§4.1",
              "≈2e-4 at 5e-4 after 1000 epochs", "per regime-1 run: its last train loss against its train loss at half "
              "the run", "count of runs whose loss at the end is below the loss at half the run (count rule)",
              uses_regime_rule=True),
    ClaimSpec("regime1.larger_elr_lower_loss", NOTEBOOK, "Regime 1: a larger ELR converges to a lower loss", "§4.1, Figure 1",
              "8e-4 (1e-4) → 2e-4 (5e-4)", "final train loss, mean over seeds, per regime-1 ELR",
              "count of steps between neighbouring regime-1 ELRs at which the loss falls (count rule)",
              uses_regime_rule=True),
    ClaimSpec("regime1.larger_elr_lower_error", NOTEBOOK, "Regime 1: the test error improves with the ELR", "§4.1, Figure 1",
              "28% (1e-5) → 17% (5e-4)", "best-epoch test error, mean over seeds, per regime-1 ELR",
              "count of steps between neighbouring regime-1 ELRs at which the error falls (count rule)",
              uses_regime_rule=True),
    ClaimSpec("regime1.best_at_top", NOTEBOOK, "The best test error among fixed ELRs is at the top of regime 1 (best epoch)",
              "§4.1", "≈17% at 5e-4, the highest regime-1 ELR", "the ELR of the lowest best-epoch test error (mean over seeds)",
              "held if it is the highest regime-1 ELR of the grid; partly if another regime-1 ELR; not held otherwise",
              uses_regime_rule=True),
    ClaimSpec("regime1.best_at_top_late", NOTEBOOK, "The best test error among fixed ELRs is at the top of regime 1 "
              "(late mean)", "§4.1", "≈17% at 5e-4", f"the ELR of the lowest test error averaged over the last "
              f"{LATE_EPOCHS} epochs (mean over seeds)", "as regime1.best_at_top", uses_regime_rule=True),
    ClaimSpec("regime1.one_line", NOTEBOOK, "Regime 1 trajectories follow one common line in the loss–gradient plane",
              "§4.1, Figure 1 (bottom right)", "", "max/min over the regime-1 ELRs of the effective gradient where the "
              f"train loss first reaches each of {', '.join(map(str, LOSS_LEVELS))}",
              "held if within a factor 1.25 at every level; partly if within a factor 2 at every level; not held otherwise",
              reading="our reading of 'one line' on the paper's log-log panel spanning four decades: a factor 1.25 is "
              "about a line width there, a factor 2 a visibly separate but parallel line", uses_regime_rule=True,
              section="regime-1-at-equal-loss"),
    ClaimSpec("regime1.flatter_at_higher_elr", NOTEBOOK, "Regime 1: at equal loss a larger ELR sits at a flatter point "
              "(lower sharpness)", "§4.1", "", "sharpness where the loss first reaches each level, mean over seeds",
              "count of steps between neighbouring regime-1 ELRs, over all levels, at which the sharpness falls (count rule)",
              uses_regime_rule=True, section="regime-1-at-equal-loss"),
    ClaimSpec("regime2.loss_rises", NOTEBOOK, "Regime 2: the stationary loss rises with the ELR", "§4.2, Figure 1",
              "0.3–0.5 (1e-3) → 1.1–2.5 (5e-3)", "mean train loss over the second half, mean over seeds, per regime-2 ELR",
              "count of steps at which it rises (count rule)", uses_regime_rule=True),
    ClaimSpec("regime2.gradient_falls", NOTEBOOK, "Regime 2: the stationary effective gradient falls with the ELR",
              "§4.2, Figure 1", "40–60 (1e-3) → 18–40 (5e-3)", "mean effective gradient over the second half, mean over "
              "seeds, per regime-2 ELR", "count of steps at which it falls (count rule)", uses_regime_rule=True),
    ClaimSpec("regime2.elr_sharpness_constant", NOTEBOOK, "Regime 2: ELR × sharpness stays about constant", "§4.2", "",
              "max/min over the regime-2 ELRs of ELR × the last sharpness (mean over seeds)",
              "held if every product is positive and max/min is at most 2; not held otherwise",
              reading="our reading of 'about constant': within a factor 2, while the ELR itself varies by more",
              uses_regime_rule=True),
    ClaimSpec("regime2.weights_move", NOTEBOOK, "Regime 2: the weights keep moving (a chaotic equilibrium, not a minimum)",
              "§4.2", "", "cosine between the final and the initial weights, per regime-2 run",
              "count of runs whose cosine is below 0.5, i.e. that end more than 60° from the start (count rule)",
              reading="our reading of 'keep moving': far from the start at the end, measured apart from the regime "
              "rule's own angle per epoch", uses_regime_rule=True),
    ClaimSpec("regime3.loss_at_initial", NOTEBOOK, "Regime 3: the loss stays at its initial level", "§4.3, Figure 1",
              "≈10, the initial level", "mean train loss over the second half / the run's initial train loss, mean over "
              "seeds, per regime-3 ELR",
              "count of ELRs where the ratio is at least 0.8 (count rule)",
              reading="our reading of 'stays at its initial level': not more than 20% below it", uses_regime_rule=True),
    ClaimSpec("regime3.chance_error", NOTEBOOK, "Regime 3: the test error is at chance", "§4.3, Figure 1", "≈90%",
              "final test error, per regime-3 run", "count of runs within 0.05 of chance (1 - 1/classes) (count rule)",
              reading="our reading of 'chance': within 5 points", uses_regime_rule=True),
    ClaimSpec("regime3.gradient_huge", NOTEBOOK, "Regime 3: the effective gradient is huge", "§4.3, Figure 1",
              "≈1e4–3e4 against ≈600 at init (17–50×)", "final effective gradient / the initial one, mean over seeds, per "
              "regime-3 ELR", "count of ELRs where it is at least 10 (count rule)",
              reading="our reading of 'huge': at least 10× the initial value (the paper shows 17–50×)",
              uses_regime_rule=True),
    ClaimSpec("regime3.random_walk", NOTEBOOK, "Regime 3: the weights random-walk (cosine to the initial point → 0)",
              "§4.3", "", "|cosine| between the final and the initial weights, per regime-3 run",
              "count of runs with |cosine| at most 0.05 (count rule)",
              reading="our reading of '→ 0': within 0.05 (a random direction in 10^4 dimensions has |cos| ≈ 0.01)",
              uses_regime_rule=True),
]
SPECS = {spec.id: spec for spec in CLAIMS}

PRECISION_SUMMARIES = ("train_loss", "best_test_error", "late_test_error", "effective_grad_norm", "angle_epoch_deg",
                       "cos_to_init")
"""The per-run summaries of the book that bfloat16 must reproduce (columns of :func:`regimes.run_summary`, with
``late_test_error`` added by :func:`analyse`)."""


def precision_agreement(float32: pd.DataFrame, bfloat16: pd.DataFrame) -> pd.DataFrame:
    """The rule that decides whether bfloat16 may compute the book's runs, fixed before any bfloat16 run of
    the ``cpu`` preset existed (issue 16). ``float32`` and ``bfloat16`` are per-run summaries (``elr``,
    ``seed``, ``regime`` and :data:`PRECISION_SUMMARIES`) of the same ELRs and seeds.

    At each ELR bfloat16 passes if (1) every bfloat16 seed's regime is one of the float32 seeds' regimes (so
    where float32's own seeds disagree, any of their labels counts), and (2) for every summary the bfloat16
    mean over seeds lies inside the float32 seeds' range ``[min, max]`` widened by half its width on each side.
    bfloat16 passes as a whole if it passes at every ELR and no verdict of the claims ledger changes (checked
    on the ledger itself). One row per ELR: ``labels_agree``, ``<summary>_inside`` for each summary, ``passed``.
    """
    intervals = precision_intervals(float32, bfloat16)
    rows = []
    for elr, low_precision in bfloat16.groupby("elr"):
        row = {"elr": elr, "labels_agree": set(low_precision["regime"]) <= set(float32[float32["elr"] == elr]["regime"])}
        at_elr = intervals[intervals["elr"] == elr]
        row |= {f"{summary}_inside": inside for summary, inside in zip(at_elr["summary"], at_elr["inside"])}
        row["passed"] = all(v for k, v in row.items() if k != "elr")
        rows.append(row)
    return pd.DataFrame(rows)


def precision_intervals(float32: pd.DataFrame, bfloat16: pd.DataFrame) -> pd.DataFrame:
    """The numbers behind :func:`precision_agreement`, for reading: one row per ELR and summary with the float32
    seeds' ``low`` and ``high``, the ``allowed`` interval (widened by half the range on each side), the bfloat16
    seed mean and whether it is ``inside``."""
    rows = []
    for elr, low_precision in bfloat16.groupby("elr"):
        reference = float32[float32["elr"] == elr]
        if reference.empty:
            raise ValueError(f"no float32 runs at ELR {elr:g} to compare bfloat16 with")
        for column in PRECISION_SUMMARIES:
            low, high = reference[column].min(), reference[column].max()
            margin, mean = (high - low) / 2, low_precision[column].mean()
            rows.append({"elr": elr, "summary": column, "float32_min": low, "float32_max": high,
                         "allowed_low": low - margin, "allowed_high": high + margin, "bfloat16_mean": mean,
                         "inside": bool(low - margin <= mean <= high + margin)})
    return pd.DataFrame(rows)


def with_bfloat16(grid: list[RunResult], bfloat16: list[RunResult]) -> list[RunResult]:
    """The grid with each float32 run replaced by the bfloat16 run of the same ELR and seed, where one exists:
    the store the book would have read had these runs been computed in bfloat16."""
    low_precision = {(r.config.elr, r.config.seed): r for r in bfloat16}
    return [low_precision.get((r.config.elr, r.config.seed), r) for r in grid]


@dataclass
class ThreeRegimesFindings(Findings):
    """The chapter's findings and the data of its figures."""

    summary: pd.DataFrame = None  # regimes.run_summary of the grid, one row per run
    regime_of: dict[float, int] = field(default_factory=dict)  # the majority regime at each ELR
    groups: dict[float, list[RunResult]] = field(default_factory=dict)  # the grid's runs by ELR (bisection excluded)
    boundary_elrs: list[float] = field(default_factory=list)  # geometric midpoints of the regime brackets
    initial: pd.Series = None  # the common initial point's metrics
    chance_error: float = 0.9
    representative_elrs: list[float] = field(default_factory=list)  # one ELR per regime for the per-layer figure
    constraint_runs: dict[float, dict[str, RunResult]] = field(default_factory=dict)  # ELR -> constraint_name -> run, "total" first
    run_labels: pd.DataFrame = None  # regimes.label_ranges per run: the book's label and every label in the rule's range
    elr_labels: pd.Series = None  # ... per ELR, of the majority regime (e.g. "1/2")
    budget_runs: list[RunResult] = field(default_factory=list)  # the budget study's runs to budget_epochs
    convergence: pd.DataFrame = None  # budget.convergence_epochs of the budget runs


def analyse(params: Params, store: RunStore | None = None) -> ThreeRegimesFindings:
    """The chapter's numbers, tables and claims from its runs in ``store`` (default: the preset's)."""
    store = store if store is not None else presets.preset_store(params.preset)
    found = runs(params, store)
    findings = ThreeRegimesFindings(params=params)
    summary, regime_of, boundaries, equal_loss = _grid_analysis(found.grid, params)
    initial = found.grid[0].metrics.loc[0]
    findings.summary, findings.regime_of, findings.initial = summary, regime_of, initial
    findings.chance_error = 1 - 1 / params.num_classes
    findings.groups = regimes.by_elr([r for r in found.grid if r.config.elr in params.elrs])
    findings.boundary_elrs = [math.sqrt(low * high) for _, _, low, high in boundaries]
    findings.representative_elrs = regimes.representative_elrs(regime_of)
    findings.constraint_runs = _constraint_runs(found)
    findings.run_labels, findings.elr_labels = regimes.label_ranges(found.grid, params.num_classes)
    findings.values.update(_setting_values(params, found, store, initial))
    findings.values.update(_rule_values(findings))
    findings.values.update(_result_values(summary, regime_of, boundaries, equal_loss, findings))
    findings.tables = _tables(summary, equal_loss, findings, found, store)
    findings.tables["sensitivity"], findings.values["boundary_variants_md"] = _sensitivity(found.grid, params.num_classes)
    findings.claims = flag_unstable(_claims(found.grid, summary, regime_of, boundaries, equal_loss,
                                            findings.chance_error), findings.run_labels, regime_of)
    findings.key_numbers = _key_numbers(summary, regime_of, boundaries, findings)
    earlier = editions.earlier_findings(params, analyse)
    _precision_findings(findings, found, earlier)
    _budget_findings(findings, found, store, boundaries)
    editions.compare(findings, earlier, _claims_at_earlier_elrs(found, earlier, params))
    findings.tables["claims"] = claims_table(findings.claims)
    findings.tables["claims_detail"] = detail_table(findings.claims)
    findings.values["claims_md"] = _claims_sentence(findings.claims)
    return findings


def _constraint_runs(found: Runs) -> dict[float, dict[str, RunResult]]:
    """At each ELR with individual-constraint runs: the total-constraint run of the same seed, then those runs."""
    if not found.individual:
        return {}
    seed = found.individual[0].config.seed
    total_of = {r.config.elr: r for r in found.grid if r.config.seed == seed}
    by_elr: dict[float, dict[str, RunResult]] = {}
    for run in sorted(found.individual, key=lambda r: (r.config.elr, list(CONSTRAINT_NAMES).index(r.config.grouping))):
        by_elr.setdefault(run.config.elr, {"total": total_of[run.config.elr]})[constraint_name(run.config)] = run
    return by_elr


def _grid_summary(grid: list[RunResult], params: Params) -> pd.DataFrame:
    """The per-run summary of total-constraint runs: :func:`regimes.run_summary` with the late test error, the
    loss at half the run and the late loss over the initial one added."""
    summary = regimes.run_summary(grid, params.num_classes)
    ordered = sorted(grid, key=lambda r: (r.config.elr, r.config.seed))  # the summary's row order
    summary["late_test_error"] = [regimes.tail_mean(r.metrics, "test_error", LATE_EPOCHS) for r in ordered]
    summary["loss_at_half"] = [regimes.second_half(r.metrics)["train_loss"].iloc[0] for r in ordered]
    summary["late_loss_over_initial"] = [regimes.second_half(r.metrics)["train_loss"].mean() / r.metrics.loc[0, "train_loss"]
                                         for r in ordered]
    return summary


def _grid_analysis(grid: list[RunResult], params: Params):
    """:func:`_grid_summary`, the majority regime per ELR, the grid's boundaries and the regime-1 runs at
    equal loss (:func:`_equal_loss`)."""
    summary = _grid_summary(grid, params)
    regime_of = {float(e): int(r) for e, r in regimes.majority_regimes(summary).items()}
    return summary, regime_of, regimes.grid_boundaries(summary), _equal_loss(grid, regime_of)


def _precision_findings(findings: ThreeRegimesFindings, found: Runs, earlier: ThreeRegimesFindings | None) -> None:
    """The bfloat16 validation (issue 16): :func:`precision_agreement` at each ELR of ``precision_elrs``, and the
    verdicts of the chapter's claims recomputed on the grid with the bfloat16 runs in place of the float32 ones
    (:func:`with_bfloat16`). Adds the tables ``precision`` and ``precision_detail`` and the sentence
    ``precision_md``. A preset that trains no bfloat16 runs shows its ``earlier`` edition's validation, if any."""
    if not found.bfloat16 and earlier is not None and not earlier.tables["precision"].frame.empty:
        for name in ("precision", "precision_detail"):
            findings.tables[name] = earlier.tables[name]
        findings.values["precision_passed"] = earlier.values["precision_passed"]
        findings.values["precision_md"] = (
            f"This preset trains no bfloat16 runs: the validation shown is its earlier edition's (preset "
            f"`{earlier.params.preset}`), on that edition's own float32 runs. " + earlier.values["precision_md"])
        return
    if not found.bfloat16:
        findings.values["precision_md"] = ("This preset trains no bfloat16 runs (`precision_elrs` is empty), so "
                                           "this page computes no verdict on the precision.")
        findings.values["precision_passed"] = "is not tested"
        findings.tables["precision"] = findings.tables["precision_detail"] = Table(pd.DataFrame())
        return
    params = findings.params
    elrs = sorted({r.config.elr for r in found.bfloat16})
    float32 = findings.summary[findings.summary["elr"].isin(elrs)]
    bfloat16 = _grid_summary(found.bfloat16, params)
    agreement = precision_agreement(float32, bfloat16)
    grid = with_bfloat16(found.grid, found.bfloat16)
    changed = [(a.id, a.verdict, b.verdict) for a, b in zip(findings.claims, _claims_on(grid, params))
               if a.verdict != b.verdict]
    labels = {name: frame.groupby("elr")["regime"].agg(lambda r: " ".join(map(str, r)))
              for name, frame in (("float32", float32), ("bfloat16", bfloat16))}
    detail = precision_intervals(float32, bfloat16)
    outside = detail[~detail["inside"]].groupby("elr")["summary"].agg(", ".join)
    table = pd.DataFrame({"ELR": agreement["elr"], "float32 regimes": agreement["elr"].map(labels["float32"]),
                          "bfloat16 regimes": agreement["elr"].map(labels["bfloat16"]),
                          "labels agree": agreement["labels_agree"].map({True: "yes", False: "no"}),
                          "summaries outside": agreement["elr"].map(outside).fillna("none"),
                          "passed": agreement["passed"].map({True: "yes", False: "no"})})
    findings.tables["precision"] = Table(table, {"ELR": scientific}, show_index=False)
    findings.tables["precision_detail"] = Table(
        detail.assign(inside=detail["inside"].map({True: "yes", False: "no"})),
        {"elr": scientific, **{c: ".4g" for c in ("float32_min", "float32_max", "allowed_low", "allowed_high",
                                                  "bfloat16_mean")}},
        show_index=False, headings={"elr": "ELR", "float32_min": "float32 min", "float32_max": "float32 max",
                                    "allowed_low": "allowed from", "allowed_high": "allowed to",
                                    "bfloat16_mean": "bfloat16 mean", "inside": "inside"})
    failed = [scientific(e) for e, ok in zip(agreement["elr"], agreement["passed"]) if not ok]
    passed = not failed and not changed
    findings.values["precision_passed"] = "passes" if passed else "fails"
    findings.values["precision_md"] = (
        f"bfloat16 **{'passes' if passed else 'fails'}** the rule: "
        + (f"it agrees with float32 at all {len(elrs)} ELRs" if not failed else
           f"it fails at ELR {', '.join(failed)} of the {len(elrs)} tested")
        + (", and no verdict of this chapter's claims changes when its runs replace the float32 ones."
           if not changed else "; with its runs in place of the float32 ones, the verdicts change: "
           + "; ".join(f"`{claim}` {a} → {b}" for claim, a, b in changed) + "."))
    findings.key_numbers.append(f"bfloat16: {'passes' if passed else 'fails'} (failed ELRs: {', '.join(failed) or 'none'}; "
                                f"changed verdicts: {len(changed)})")


def _claims_at_earlier_elrs(found: Runs, earlier: ThreeRegimesFindings | None, params: Params) -> list[Claim] | None:
    """The chapter's claims on this preset's grid restricted to the ELRs of the ``earlier`` edition's grid
    (those this grid also has): a verdict that changes here changed under the same ELRs, with the setting."""
    if earlier is None:
        return None
    elrs = set(earlier.summary["elr"])
    grid = [r for r in found.grid if r.config.elr in elrs]
    if len({r.config.elr for r in grid}) < 2:
        return None
    return _claims_on(grid, params)


def _claims_on(grid: list[RunResult], params: Params) -> list[Claim]:
    """The chapter's claims (unflagged) measured on ``grid`` in place of the preset's own grid."""
    return _claims(grid, *_grid_analysis(grid, params), 1 - 1 / params.num_classes)


def _budget_findings(findings: ThreeRegimesFindings, found: Runs, store: RunStore,
                     grid_boundaries: list[tuple[int, int, float, float]]) -> None:
    """The budget study (:mod:`.budget`): the epochs until the train loss stays below each of
    ``budget_loss_levels``, the labels and test errors after each of ``budgets``, where the 1→2 boundary
    lies among the study's ELRs at each budget, and the claim ``budget.slower_near_boundary``. Adds the
    tables ``budget``, ``convergence`` and ``budget_boundary`` and the values ``budget_*``."""
    params = findings.params
    findings.budget_runs = sorted(found.budget, key=lambda r: (r.config.elr, r.config.seed))
    findings.convergence = budget.convergence_epochs(findings.budget_runs, params.budget_loss_levels)
    readings = budget.at_budgets(findings.budget_runs, params.budgets, params.num_classes, LATE_EPOCHS)
    boundary = budget.boundary_by_budget(readings)
    longest = readings[readings["budget"] == readings["budget"].max()] if len(readings) else readings
    findings.claims.append(budget.slower_near_boundary(findings.convergence, longest))
    findings.tables["budget"] = Table(readings, {"elr": scientific, "best_test_error": ".4f",
                                                 "late_test_error": ".4f", "train_loss": ".3g"},
                                      show_index=False, headings={**HEADINGS, "budget": "after epochs",
                                                                  "regime": "regime"})
    epochs = findings.convergence.pivot_table(index=["elr", "seed"], columns="level", values="epochs")
    epochs.columns = [f"epochs to stay below {level:g}" for level in epochs.columns]
    findings.tables["convergence"] = Table(epochs.reset_index(), {"elr": scientific, **{c: _epochs for c in epochs.columns}},
                                           show_index=False, headings=HEADINGS)
    findings.tables["budget_boundary"] = Table(boundary, {"below": scientific, "above": scientific},
                                               show_index=False,
                                               headings={"budget": "after epochs", "below": "highest regime-1 ELR",
                                                         "above": "next ELR of the study",
                                                         "regimes": "majority regime per ELR"})
    findings.values.update({
        "budget_metric_every": params.metric_every,
        "budget_study_md": _budget_study_sentence(params, len(findings.budget_runs),
                                                  core_hours(findings.budget_runs, store)),
        "budget_boundary_md": _budget_boundary_sentence(boundary),
        "budget_resolution_md": _budget_resolution_sentence(findings.params, boundary, grid_boundaries),
    })


def _budget_resolution_sentence(params: Params, boundary: pd.DataFrame,
                                grid_boundaries: list[tuple[int, int, float, float]]) -> str:
    """:func:`budget.resolution_sentence` at the study's longest budget, with the grid's 1→2 bracket (from
    ``grid_boundaries``, :func:`regimes.grid_boundaries` of the grid)."""
    if boundary.empty:
        return ""
    longest = boundary.iloc[-1]
    grid_bracket = next(((low, high) for below, above, low, high in grid_boundaries if (below, above) == (1, 2)), None)
    return budget.resolution_sentence((longest.below, longest.above), int(longest.budget), grid_bracket,
                                      params.epochs, params.budget_elrs)


def _budget_study_sentence(params: Params, n_runs: int, hours: float) -> str:
    """What the budget study trains and how it reads its runs, in words (one sentence when it trains none)."""
    if not params.budget_elrs:
        return ("This preset trains no budget study (its `budget_elrs` is empty), so the figure and tables of "
                "this section are empty.")
    seeds = ", ".join(map(str, params.budget_seeds))
    budgets = ", ".join(map(str, params.budgets))
    return (f"This study trains the grid's runs at ELR {_elr_list(params.budget_elrs)} (seed {seeds}) on to "
            f"**{params.budget_epochs}** epochs (**{n_runs}** runs, **{hours:.2f}** core-hours in all, their first "
            f"**{params.epochs}** epochs included) and reads each as it stood after {budgets} epochs, with the "
            "book's rule.")


def _epochs(epochs: float) -> str:
    """Epochs to stay below a level as the budget tables show them: "never" when the run did not."""
    return "never" if math.isinf(epochs) else f"{epochs:.0f}"


def _budget_boundary_sentence(boundary: pd.DataFrame) -> str:
    """Where the 1→2 boundary lies among the budget study's ELRs after each budget, in words; consecutive
    budgets with the same bracket share one clause ("after 100 and 150 epochs, between 2e-3 and 3.2e-3")."""
    if boundary.empty:
        return "this preset trains no budget study"
    worded = [(row.budget, _bracket_words(row)) for row in boundary.itertuples()]
    return "; ".join(f"after {_and_list([budget for budget, _ in clause])} epochs, {words}"
                     for words, clause in itertools.groupby(worded, key=lambda pair: pair[1]))


def _and_list(values: list[int]) -> str:
    """``[100, 150, 300]`` as "100, 150 and 300"."""
    return " and ".join([", ".join(map(str, values[:-1])), str(values[-1])]) if len(values) > 1 else str(values[0])


def _bracket_words(row) -> str:
    """One row of :func:`budget.boundary_by_budget` in words."""
    if math.isnan(row.below):
        return f"no ELR of the study converges (regimes {row.regimes})"
    if math.isnan(row.above):
        return f"every ELR of the study converges (up to {scientific(row.below)})"
    return f"between {scientific(row.below)} and {scientific(row.above)}"


def _equal_loss(grid: list[RunResult], regime_of: dict[float, int]) -> dict[str, pd.DataFrame]:
    """Effective gradient and sharpness of the regime-1 runs where their loss first reaches each level of
    :data:`LOSS_LEVELS`, mean over seeds (rows: ELR, columns: level); empty without regime-1 runs."""
    converging = [r for r in grid if regime_of[r.config.elr] == 1]
    if not converging:
        return {}
    return {column: regimes.at_equal_loss(converging, column, LOSS_LEVELS).groupby("elr").mean().drop(columns="seed")
            for column in ("effective_grad_norm", "sharpness")}


def _setting_values(params: Params, found: Runs, store: RunStore, initial: pd.Series) -> dict[str, object]:
    return {"data_md": data_description(params.dataset, params.train_size), "width": params.width,
            "batch_size": params.batch_size, "epochs": params.epochs, "n_elrs": len(params.elrs),
            "n_seeds": len(params.seeds), "core_hours": core_hours(found.grid + found.individual, store),
            "core_hours_other": core_hours(found.pilot + found.bfloat16, store),
            "initial_loss": float(initial["train_loss"]), "initial_grad": float(initial["effective_grad_norm"]),
            "bisection_steps": params.bisection_steps, "sharpness_every": params.sharpness_every,
            "sharpness_images": found.grid[0].config.sharpness_images, "individual_elrs_md": _elr_list(params.individual_elrs), "filter_elrs_md": _elr_list(params.filter_elrs),
            "pilot_epochs": params.pilot_epochs, "n_grid_runs": len(found.grid),
            "dense_metric_epochs": params.dense_metric_epochs, "late_epochs": LATE_EPOCHS,
            "loss_levels_md": ", ".join(f"{level:g}" for level in LOSS_LEVELS)}


def _elr_list(elrs: tuple[float, ...]) -> str:
    """``elrs`` as the chapter's prose lists them ("none" when empty)."""
    return ", ".join(scientific(elr) for elr in elrs) or "none"


def _result_values(summary: pd.DataFrame, regime_of: dict[float, int], boundaries, equal_loss,
                   findings: ThreeRegimesFindings) -> dict[str, object]:
    per_elr = summary.groupby("elr").mean(numeric_only=True)
    best_elr = float(per_elr["best_test_error"].idxmin())
    late_elr = float(per_elr["late_test_error"].idxmin())
    constraints = "; ".join(
        f"ELR {scientific(elr)}: " + ", ".join(f"{_outcome(run, findings)} under the {name} constraint" for name, run in by_name.items())
        for elr, by_name in findings.constraint_runs.items())
    return {
        "boundaries_md": "; ".join(f"{a}→{b} between ELR {scientific(low)} and {scientific(high)}"
                                   for a, b, low, high in boundaries)
        or "no regime change in this grid",
        "best_elr_md": scientific(best_elr), "best_regime": regime_of[best_elr],
        "best_test_error_pct": 100 * float(per_elr["best_test_error"].min()),
        "late_best_elr_md": scientific(late_elr), "late_best_regime": regime_of[late_elr],
        "late_best_test_error_pct": 100 * float(per_elr["late_test_error"].min()),
        "constraints_md": constraints or "no runs under the individual constraint in this preset",
    }


def _outcome(result: RunResult, findings: ThreeRegimesFindings) -> str:
    regime = regimes.run_regime(result, findings.params.num_classes)
    return (f"regime {regime} (loss {result.final['train_loss']:.3g}, test error {result.final['test_error']:.3f})")


def _rule_values(findings: ThreeRegimesFindings) -> dict[str, object]:
    """The rule as the chapter states it, and how many labels change within its range (:data:`regimes.RULE_RANGES`)."""
    rule, ranges, labels = regimes.RegimeRule(), regimes.RULE_RANGES, findings.run_labels
    unstable = labels[labels["unstable"]]
    return {
        "rule_angle": rule.moving_angle_deg, "rule_margin": rule.chance_margin, "rule_loss": rule.converged_loss,
        "rule_window_pct": 100 * rule.angle_window, "rule_statistic": rule.angle_statistic,
        "range_angles_md": ", ".join(f"{v:g}°" for v in ranges["moving_angle_deg"]),
        "range_margins_md": ", ".join(f"{v:g}" for v in ranges["chance_margin"]),
        "n_rules_grid": len(regimes.rule_grid(ranges)), "n_labelled_runs": len(labels), "n_unstable_runs": len(unstable),
        "n_unstable_elrs": int(findings.elr_labels.str.contains("/").sum()), "n_label_elrs": len(findings.elr_labels),
        "unstable_md": "; ".join(f"ELR {elr:.3g}: " + " ".join(group["labels"]) for elr, group in
                                 labels[labels["elr"].isin(set(unstable["elr"]))].groupby("elr")) or "none",
    }


def _sensitivity(grid: list[RunResult], num_classes: int) -> tuple[Table, str]:
    """The grid's boundaries and per-seed labels under the book's rule and each one-at-a-time variation of it,
    and a sentence listing each set of boundaries with the variations that find it (the book's first)."""
    frame = regimes.rule_sensitivity(grid, num_classes)
    variants = frame.groupby("boundaries", sort=False)["rule"].agg(", ".join)
    sentence = "; ".join(f"**{boundaries or 'no regime change'}** under {rules}" for boundaries, rules in variants.items())
    return Table(sensitivity_by_elr(frame)), sentence


def sensitivity_by_elr(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`regimes.rule_sensitivity` turned for reading: one row per ELR with each rule's per-seed labels in
    its column (the book's rule first), then the rows "labels changed" and "boundaries" (one bracket a line),
    so that a grid of many ELRs stays as wide as the few rules."""
    by_rule = frame.set_index("rule")
    labels = by_rule.drop(columns=["changed", "boundaries"]).T.rename_axis("ELR")
    totals = pd.DataFrame([by_rule["changed"].astype(str), by_rule["boundaries"].str.replace("), ", ")<br>")],
                          index=["labels changed", "boundaries"])
    return pd.concat([labels, totals]).rename_axis(columns=None)


def flag_unstable(claims: list[Claim], run_labels: pd.DataFrame, regime_of: dict[float, int]) -> list[Claim]:
    """The claims, with a note at the end of the reason of each claim that depends on the regime labels and
    whose instances include a label that changes within the rule's range (``run_labels`` of
    :func:`regimes.label_ranges`). The instances of a ``regimeN.*`` claim are taken to be the ELRs of majority
    regime N, those of a ``regimes.*`` claim every ELR. The verdicts stay those of the book's rule."""
    unstable = sorted(set(run_labels.loc[run_labels["unstable"], "elr"]))
    flagged = []
    for claim in claims:
        family = claim.id.split(".")[0]
        elrs = [e for e in unstable if family == "regimes" or family == f"regime{regime_of[e]}"]
        if claim.spec.uses_regime_rule and elrs:
            note = "; labels unstable within the rule's range at ELR " + ", ".join(scientific(e) for e in elrs)
            claim = dataclasses.replace(claim, reason=claim.reason + note)
        flagged.append(claim)
    return flagged


HEADINGS = {"elr": "ELR", "regime": "majority regime", "regimes": "regime per seed", "constraint": "norm constraint",
            "late_angle_deg": "late angle per epoch (°)", "train_loss": "final train loss",
            "late_train_loss": "train loss, 2nd-half mean", "best_test_error": "best test error",
            "late_test_error": "late test error", "test_error": "final test error",
            "effective_grad_norm": "effective gradient norm", "grad_over_initial": "eff. gradient / initial",
            "cos_to_init": "cosine to init", "decay_exponent": "loss decay exponent", "sharpness": "sharpness",
            "train_size": "training images", "seconds_per_epoch": "s per epoch",
            "projected_hours": "projected grid (h, 2 cores)"}
"""The headings (with units) that the chapter's tables show for the columns of its frames."""


def _tables(summary: pd.DataFrame, equal_loss, findings: ThreeRegimesFindings, found: Runs,
            store: RunStore) -> dict[str, Table]:
    seed_labels = findings.run_labels.groupby("elr")["labels"].agg(" ".join)
    per_elr = summary.groupby("elr").agg(
        late_angle_deg=("late_angle_deg", "mean"),
        train_loss=("train_loss", "mean"), late_train_loss=("late_train_loss", "mean"),
        best_test_error=("best_test_error", "mean"), late_test_error=("late_test_error", "mean"),
        effective_grad_norm=("effective_grad_norm", "mean"), grad_over_initial=("grad_over_initial", "mean"),
        cos_to_init=("cos_to_init", "mean"), decay_exponent=("decay_exponent", "mean"))
    per_elr.insert(0, "regimes", seed_labels.reindex(per_elr.index))
    per_elr.insert(0, "regime", findings.elr_labels.reindex(per_elr.index))
    tables = {"regimes": Table(per_elr, {"elr": scientific, "late_angle_deg": ".2g", "train_loss": ".3g",
                                         "late_train_loss": ".3g", "best_test_error": ".3f", "late_test_error": ".3f",
                                         "effective_grad_norm": ".3g", "grad_over_initial": ".3g",
                                         "cos_to_init": ".2f", "decay_exponent": ".2f"}, headings=HEADINGS)}
    if equal_loss:
        frame = pd.concat(equal_loss, axis=1)
        frame.columns = [f"{HEADINGS.get(name, name)} at loss {level:g}" for name, level in frame.columns]
        tables["equal_loss"] = Table(frame, {"elr": scientific, **{c: ".3g" for c in frame.columns}}, headings=HEADINGS)
    rows = [{"elr": elr, "constraint": name, "regime": regimes.run_regime(run, findings.params.num_classes),
             "train_loss": run.final["train_loss"], "test_error": run.final["test_error"],
             "late_angle_deg": regimes.late_angle_deg(run.metrics)}
            for elr, by_name in findings.constraint_runs.items() for name, run in by_name.items()]
    tables["constraints"] = Table(pd.DataFrame(rows, columns=["elr", "constraint", "regime", "train_loss", "test_error",
                                                              "late_angle_deg"]),
                                  {"elr": scientific, "train_loss": ".3g", "test_error": ".3f", "late_angle_deg": ".2g"},
                                  show_index=False, headings=HEADINGS)
    tables["pilot"], findings.values["pilot_md"] = _pilot(found, store, findings.params,
                                                         findings.values["core_hours"])
    return tables


def _pilot(found: Runs, store: RunStore, params: Params, hours: float) -> tuple[Table, str]:
    """Seconds per epoch of each pilot run (its wall time over its epochs, full metrics every epoch: an upper
    bound for a sparser schedule), the projected hours of the chapter's grid on 2 single-thread workers, and
    the sentence that compares them with the ``hours`` (core-hours) the runs took."""
    rows = [{"width": r.config.width, "train_size": r.config.train_size or 0,
             "seconds_per_epoch": (seconds := store.wall_seconds(r.config) / r.config.epochs),
             "projected_hours": seconds * len(found.grid) * params.epochs / 2 / 3600} for r in found.pilot]
    frame = pd.DataFrame(rows, columns=["width", "train_size", "seconds_per_epoch", "projected_hours"])
    chosen = frame[(frame["width"] == params.width) & (frame["train_size"] == params.train_size)]
    sentence = (
        "This preset runs no pilot." if frame.empty else
        f"At the chosen setting (width {params.width}, {params.train_size or 'all'} images) the pilot projected "
        + (f"{float(chosen['projected_hours'].iloc[0]):.1f} h" if len(chosen) else "(not timed)")
        + f"; the grid and individual-constraint runs took {hours / 2:.1f} h of wall time on 2 cores "
        f"({hours:.1f} core-hours). Over the 8-hour budget for this chapter alone: "
        + (", ".join(f"width {int(r.width)} on {int(r.train_size) or 'all'} images"
                     for r in frame.itertuples() if r.projected_hours > 8) or "none") + ".")
    return Table(frame, {"train_size": lambda n: f"{n}" if n else "all", "seconds_per_epoch": ".2f",
                         "projected_hours": ".2f"}, show_index=False, headings=HEADINGS), sentence


def _key_numbers(summary: pd.DataFrame, regime_of: dict[float, int], boundaries, findings) -> list[str]:
    labels = findings.run_labels.groupby("elr")["labels"].agg(" ".join)
    lines = [f"ELR {scientific(elr)}: regime {findings.elr_labels[elr]} (seeds: {labels[elr]})" for elr in sorted(regime_of)]
    lines.append("boundaries: " + "; ".join(f"{a}->{b} in ({low:g}, {high:g})" for a, b, low, high in boundaries))
    lines += [f"ELR {scientific(elr)}, {name} constraint: regime {regimes.run_regime(run, findings.params.num_classes)}"
              for elr, by_name in findings.constraint_runs.items() for name, run in by_name.items()]
    return lines


def _claims_sentence(claims: list[Claim]) -> str:
    counts = verdict_counts(claims)
    return ", ".join(f"{n} {verdict}" for verdict, n in counts.items() if n)


def _claims(grid: list[RunResult], summary: pd.DataFrame, regime_of: dict[float, int], boundaries, equal_loss,
            chance_error: float) -> list[Claim]:
    """Every claim of :data:`CLAIMS` measured on the chapter's runs, in that order."""
    per_elr = summary.groupby("elr").mean(numeric_only=True)
    in_regime = {r: summary[summary["elr"].map(regime_of) == r] for r in (1, 2, 3)}
    mean_of = {r: per_elr.loc[sorted(set(frame["elr"]))] for r, frame in in_regime.items()}
    return [
        _norm_exact(grid), _elr_only(), _three_ordered(summary, regime_of), _boundaries(boundaries),
        _count(SPECS["regime1.loss_keeps_falling"], in_regime[1], in_regime[1]["train_loss"] < in_regime[1]["loss_at_half"],
               "runs whose last loss is below their loss at half the run"),
        monotone_claim(SPECS["regime1.larger_elr_lower_loss"], mean_of[1]["train_loss"], rising=False,
                       what="the final train loss"),
        monotone_claim(SPECS["regime1.larger_elr_lower_error"], mean_of[1]["best_test_error"], rising=False,
                       what="the best-epoch test error", fmt=".4f"),
        _best_at_top(SPECS["regime1.best_at_top"], per_elr["best_test_error"], regime_of),
        _best_at_top(SPECS["regime1.best_at_top_late"], per_elr["late_test_error"], regime_of),
        _one_line(equal_loss),
        _flatter(equal_loss),
        monotone_claim(SPECS["regime2.loss_rises"], mean_of[2]["late_train_loss"], rising=True,
                       what="the stationary train loss"),
        monotone_claim(SPECS["regime2.gradient_falls"], mean_of[2]["late_effective_grad_norm"], rising=False,
                       what="the stationary effective gradient"),
        _elr_sharpness(mean_of[2]),
        _count(SPECS["regime2.weights_move"], in_regime[2], in_regime[2]["cos_to_init"] < 0.5,
               "runs ending more than 60° from the start"),
        _count(SPECS["regime3.loss_at_initial"], mean_of[3], mean_of[3]["late_loss_over_initial"] >= 0.8,
               "ELRs with late loss ≥ 0.8× the initial", values=mean_of[3]["late_loss_over_initial"]),
        _count(SPECS["regime3.chance_error"], in_regime[3], (in_regime[3]["test_error"] - chance_error).abs() <= 0.05,
               f"runs within 0.05 of chance ({chance_error:.2f})", values=in_regime[3]["test_error"]),
        _count(SPECS["regime3.gradient_huge"], mean_of[3], mean_of[3]["grad_over_initial"] >= 10,
               "ELRs with final eff. gradient ≥ 10× initial", values=mean_of[3]["grad_over_initial"]),
        _count(SPECS["regime3.random_walk"], in_regime[3], in_regime[3]["cos_to_init"].abs() <= 0.05,
               "runs with |cosine to the init| ≤ 0.05", values=in_regime[3]["cos_to_init"].abs()),
    ]


def _count(spec: ClaimSpec, frame: pd.DataFrame, passed: pd.Series, what: str, values: pd.Series | None = None) -> Claim:
    """A count-rule claim over the rows of ``frame`` (runs, or ELRs as its index); where ``values`` (the
    measured quantity) are given, ``ours`` adds their :func:`~sphere_regimes.claims.extremes` and the detail
    lists them all."""
    total, n = len(frame), int(passed.sum())
    if total == 0:
        return spec.untested("no run of the preset is in this regime")
    elrs = frame.get("elr", frame.index)
    counted = f"{n} of {total} {what}"
    ours, detail = (counted, "") if values is None else (f"{counted}; {extremes(elrs, values)}", by_elr(elrs, values))
    return spec.measured(ours, n / total, count_verdict(n, total), count_margin(n, total), counted, detail)


def _norm_exact(grid: list[RunResult]) -> Claim:
    spec = SPECS["projection.norm_exact"]
    norms = [r.metrics["si_norm"].dropna() for r in grid]
    deviation = max(float((n / n.iloc[0] - 1).abs().max()) for n in norms)
    verdict = Verdict.HELD if deviation <= NORM_RTOL else Verdict.NOT_HELD
    return spec.measured(f"{deviation:.2g} over {len(grid)} runs", deviation, verdict,
                         ratio_margin(deviation, NORM_RTOL, below=True), "the recorded norm never leaves the sphere "
                         "by more than float32 rounding" if verdict is Verdict.HELD else "the norm drifts off the sphere")


def _elr_only() -> Claim:
    spec = SPECS["projection.elr_only"]
    deviation = elr_only_deviation()
    verdict = Verdict.HELD if deviation <= 1e-9 else Verdict.NOT_HELD
    return spec.measured(f"{deviation:.2g}", deviation, verdict, ratio_margin(deviation, 1e-9, below=True),
                         "the two trajectories agree to float64 rounding" if verdict is Verdict.HELD
                         else "the trajectories differ")


def elr_only_deviation(scale: float = 10.0, steps: int = 20, elr: float = 1e-3) -> float:
    """Largest relative difference of the unit-norm SI weights after ``steps`` SphereSGD steps at ``elr`` from
    an initial point and from the same point scaled by ``scale`` (lr scales by ``scale^2``): paper §2, the
    trajectory depends on the ELR alone. A width-2 ConvNetSI in float64 on fixed random data, with the
    BatchNorm ``eps`` set to 1e-300, i.e. 0 in effect (the exact scale invariance the claim is about: ``eps`` breaks it at the level
    eps / variance of the activations)."""
    torch.manual_seed(0)
    images, labels = torch.randn(64, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (64,))
    finals = []
    for factor in (1.0, scale):
        torch.manual_seed(1)
        model = ConvNetSI(width=2, in_channels=1, num_classes=10).double()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eps = 1e-300
        si = si_parameters(model)
        with torch.no_grad():
            for tensor in si.values():
                tensor.mul_(factor)
        optimizer = SphereSGD(si, elr=elr)
        for _ in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
        flat = torch.cat([t.detach().flatten() for t in si.values()])
        finals.append(flat / flat.norm())
    return float((finals[0] - finals[1]).abs().max() / finals[0].abs().max())


def _three_ordered(summary: pd.DataFrame, regime_of: dict[float, int]) -> Claim:
    spec = SPECS["regimes.three_ordered"]
    labels = [regime_of[e] for e in sorted(regime_of)]
    present, ordered = set(labels) == {1, 2, 3}, labels == sorted(labels)
    unanimous = int(summary.groupby("elr")["regime"].nunique().eq(1).sum())
    verdict = Verdict.HELD if present and ordered else Verdict.PARTLY if present or ordered else Verdict.NOT_HELD
    ours = " ".join(str(label) for label in labels) + f" over {len(labels)} ELRs"
    return spec.measured(ours, float(present and ordered), verdict,
                         f"seeds unanimous at {unanimous} of {len(labels)} ELRs",
                         ("all three regimes, " if present else f"regimes {sorted(set(labels))} only, ")
                         + ("in ELR order" if ordered else "not in ELR order"))


PAPER_BRACKETS = {(1, 2): (5e-4, 1e-3), (2, 3): (5e-3, 5e-2)}
"""The paper's regime boundaries as ELR brackets (last ELR below, first above): Kodryan et al. 2022, §4 and
Figure 1 (ConvNetSI-32 on CIFAR-10, 1000 epochs); the one place the book takes them from."""
FOLLOW_UP_BOUNDARIES = {(1, 2): 5e-4, (2, 3): 2e-2}
"""The same boundaries as the authors' follow-up reports them (Sadrtdinov et al. 2024, ConvNetSI-32 on CIFAR-10,
200 epochs on the sphere): regime 2 spans a factor 40 in ELR there."""


def _boundaries(boundaries) -> Claim:
    spec = SPECS["regimes.boundaries"]
    ours = {(a, b): (low, high) for a, b, low, high in boundaries}
    if set(ours) != set(PAPER_BRACKETS):
        return spec.untested(f"this preset's grid has the changes {sorted(ours)}, not 1→2 and 2→3 once each")
    overlap = {key: ours[key][0] < high and low < ours[key][1] for key, (low, high) in PAPER_BRACKETS.items()}
    n = sum(overlap.values())
    text = "; ".join(f"{a}→{b} in ({scientific(ours[a, b][0])}, {scientific(ours[a, b][1])})" for a, b in PAPER_BRACKETS)
    factors = "; ".join(f"{a}→{b}: ours/paper {math.sqrt(ours[a, b][0] * ours[a, b][1]) / math.sqrt(lo * hi):.2g}×"
                        for (a, b), (lo, hi) in PAPER_BRACKETS.items())
    return spec.measured(text, n / 2, count_verdict(n, 2), f"geometric midpoints {factors}",
                         "ConvNetSI-8 on 10k Fashion-MNIST images, not ConvNetSI-32 on CIFAR-10; "
                         + ", ".join(f"{a}→{b} {'overlaps' if overlap[a, b] else 'misses'}" for a, b in PAPER_BRACKETS))


def _best_at_top(spec: ClaimSpec, errors: pd.Series, regime_of: dict[float, int]) -> Claim:
    one = sorted(e for e, r in regime_of.items() if r == 1)
    if not one:
        return spec.untested("no regime-1 ELR in this preset")
    best = float(errors.idxmin())
    verdict = Verdict.HELD if best == one[-1] else Verdict.PARTLY if best in one else Verdict.NOT_HELD
    runner_up = errors.drop(best).min() if len(errors) > 1 else math.nan
    return spec.measured(f"{100 * errors.min():.2f}% at ELR {scientific(best)} (top of regime 1: {scientific(one[-1])})",
                         best, verdict,
                         f"{100 * (runner_up - errors.min()):.2f} points ahead of the next ELR "
                         f"({scientific(float(errors.drop(best).idxmin()))})" if len(errors) > 1 else "",
                         f"the best ELR is {'the top of' if verdict is Verdict.HELD else 'inside' if best in one else 'outside'}"
                         " regime 1")


def _one_line(equal_loss) -> Claim:
    spec = SPECS["regime1.one_line"]
    if not equal_loss:
        return spec.untested("no regime-1 run in this preset")
    gradient = equal_loss["effective_grad_norm"]
    ratios = {level: gradient[level].max() / gradient[level].min() for level in LOSS_LEVELS
              if gradient[level].notna().sum() >= 2}
    if not ratios:
        return spec.untested("fewer than two regime-1 ELRs reach the loss levels")
    worst = max(ratios.values())
    verdict = Verdict.HELD if worst <= 1.25 else Verdict.PARTLY if worst <= 2 else Verdict.NOT_HELD
    bound = 1.25 if verdict is not Verdict.NOT_HELD and worst <= 1.25 else 2.0
    return spec.measured(", ".join(f"{r:.2f}× at loss {level:g}" for level, r in ratios.items()), worst, verdict,
                         ratio_margin(worst, bound, below=True) + ("" if worst <= 1.25 else "; 1.25 for held"),
                         f"the regime-1 paths are {'on one line' if verdict is Verdict.HELD else 'parallel, not one line'}"
                         f" (worst spread {worst:.2f}×)")


def _flatter(equal_loss) -> Claim:
    spec = SPECS["regime1.flatter_at_higher_elr"]
    if not equal_loss:
        return spec.untested("no regime-1 run in this preset")
    sharpness = {level: equal_loss["sharpness"][level].dropna() for level in LOSS_LEVELS}
    steps = {level: steps_in_direction(values.to_numpy(), rising=False) for level, values in sharpness.items()}
    passed, total = sum(s[0] for s in steps.values()), sum(s[1] for s in steps.values())
    if total == 0:
        return spec.untested("fewer than two regime-1 ELRs with sharpness at the loss levels")
    ours = (f"falls at {passed} of {total} steps (loss " + ", ".join(f"{level:g}: {n} of {k}" for level, (n, k)
                                                                     in steps.items()) + ")")
    detail = " — ".join(f"loss {level:g}: {by_elr(values.index, values)}" for level, values in sharpness.items())
    return spec.measured(ours, passed / total, count_verdict(passed, total), count_margin(passed, total),
                         f"the sharpness falls at {passed} of {total} steps of the ELR", detail)


def _elr_sharpness(two: pd.DataFrame) -> Claim:
    spec = SPECS["regime2.elr_sharpness_constant"]
    product = (two.index.to_series() * two["sharpness"]).dropna()
    if len(product) < 2:
        return spec.untested("fewer than two regime-2 ELRs with sharpness")
    ratio = float(product.max() / product.min())
    ours, detail = f"max / min {ratio:.2f}: {extremes(product.index, product)}", by_elr(product.index, product)
    if (product <= 0).any():  # a factor bounds the spread of positive values only: a sign change is not "about constant"
        non_positive = _elr_list(product.index[product <= 0])
        return spec.measured(ours, ratio, Verdict.NOT_HELD, f"≤ 0 at ELR {non_positive}: no factor bounds a quantity "
                             "that changes sign", f"ELR × sharpness changes sign (the sharpness estimate is ≤ 0 at ELR "
                             f"{non_positive}), so it is not about constant", detail)
    verdict = Verdict.HELD if ratio <= 2 else Verdict.NOT_HELD
    return spec.measured(ours, ratio, verdict, ratio_margin(ratio, 2.0, below=True), f"ELR × sharpness varies by "
                         f"{ratio:.2f}× while the ELR varies by {product.index.max() / product.index.min():.2f}×", detail)
