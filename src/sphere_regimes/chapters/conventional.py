"""Chapter 03, conventional training (paper §6): plain SGD with weight decay in the full parameter
space, read on the regime map of the three-regimes chapter.

:func:`analyse` reads the chapter's SGD runs and the three-regimes chapter's fixed-ELR runs of the same
preset, and measures the four claims of §6 (:data:`CLAIMS`): the RMS angular update per step approaches
``sqrt(2 lr wd / (1 + momentum))``, the effective learning rate levels off, runs of equal ``lr wd``
behave alike, and a run sits in the regime of its equilibrium ELR. The "late window" is the last
quarter of the epochs (:data:`sphere_regimes.conventional.LATE_FRACTION`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from .. import conventional, presets, regimes
from ..claims import Claim, ClaimSpec, claims_table, count_margin, count_verdict, spread
from ..config import RunConfig
from ..data import load_raw
from ..regimes import RegimeRule
from ..store import RunResult, RunStore
from ..table import Table, scientific
from . import editions, three_regimes
from .base import Findings, core_hours, data_description, load_results
from .base import NetworkParams
from .base import Params as _Params

NOTEBOOK = "03_conventional_training"
LEVEL_FACTOR = 2.0
"""An ELR "levels off" when its late window's max / min is at most this: the smallest step of the paper's
ELR grid (1e-4, 2e-4, 5e-4, 1e-3, ...; Figure 1), so that the run stays at one place of the regime map
(our reading of the words)."""


@dataclass(frozen=True)
class Params(_Params):
    """The chapter's parameters. The network and the data are the three-regimes chapter's under the same
    preset (:meth:`sphere`), whose regime map this chapter reads, so they are not repeated here."""

    notebook = NOTEBOOK
    epochs: int = 150  # epochs per run
    dense_metric_epochs: int = 20  # full metrics (train-mode loss, test error, effective gradient) every epoch up to here
    metric_every: int = 5  # ... then every this many epochs
    lrs: tuple[float, ...] = (0.1, 0.3, 1.0)  # SGD learning rates of the grid
    weight_decays: tuple[float, ...] = (1e-3, 3e-3, 1e-2)  # weight decays of the grid (lambda: the step adds -lr * lambda * w)
    momentum: float = 0.0  # heavy-ball momentum of SGD
    af_pairs: tuple[tuple[float, float], ...] = ((0.1, 1e-3), (1.0, 1e-2))  # [lr, weight decay] pairs also trained with convnet_af
    seeds: tuple[int, ...] = (0,)  # init seeds (the frozen last layer is shared by all runs)
    tolerance: float = 0.2  # an angular update within this relative distance of its theory counts as at equilibrium
    long_runs: tuple[tuple[float, float, int], ...] = ()  # [lr, weight decay, epochs] of long ConvNetSI runs (first seed), epochs: at least 2 / (2 lr wd) steps
    sphere_preset: str = ""  # the preset whose three-regimes setting (network, data, batches, map) this chapter uses; empty: its own

    def __post_init__(self) -> None:
        grid = {(lr, wd) for lr in self.lrs for wd in self.weight_decays}
        pairs = [(lr, wd) for lr, wd, _ in self.long_runs]
        bad = [run for run in self.long_runs if run[0] <= 0 or run[1] <= 0 or run[2] < 1]
        if bad:
            raise ValueError(f"long_runs {bad}: each needs lr > 0, weight decay > 0 and epochs >= 1")
        if set(pairs) & grid or len(set(pairs)) < len(pairs):
            raise ValueError(f"long_runs {list(self.long_runs)}: each (lr, weight decay) once and off the grid "
                             "(a run's id leaves out its epochs, so it would be the grid's run); change its lr")

    def sphere(self) -> three_regimes.Params:
        """The three-regimes chapter's parameters under ``sphere_preset``, by default this preset: the network, data
        and batches of this chapter, and the regime map it reads (a second edition that does not recompute this
        chapter keeps its earlier edition's)."""
        return three_regimes.Params.from_preset(self.sphere_preset or self.preset)


def plan(params: Params, store: RunStore | None = None) -> list[RunConfig]:
    """Every (lr, weight decay) of the grid on the fully scale-invariant net with the frozen last layer,
    then the ``convnet_af`` variant (affine BN, trainable last layer) at ``af_pairs``, for every seed, then
    the :func:`long_configs`; the three-regimes chapter's setting otherwise. The grid does not depend on
    finished runs, so ``store`` (which the other chapters' plans read) is not read."""
    net = params.sphere()
    runs = [("convnet_si", lr, wd) for lr in params.lrs for wd in params.weight_decays]
    runs += [("convnet_af", lr, wd) for lr, wd in params.af_pairs]
    grid = [sgd_config(params, net, model, lr, wd, seed, params.epochs) for seed in params.seeds for model, lr, wd in runs]
    return grid + long_configs(params, net)


def long_configs(params: Params, net: NetworkParams) -> list[RunConfig]:
    """The ``long_runs``: ConvNetSI at each (lr, weight decay) for its own number of epochs, first seed only,
    on the grid's network, data and metric schedule (``net``: :meth:`Params.sphere`)."""
    return [sgd_config(params, net, "convnet_si", lr, wd, params.seeds[0], epochs) for lr, wd, epochs in params.long_runs]


def sgd_config(params: Params, net: NetworkParams, model: str, lr: float, weight_decay: float, seed: int,
               epochs: int) -> RunConfig:
    """One SGD run of the chapter on the three-regimes chapter's network and data (``net``)."""
    return RunConfig(dataset=net.dataset, train_size=net.train_size or None, model=model, width=net.width,
                     batch_size=net.batch_size, epochs=epochs, dense_metric_epochs=params.dense_metric_epochs,
                     metric_every=params.metric_every, sharpness_every=0, optimizer="sgd", lr=lr,
                     weight_decay=weight_decay, momentum=params.momentum, seed=seed, drop_last_batch=net.drop_last_batch)


# --------------------------------------------------------------------------- claims (paper §6; fixed before any run is read)

_PER_SI_RUN = "per scale-invariant (ConvNetSI) SGD run"
_COUNTED = "held if every instance passes, partly if some do, not held if none"

CLAIMS: list[ClaimSpec] = [
    ClaimSpec(
        id="sgd.angular_update", chapter=NOTEBOOK, section="sec-sgd-angular",
        statement="With SGD and weight decay the angular update per step approaches √(2·lr·wd/(1+momentum))",
        source="§6 (the equilibrium of Wan et al. 2021, 'Spherical motion dynamics')",
        paper="√(2·lr·wd/(1+μ)) rad per step",
        quantity=f"{_PER_SI_RUN}: RMS angular update over every step of the late window (last quarter of the "
                 "epochs) / √(2·lr·wd/(1+μ)); the RMS is recorded per epoch, or for runs made before it was, implied "
                 "by the norms at the epochs' ends (exact for plain SGD up to θ²/12)",
        rule=f"a run passes if the ratio is within the chapter's `tolerance` (0.2 by default) of 1; {_COUNTED}",
        reading="'approaches' read as: within a relative `tolerance` of the theory by the end of the epoch budget; "
                "the 20% is our reading, the paper gives no tolerance. The law fixes the mean square of the angle "
                "(the norm balance holds on average over the steps), so it is read on the RMS over the window's "
                "steps; the first edition read it on the median over epochs of the mean angle, which lies below the "
                "RMS whenever the steps' angles vary: a fix of our reading, the tolerance unchanged"),
    ClaimSpec(
        id="sgd.elr_levels_off", chapter=NOTEBOOK, section="sec-sgd-angular",
        statement="The effective learning rate lr/‖w‖² levels off at an equilibrium",
        source="§6", paper="",
        quantity=f"{_PER_SI_RUN}: max / min of lr/‖w‖² over the late window",
        rule=f"a run passes if max / min ≤ {LEVEL_FACTOR:g} (a diverged run has no level and fails); {_COUNTED}",
        reading=f"'levels off' read as: over the late window the ELR stays within a factor {LEVEL_FACTOR:g}, the "
                "smallest step of the paper's ELR grid (1e-4, 2e-4, 5e-4, 1e-3, … in Figure 1), i.e. at one place "
                "of the regime map; our reading"),
    ClaimSpec(
        id="sgd.equal_lr_wd_alike", chapter=NOTEBOOK, section="sec-sgd-equal",
        statement="Runs with equal lr·wd behave alike (the equilibrium depends on lr·wd alone)",
        source="§6 (Li, Lyu & Arora 2020)", paper="",
        quantity="per value of lr·wd shared by several learning rates (ConvNetSI): max / min of the runs' "
                 "equilibrium ELR (median of lr/‖w‖² over the late window)",
        rule=f"a group passes if max / min ≤ 1 + `tolerance` (a diverged run fails its group); {_COUNTED}",
        reading="'alike' read as: equal equilibrium ELRs, within the relative `tolerance` of the angular-update "
                "claim; our reading"),
    ClaimSpec(
        id="sgd.regime_of_equilibrium_elr", chapter=NOTEBOOK, section="sec-sgd-map", uses_regime_rule=True,
        statement="A run sits in the regime of its equilibrium ELR on the sphere's map, with periodic "
                  "destabilisation when that ELR is in regime 1",
        source="§6",
        paper="2021 paper (ConvNetSI-32, CIFAR-10): lr 1, wd 1e-3 settles near ELR 1e-3 in a chaotic equilibrium",
        quantity="per SGD run with an equilibrium (both nets): its own regime (the three-regimes chapter's rule) "
                 "against the regime of the sphere's fixed-ELR map at its equilibrium ELR",
        rule=f"a run passes if the two regimes are equal; {_COUNTED}",
        reading="'sits in the regime' read as: the same label under the regime rule, which was made for fixed-ELR "
                "runs and labels a run that destabilises again and again as regime 2"),
]
"""The chapter's claims, in the order of its Claims section."""


# --------------------------------------------------------------------------- findings

@dataclass
class ConventionalFindings(Findings):
    """What the chapter computes: every number it glues, its tables, its claims and the data of its figures."""

    summary: pd.DataFrame = field(default_factory=pd.DataFrame)  # sgd_summary of every run + map_regime, elr_range
    long_summary: pd.DataFrame = field(default_factory=pd.DataFrame)  # the rows of summary of the long runs
    sphere_summary: pd.DataFrame = field(default_factory=pd.DataFrame)  # regimes.run_summary of the sphere's grid
    boundaries: list[float] = field(default_factory=list)  # the map's regime boundaries (ELR)
    spans: list[int] = field(default_factory=list)  # the map's regime between them
    si_results: list[RunResult] = field(default_factory=list)  # the grid's ConvNetSI runs
    long_results: list[RunResult] = field(default_factory=list)  # the long runs
    af_pairs: list[tuple[RunResult | None, RunResult]] = field(default_factory=list)  # (ConvNetSI twin, Af run)
    steps_per_epoch: int = 0  # SGD steps per epoch of the runs


def analyse(params: Params, store: RunStore | None = None) -> ConventionalFindings:
    """Read the chapter's runs and the three-regimes chapter's grid from ``store`` (default: the preset's),
    and compute the summary table, the map's regime at each equilibrium ELR, the long runs' relaxation, the
    prose and the claims (the long runs are instances of the claims like the grid's runs)."""
    store = store if store is not None else presets.preset_store(params.preset)
    results = load_results(plan(params), store, NOTEBOOK, params.preset)
    sphere = params.sphere()
    long_ids = {c.run_id for c in long_configs(params, sphere)}
    sphere_summary = regimes.run_summary(three_regimes.runs(sphere, store).grid, sphere.num_classes)
    boundaries, spans = regimes.regime_map(sphere_summary)
    steps = steps_per_epoch(sphere)
    summary = conventional.sgd_summary(results, steps, sphere.num_classes, params.tolerance)
    summary["map_regime"] = conventional.map_regimes(summary, sphere_summary)
    summary["elr_range"] = summary["elr_max"] / summary["elr_min"]
    is_long = summary["run_id"].isin(long_ids)
    long = summary[is_long]
    boundary_12 = boundaries[0] if boundaries else math.nan
    claims, equal = measure_claims(summary, params.tolerance, boundary_12)
    grid_claims, _ = measure_claims(summary[~is_long], params.tolerance, boundary_12)
    si = summary[summary["model"] == "convnet_si"]
    findings = ConventionalFindings(
        params=params, summary=summary, long_summary=long, sphere_summary=sphere_summary,
        boundaries=boundaries, spans=spans, si_results=[r for r in results if r.config.model == "convnet_si"
                                                        and r.config.run_id not in long_ids],
        long_results=[r for r in results if r.config.run_id in long_ids], af_pairs=af_pairs(results), claims=claims,
        steps_per_epoch=steps)
    findings.values = {
        **setting_values(params, sphere, summary[~is_long], steps, core_hours(results, store)),
        "sphere_epochs": sphere.epochs, **angle_values(si, params.tolerance), **equal_values(equal),
        **map_values(summary, sphere_summary, boundary_12), "af_md": af_text(summary, sphere.num_classes),
        **long_values(long, params, claims, grid_claims),
        "sphere_setting_md": editions.sphere_setting_md(params.sphere_preset, "runs, batches and regime map"),
        **{f"verdict_{c.id.split('.')[1]}_md": verdict_text(c) for c in claims}}
    findings.tables = {"summary": summary_table(summary), "equal_lr_wd": equal_table(equal),
                       "long_runs": long_table(long), "claims": claims_table(claims)}
    findings.key_numbers = key_numbers(summary, equal["equilibrium_elr"], long_ids)
    editions.compare(findings, editions.earlier_findings(params, analyse))
    return findings


def measure_claims(summary: pd.DataFrame, tolerance: float,
                   boundary_12: float) -> tuple[list[Claim], dict[str, pd.DataFrame]]:
    """The four claims (:data:`CLAIMS`) measured on the runs of ``summary``, and the equal-lr·wd comparison
    (:func:`sphere_regimes.conventional.equal_lr_wd_spread` of each of :data:`EQUAL_COLUMNS`) they read."""
    si = summary[summary["model"] == "convnet_si"]
    equal = {column: conventional.equal_lr_wd_spread(si, column) for column in EQUAL_COLUMNS}
    return [angular_claim(si, tolerance), levels_claim(si), alike_claim(equal["equilibrium_elr"], tolerance),
            regime_claim(summary, boundary_12)], equal


def steps_per_epoch(net: NetworkParams | RunConfig) -> int:
    """SGD steps per epoch of a network's setting or a run: ``ceil(training images / batch size)``, or
    ``floor`` with ``drop_last_batch`` (whole batches only); ``train_size`` 0 or None is the whole training set."""
    images = net.train_size or len(load_raw(net.dataset).train_labels)
    return images // net.batch_size if net.drop_last_batch else math.ceil(images / net.batch_size)


def relaxation_epochs(config: RunConfig) -> float:
    """The norm's relaxation time ``1 / (2 lr wd)`` steps of an SGD run, in its epochs (:func:`steps_per_epoch`;
    :func:`sphere_regimes.conventional.relaxation_epochs`): the unit in which ``long_runs`` plan their epochs."""
    return conventional.relaxation_epochs(config.lr, config.weight_decay, steps_per_epoch(config))


def af_pairs(results: list[RunResult]) -> list[tuple[RunResult | None, RunResult]]:
    """Each ``convnet_af`` run with the ConvNetSI run of the same (lr, wd, seed), or None if there is none."""
    def key(result: RunResult) -> tuple[float, float, int]:
        return result.config.lr, result.config.weight_decay, result.config.seed

    si = {key(r): r for r in results if r.config.model == "convnet_si"}
    return [(si.get(key(r)), r) for r in results if r.config.model == "convnet_af"]


# --------------------------------------------------------------------------- the claims' measurements

def _counted(spec: ClaimSpec, passed: pd.Series, ours: str, reason: str) -> Claim:
    """A claim whose instances are the entries of the boolean ``passed`` (:func:`count_verdict`); its value
    is the fraction that passed."""
    n, total = int(passed.sum()), len(passed)
    return spec.measured(ours, n / total, count_verdict(n, total), count_margin(n, total), reason)


def verdict_text(claim: Claim) -> str:
    """A claim's verdict and reason as the chapter's prose cites them."""
    marked = " (by the regime rule)" if claim.spec.uses_regime_rule else ""
    return f"**{claim.verdict}**{marked} — {claim.reason}"


def _setting(row) -> str:
    return f"{'Af ' if row.model.endswith('_af') else ''}lr {row.lr:g}, wd {row.weight_decay:g}"


def angular_claim(si: pd.DataFrame, tolerance: float) -> Claim:
    """``sgd.angular_update``: per ConvNetSI run, |late RMS angular update / theory - 1| <= ``tolerance``."""
    spec = CLAIMS[0]
    if si.empty:
        return spec.untested("no scale-invariant SGD runs in this preset")
    passed = (si["angle_ratio"] - 1).abs() <= tolerance
    off = si[~passed]
    ours = f"{passed.sum()} of {len(si)} runs within {100 * tolerance:.0f}%; RMS / theory {spread(si['angle_ratio'])}"
    sources = ", ".join(f"{source} for {n}" for source, n in si["rms_source"].value_counts().items())
    reason = (f"{passed.sum()} of {len(si)} runs end with an RMS angular update within {100 * tolerance:.0f}% of "
              f"√(2·lr·wd/(1+μ)) (RMS {sources})"
              + (f"; the others at {off['angle_ratio'].min():.2f}–{off['angle_ratio'].max():.2f} of it (lr·wd "
                 f"{off['lr_wd'].min():.3g}–{off['lr_wd'].max():.3g})" if len(off) else ""))
    return _counted(spec, passed, ours, reason)


def levels_claim(si: pd.DataFrame) -> Claim:
    """``sgd.elr_levels_off``: per ConvNetSI run, late ELR max / min <= :data:`LEVEL_FACTOR` (NaN: diverged, fails)."""
    spec = CLAIMS[1]
    if si.empty:
        return spec.untested("no scale-invariant SGD runs in this preset")
    passed = si["elr_range"] <= LEVEL_FACTOR
    wide = si[~passed]
    ours = f"{passed.sum()} of {len(si)} runs within ×{LEVEL_FACTOR:g}; late max / min {spread(si['elr_range'].dropna())}"
    reason = (f"the ELR of {passed.sum()} of {len(si)} runs stays within ×{LEVEL_FACTOR:g} over the late window"
              + ("; wider: " + ", ".join(f"×{r.elr_range:.2g} ({_setting(r)})" if r.elr_range > 0 else
                                          f"diverged ({_setting(r)})" for r in wide.itertuples()) if len(wide) else ""))
    return _counted(spec, passed, ours, reason)


def alike_claim(equal_elr: pd.DataFrame, tolerance: float) -> Claim:
    """``sgd.equal_lr_wd_alike``: per shared lr·wd, equilibrium ELR max / min <= 1 + ``tolerance``."""
    spec = CLAIMS[2]
    if equal_elr.empty:
        return spec.untested("no two learning rates of the grid share a value of lr·wd")
    passed = equal_elr["ratio"] <= 1 + tolerance
    widest = equal_elr.loc[equal_elr["ratio"].idxmax()]
    ours = (f"{passed.sum()} of {len(equal_elr)} values of lr·wd within {100 * tolerance:.0f}%; equilibrium ELR "
            f"max / min up to {widest['ratio']:.2f} (lr·wd {scientific(widest['lr_wd'])})")
    reason = (f"at {passed.sum()} of {len(equal_elr)} shared values of lr·wd the equilibrium ELRs agree within "
              f"{100 * tolerance:.0f}% (largest ratio {equal_elr['ratio'].max():.2f})")
    return _counted(spec, passed, ours, reason)


def regime_claim(summary: pd.DataFrame, boundary_12: float) -> Claim:
    """``sgd.regime_of_equilibrium_elr``: per run with an equilibrium, own regime == the map's at its ELR;
    the reason says where the others sit against the map's 1→2 boundary and how their late loss swings."""
    spec = CLAIMS[3]
    placed = summary[summary["map_regime"].notna()]
    if placed.empty:
        return spec.untested("no SGD run with an equilibrium ELR in this preset")
    passed = placed["regime"] == placed["map_regime"]
    ours = f"{passed.sum()} of {len(placed)} runs in the map's regime"
    return _counted(spec, passed, ours, f"{ours}" + mismatch_reason(placed[~passed], boundary_12))


def mismatch_reason(mismatches: pd.DataFrame, boundary_12: float) -> str:
    """Where the runs outside the map's regime sit: own and map regime, ELRs against the 1→2 boundary, and
    the swing (max / min) of their train loss over the late window (periodic destabilisation)."""
    if mismatches.empty:
        return ""
    parts = []
    for (own, mapped), group in mismatches.groupby(["regime", "map_regime"]):
        below = int((group["equilibrium_elr"] < boundary_12).sum())
        swing = group["late_loss_max"] / group["late_loss_min"]
        parts.append(f"{len(group)} in regime {own} where the map says {mapped:.0f}, at ELR "
                     f"{group['equilibrium_elr'].min():.2g}–{group['equilibrium_elr'].max():.2g} ({below} below the "
                     f"map's 1→2 boundary {boundary_12:.2g}), late train loss swinging ×{swing.min():.2g}–×{swing.max():.2g}")
    return "; the others: " + "; ".join(parts)


# --------------------------------------------------------------------------- the prose and the tables

def setting_values(params: Params, net: NetworkParams, summary: pd.DataFrame, steps: int,
                   hours: float) -> dict[str, object]:
    """The setting paragraph's numbers and lists (``net``: the three-regimes chapter's network and data)."""
    return {
        "data_md": data_description(net.dataset, net.train_size),
        "width": net.width, "batch_size": net.batch_size, "epochs": params.epochs, "momentum": params.momentum,
        "lrs_md": ", ".join(f"{lr:g}" for lr in params.lrs), "wds_md": ", ".join(f"{wd:g}" for wd in params.weight_decays),
        "n_pairs": len(params.lrs) * len(params.weight_decays), "lr_wd_min": float(summary["lr_wd"].min()),
        "lr_wd_max": float(summary["lr_wd"].max()), "n_af": len(params.af_pairs), "n_seeds": len(params.seeds),
        "core_hours": hours, "steps_per_epoch": steps, "tolerance_pct": 100 * params.tolerance,
        "late_pct": 100 * conventional.LATE_FRACTION, "level_factor": LEVEL_FACTOR,
    }


def time_text(row, tolerance: float) -> str:
    """When one run's angular update reached its theory value, in words."""
    pct = f"{100 * tolerance:.0f}%"
    if math.isnan(row.first_epoch):
        reached = f"never within {pct}"
    elif math.isnan(row.settled_epoch):
        reached = f"first within {pct} at epoch {row.first_epoch:.0f}, outside again at the end"
    else:
        reached = f"within {pct} from epoch {row.settled_epoch:.0f} on (first at {row.first_epoch:.0f})"
    return f"lr {row.lr:g}, wd {row.weight_decay:g}: {reached} (1/(2 lr·wd) = {row.relaxation_epochs:.2g} epochs)"


def angle_values(si: pd.DataFrame, tolerance: float) -> dict[str, object]:
    """The angular update and ELR level of the ConvNetSI runs, in numbers and words (each run's own in the
    summary table)."""
    return {
        "n_si": len(si), "n_reached": int(si["first_epoch"].notna().sum()),
        "n_at_theory": int(((si["angle_ratio"] - 1).abs() <= tolerance).sum()),
        "n_level": int((si["elr_range"] <= LEVEL_FACTOR).sum()),
        "equilibrium_times_md": "; ".join(time_text(row, tolerance) for row in si.itertuples()) + ".",
        "angle_ratio_md": spread(si["angle_ratio"].dropna()) if si["angle_ratio"].notna().any() else "–",
        "rms_source_md": " and ".join(f"{source} for {n} run{'s' if n > 1 else ''}"
                                      for source, n in si["rms_source"].value_counts().items()),
        "mean_ratio_min": float(si["mean_ratio"].min()), "mean_ratio_max": float(si["mean_ratio"].max()),
        "rms_ratio_min": float(si["angle_ratio"].min()), "rms_ratio_max": float(si["angle_ratio"].max()),
        "elr_range_md": spread(si["elr_range"].dropna()) if si["elr_range"].notna().any() else "–",
    }


EQUAL_COLUMNS = {"equilibrium_elr": "equilibrium ELR", "late_rms": "RMS angular update (rad)",
                 "late_train_loss": "stationary train loss"}
"""The columns compared between runs of equal lr·wd, and their headings."""


def equal_table(equal: dict[str, pd.DataFrame]) -> Table:
    """One row per lr·wd that several learning rates share: the learning rates, and for each of
    :data:`EQUAL_COLUMNS` the values of their runs (in the order of the learning rates) and max / min
    (``equal``: :func:`sphere_regimes.conventional.equal_lr_wd_spread` of each column)."""
    base = equal["equilibrium_elr"]
    frame = pd.DataFrame({"lr·wd": base["lr_wd"], "learning rates": base["lrs"].map(_numbers)})
    for column, heading in EQUAL_COLUMNS.items():
        frame[heading] = equal[column][column].map(_numbers).to_numpy()
        frame[f"{heading}: max / min"] = equal[column]["ratio"].to_numpy()
    ratios = {heading: ".2f" for heading in frame.columns if heading.endswith("max / min")}
    return Table(frame, {"lr·wd": scientific, **ratios}, show_index=False)


def _numbers(values) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


def equal_values(equal: dict[str, pd.DataFrame]) -> dict[str, object]:
    """The equal-lr·wd section: how many values of lr·wd several learning rates share (their runs are
    compared in :func:`equal_table`)."""
    return {"n_equal_groups": len(equal["equilibrium_elr"])}


def map_values(summary: pd.DataFrame, sphere_summary: pd.DataFrame, boundary_12: float) -> dict[str, object]:
    """Each run's place on the sphere's map, the diverged runs, and the runs outside the map's regime."""
    placed = summary[summary["map_regime"].notna()]
    diverged = summary[summary["map_regime"].isna()]
    return {
        "n_runs": len(placed), "n_matches": int((placed["regime"] == placed["map_regime"]).sum()),
        "map_md": "; ".join(f"{_setting(r)}: ELR {r.equilibrium_elr:.3g}, map regime {r.map_regime:.0f}, own regime "
                            f"{r.regime}" for r in placed.itertuples()) + ".",
        "diverged_md": " ".join(f"{_setting(r)} diverged at epoch {r.diverged_epoch:.0f} and has no equilibrium ELR, so "
                                "no place on the map." for r in diverged.itertuples()),
        "mismatch_md": mismatch_text(placed[placed["regime"] != placed["map_regime"]], sphere_summary, boundary_12),
    }


def mismatch_text(mismatches: pd.DataFrame, sphere_summary: pd.DataFrame, boundary_12: float) -> str:
    """The runs outside the map's regime: their ELRs against the map's 1→2 boundary, the swings of their
    late train loss, and the stationary losses of the sphere runs at the fixed ELRs around them."""
    if mismatches.empty:
        return "Every run with an equilibrium is in the regime of its equilibrium ELR."
    late_loss = sphere_summary.groupby("elr")["late_train_loss"].mean()
    near = late_loss[(late_loss.index >= mismatches["equilibrium_elr"].min() / 1.5) & (late_loss.index < boundary_12)]
    swings = ", ".join(f"{r.late_loss_min:.2g} and {r.late_loss_max:.2g} ({_setting(r)})" for r in mismatches.itertuples())
    sphere = (f", while the sphere runs at fixed ELRs {', '.join(f'{e:.2g}' for e in near.index)} settle at mean "
              f"second-half losses of {', '.join(f'{v:.2g}' for v in near.values)}" if len(near) else "")
    return (f"The {len(mismatches)} runs whose own regime differs from the map's sit at equilibrium ELRs of "
            f"{mismatches['equilibrium_elr'].min():.2g} to {mismatches['equilibrium_elr'].max():.2g} (the map's 1→2 "
            f"boundary is at {boundary_12:.2g}); over the late window their train loss swings between {swings}{sphere}.")


def af_text(summary: pd.DataFrame, num_classes: int) -> str:
    """Each ``convnet_af`` run against its ConvNetSI twin: equilibrium and regime, or how it collapsed."""
    twins = summary[summary["model"] == "convnet_si"].set_index(["lr", "weight_decay", "seed"])
    texts = []
    for row in summary[summary["model"] == "convnet_af"].itertuples():
        key = (row.lr, row.weight_decay, row.seed)
        twin = twins.loc[key] if key in twins.index else None
        also = (f" (ConvNetSI: RMS / theory {twin['angle_ratio']:.2f}, ELR {twin['equilibrium_elr']:.3g}, regime {twin['regime']}, "
                f"test error {twin['test_error']:.3f})" if twin is not None else "")
        if row.status != "diverged":
            texts.append(f"lr {row.lr:g}, wd {row.weight_decay:g}: RMS / theory {row.angle_ratio:.2f}, equilibrium "
                         f"ELR {row.equilibrium_elr:.3g}, regime {row.regime}, test error {row.test_error:.3f}{also}")
            continue
        dead = (f"its loss sat at ln {num_classes} = {math.log(num_classes):.3f} (a constant output) from epoch "
                f"{row.constant_output_from:.0f}, " if row.constant_output_from > 0 else "")
        texts.append(f"lr {row.lr:g}, wd {row.weight_decay:g} collapsed: {dead}test error {row.test_error:.3f}, and the "
                     f"run ended diverged at epoch {row.diverged_epoch:.0f}, when the norm of its convolution weights "
                     f"underflowed to 0{also}")
    return "; ".join(texts) + "." if texts else "no Af runs in this preset."


def long_values(long: pd.DataFrame, params: Params, claims: list[Claim], grid_claims: list[Claim]) -> dict[str, object]:
    """The long runs' section: the rules it reads them by (numbers), and each run's relaxation, RMS angle,
    ELR, spikes and regimes, with how they enter the claims, in words (``long``: their rows of the summary;
    ``grid_claims``: the claims measured without them)."""
    converged = RegimeRule().converged_loss
    rules = {"settle_relaxations": conventional.SETTLE_RELAXATIONS, "spike_factor": conventional.SPIKE_FACTOR,
             "converged_loss": converged, "spike_level": conventional.SPIKE_FACTOR * converged, "n_long": len(long)}
    if long.empty:
        return {**rules, "long_md": "This preset trains no long runs (`long_runs` is empty), so this section has "
                                    "nothing to read."}
    runs = "\n".join(f"- {long_run_text(row, params.tolerance, converged)}" for row in long.itertuples())
    return {**rules, "long_md": f"{runs}\n\n{long_claims_text(claims, grid_claims)}"}


def long_run_text(row, tolerance: float, converged: float) -> str:
    """One long run in words: its budget in relaxation times, whether its norm settled, its RMS angle, ELR,
    loss spikes and regimes."""
    budget = (f"**lr {row.lr:g}, wd {row.weight_decay:g}**: {row.epochs} epochs, {row.relaxations:.2g} times its "
              f"relaxation time 1/(2·lr·wd) = {row.relaxation_epochs:.0f} epochs")
    if row.status == "diverged":
        return f"{budget}; it diverged at epoch {row.diverged_epoch:.0f}, so its norm has no equilibrium."
    drift = f"late-window norm drift {row.norm_drift:+.2g} of the free decay"
    if row.relaxations < conventional.SETTLE_RELAXATIONS:
        settled = f"fewer than {conventional.SETTLE_RELAXATIONS:g}, so its norm **did not settle** ({drift})"
    elif row.norm_settled:
        settled = f"at least {conventional.SETTLE_RELAXATIONS:g}; its norm **settled** ({drift}, within {100 * tolerance:.0f}%)"
    else:
        settled = (f"at least {conventional.SETTLE_RELAXATIONS:g}, but its norm **did not settle** ({drift}, beyond "
                   f"{100 * tolerance:.0f}%)")
    return (f"{budget}, {settled}. RMS angular update over the late window {row.late_rms:.3g} rad, "
            f"{row.angle_ratio:.2f} × √(2·lr·wd/(1+μ)) = {row.theory_angle:.3g} rad; equilibrium ELR "
            f"{row.equilibrium_elr:.2g} (late max / min ×{row.elr_range:.2g}); {spike_text(row, converged)}; regime "
            f"{row.regime} by the regime rule, the map's regime at its ELR {row.map_regime:.0f}.")


def spike_text(row, converged: float) -> str:
    """A run's loss spikes (:func:`sphere_regimes.conventional.destabilisations`) in words."""
    level = conventional.SPIKE_FACTOR * converged
    if math.isnan(row.converged_epoch):
        return f"its running train loss never fell below {converged:g}, so no destabilisation can show"
    if row.n_spikes == 0:
        return (f"converged (running train loss below {converged:g}) from epoch {row.converged_epoch:.0f} on and "
                f"never spiked above {level:g}: no destabilisation")
    epochs = row.spike_epochs
    listed = ", ".join(str(e) for e in epochs[:8]) + (", …" if len(epochs) > 8 else "")
    if row.n_spikes == 1:
        return f"one loss spike above {level:g}, at epoch {listed}: a destabilisation, not (yet) periodic"
    gap = (epochs[-1] - epochs[0]) / (len(epochs) - 1)
    return (f"{row.n_spikes} loss spikes above {level:g}, at epochs {listed}, one every {gap:.0f} epochs on average "
            f"({gap / row.relaxation_epochs:.2g} relaxation times): periodic destabilisation")


def long_claims_text(claims: list[Claim], grid_claims: list[Claim]) -> str:
    """How the long runs enter the claims: which verdicts they change."""
    changed = [f"{c.spec.id} {g.verdict} without them, {c.verdict} with them" for c, g in zip(claims, grid_claims)
               if c.verdict != g.verdict]
    return ("The long runs are scale-invariant SGD runs of the chapter's setting, so each is one more instance of the "
            "four claims, read on its own late window by the same rules and thresholds. "
            + (f"They change {len(changed)} verdict(s): {'; '.join(changed)}." if changed else
               "They change no verdict."))


LONG_COLUMNS = {
    "lr": ("lr", "g"), "weight_decay": ("wd", "g"), "lr_wd": ("lr·wd", scientific), "epochs": ("epochs", ""),
    "relaxation_epochs": ("1/(2 lr·wd) (epochs)", ".0f"), "relaxations": ("epochs / relaxation time", ".2g"),
    "norm_drift": ("late norm drift / free decay", "+.2g"), "settled": ("norm settled", ""),
    "angle_ratio": ("RMS / theory", ".2f"), "equilibrium_elr": ("equilibrium ELR", scientific),
    "elr_range": ("ELR max / min", ".2f"), "n_spikes": ("loss spikes", ""), "regime": ("regime", ""),
    "map_regime": ("regime of its ELR", ".0f"), "test_error": ("final test error", ".3f"),
}
"""The long runs' table: heading and display format."""


def long_table(long: pd.DataFrame) -> Table:
    """One row per long run: its budget in relaxation times, the norm's drift and whether it settled, the RMS
    angle against the law, the ELR, the loss spikes, the regimes and the test error."""
    frame = long.assign(settled=long["norm_settled"].map({True: "yes", False: "no"}))
    frame = frame.reindex(columns=list(LONG_COLUMNS)).rename(columns={k: v[0] for k, v in LONG_COLUMNS.items()})
    return Table(frame, formats={heading: fmt for heading, fmt in LONG_COLUMNS.values() if fmt}, show_index=False)


SUMMARY_COLUMNS = {
    "model": ("model", ""), "lr": ("lr", "g"), "weight_decay": ("wd", "g"), "lr_wd": ("lr·wd", scientific),
    "theory_angle": ("theory (rad)", ".4f"), "late_angle": ("mean (rad)", ".4f"), "late_rms": ("RMS (rad)", ".4f"),
    "rms_source": ("RMS", ""), "mean_ratio": ("mean / theory", ".2f"),
    "angle_ratio": ("RMS / theory", ".2f"), "first_epoch": ("first within (epoch)", ".0f"),
    "settled_epoch": ("within from (epoch)", ".0f"), "relaxation_epochs": ("1/(2 lr·wd) (epochs)", ".3g"),
    "equilibrium_elr": ("equilibrium ELR", scientific), "elr_min": ("ELR min", scientific),
    "elr_max": ("ELR max", scientific),
    "elr_range": ("ELR max / min", ".2f"), "regime": ("regime", ""), "map_regime": ("regime of its ELR", ".0f"),
    "late_train_loss": ("stationary train loss", ".3g"), "test_error": ("final test error", ".3f"),
    "best_test_error": ("best test error", ".3f"),
}
"""The summary table's columns: heading and display format."""


def summary_table(summary: pd.DataFrame) -> Table:
    """Every SGD run: theory, mean and RMS angular update, time to equilibrium, equilibrium ELR, regimes, errors."""
    frame = summary[list(SUMMARY_COLUMNS)].rename(columns={k: v[0] for k, v in SUMMARY_COLUMNS.items()})
    return Table(frame, formats={heading: fmt for heading, fmt in SUMMARY_COLUMNS.values() if fmt}, show_index=False)


def key_numbers(summary: pd.DataFrame, equal_elr: pd.DataFrame, long_ids: set[str]) -> list[str]:
    """The lines the smoke reference checks: each run's regime and its place on the map, the shared lr·wd, and
    the long runs' budget, settling and spikes."""
    lines = [f"{r.model} lr {r.lr:g} wd {r.weight_decay:g} seed {r.seed}: regime {r.regime}, "
             + (f"regime of its equilibrium ELR {r.map_regime:.0f}" if r.map_regime > 0 else
                f"diverged at epoch {r.diverged_epoch:.0f}") for r in summary.itertuples()]
    shared = "; ".join(f"{r.lr_wd:g} (lr {', '.join(f'{lr:g}' for lr in r.lrs)})" for r in equal_elr.itertuples())
    long = [f"long run lr {r.lr:g} wd {r.weight_decay:g}: {r.epochs} epochs, {r.relaxations:.2g} relaxation times, "
            f"norm settled {'yes' if r.norm_settled else 'no'}, {r.n_spikes} loss spikes"
            for r in summary.itertuples() if r.run_id in long_ids]
    return [*lines, f"lr*wd shared by: {shared}", *long]
