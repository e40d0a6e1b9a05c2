"""Chapter 01, the toy example (paper §3): a function of several scale-invariant groups trained by
projected gradient descent on the unit sphere. Numpy only; it reads no store.

:func:`analyse` runs every simulation the chapter shows (the example trajectories of panels (a) and
(b), the ELR sweep of panel (c) with and without gradient noise, the zoomed sweeps that measure the
convergence threshold from each initial point, the individual-constraint sweep of panel (d)) and
decides the chapter's claims (:data:`CLAIMS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import toy
from ..claims import (Claim, ClaimSpec, Verdict, claims_table, count_margin, count_verdict, ratio_margin, spread)
from ..store import RunStore
from ..table import Table
from .base import Findings
from .base import Params as _Params

NOTEBOOK = "01_toy_theory"

ROUNDING = 1e-9
"""Relative deviation from ``sum_i 1/eta_i = 1/eta`` that float64 rounding over a few thousand steps
stays far below (each step rescales by the total norm, an error of about 1e-16)."""
JUST_ABOVE = 1.5
""""Just above the threshold": total ELRs in ``(1, JUST_ABOVE] / sum alpha`` (our reading)."""
AROUND = 2.0
""""Around its threshold": a group's late-time ``eta_i alpha_i`` within this factor of 1 (our reading)."""


@dataclass(frozen=True)
class Params(_Params):
    notebook = NOTEBOOK
    alphas: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)  # sharpness alpha_i of each group: f_i is alpha_i sin^2 of the angle to e_i
    dim: int = 10  # dimension d of each group
    init_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # seeds of the initial points (standard normal, total norm 1); the first is the main one
    n_iterations: int = 4000  # projected GD steps per run
    late_fraction: float = 0.25  # late-time window: this last fraction of the iterations
    eta_min: float = 0.001  # smallest total ELR of the sweep
    eta_max: float = 100.0  # largest total ELR of the sweep
    etas_per_decade: int = 40  # sweep density, ELRs per factor of 10
    zoom_etas_per_decade: int = 1000  # density of the zoomed sweep around the measured convergence threshold
    example_etas: tuple[float, ...] = (0.02, 0.08, 3.0)  # total ELRs of panels (a), (b): below 1/sum alpha, between, above 1/min alpha
    converged_tolerance: float = 1e-6  # late-time F / random-direction level below which a run counts as converged
    random_walk_fraction: float = 0.9  # late-time F / random-direction level from which a run counts as a random walk
    noise_std: float = 0.0  # std per coordinate of isotropic gradient noise on the unit sphere of each group (0: exact GD, §3)
    comparison_noise_stds: tuple[float, ...] = (0.3, 3.0)  # noise stds (same unit) of the extra sweeps drawn in grey in panel (c)
    seed: int = 0  # seed of the gradient noise

    def __post_init__(self) -> None:
        if len(self.example_etas) != 3:
            raise ValueError(f"example_etas must hold three ELRs (one per range of the thresholds), got "
                             f"{list(self.example_etas)}")
        if not self.init_seeds:
            raise ValueError("init_seeds must not be empty")

    @property
    def resolution(self) -> float:
        """The factor between neighbouring ELRs of the zoomed sweep, ``10^(1/zoom_etas_per_decade)``."""
        return 10 ** (1 / self.zoom_etas_per_decade)


# --------------------------------------------------------------------------- the claims (paper §3, Remark 2)

_SECTION = "§3"
CLAIMS: list[ClaimSpec] = [
    ClaimSpec(
        id="toy.elr_sum", chapter=NOTEBOOK, section="toy-function",
        statement="On the total sphere the individual ELRs satisfy Σ 1/η_i = 1/η at every step",
        source=f"{_SECTION}: η_i = η/‖θ_i‖² with Σ‖θ_i‖² = 1", paper="an identity",
        quantity="max over every step and ELR of the example trajectories of |η Σ_i 1/η_i − 1|",
        rule=f"held if the deviation is below {ROUNDING:g} (float64 rounding), else not held"),
    ClaimSpec(
        id="toy.convergence_threshold", chapter=NOTEBOOK, section="toy-sweep",
        statement="Convergence to a minimum is possible only for η < 1/Σα_i",
        source=f"{_SECTION}: the convergence threshold of the total ELR", paper="1/Σα_i",
        quantity="the convergence threshold measured by the zoomed sweep from each initial point, against 1/Σα_i",
        rule="an initial point passes if its measured threshold is within one step of the zoomed sweep "
             "(a factor 10^(1/zoom_etas_per_decade)) of 1/Σα_i; held if every one passes, partly if some, "
             "not held if none"),
    ClaimSpec(
        id="toy.self_tuning", chapter=NOTEBOOK, section="toy-sweep",
        statement="Just above the threshold the individual ELRs self-tune around their own thresholds",
        source=f"{_SECTION}: individual ELRs adapt; group i is stable iff η_i α_i < 1 (this chapter's f_i)",
        paper="η_i ≈ 1/α_i",
        quantity=f"late-time η_i α_i (geometric mean over the late window) of every group at each sweep ELR "
                 f"in (1, {JUST_ABOVE:g}] / Σα_i",
        rule=f"an ELR passes if every group's late-time η_i α_i lies within a factor {AROUND:g} of 1; held if "
             "every ELR of the window passes, partly if some, not held if none",
        reading=f"our reading: 'just above' = total ELRs up to {JUST_ABOVE:g}/Σα_i; 'around its threshold' = "
                f"η_i α_i within a factor {AROUND:g} of the group's threshold η_i α_i = 1"),
    ClaimSpec(
        id="toy.no_divergent_regime", chapter=NOTEBOOK, section="toy-sweep",
        statement="The simple (deterministic) toy allegedly lacks the divergent (random-walk) regime",
        source="Remark 2", paper="no 2→3 transition",
        quantity="the largest late-time F / random-direction level over the exact-gradient sweep",
        rule="held if no ELR of the exact-gradient sweep reaches random_walk_fraction of the random-direction "
             "level, else not held",
        reading="our reading: the divergent regime is a random walk, whose mean loss is the random-direction "
                "level; reaching random_walk_fraction of it counts as one"),
]


# --------------------------------------------------------------------------- findings

@dataclass
class ToyFindings(Findings):
    """The chapter's numbers and the data of its four figures."""

    examples: toy.Trajectory | None = None  # panels (a), (b): one run per ELR of ``example_etas``
    main: toy.Sweep | None = None  # panel (c): the sweep at ``noise_std``
    noisy: dict[str, toy.Sweep] = field(default_factory=dict)  # panel (c), grey: legend label -> sweep
    individual: toy.Sweep | None = None  # panel (d): individual constraints, equal split
    split: np.ndarray | None = None  # the equal split r_i^2 of panel (d)
    main_label: str = "exact gradient"  # legend label of ``main``


@dataclass(frozen=True)
class _Thresholds:
    """The convergence threshold measured on the coarse sweep and, per initial point, on the zoomed one."""

    coarse: toy.ThresholdEstimate
    zoomed: list[toy.ThresholdEstimate]
    theory: float

    @property
    def ratios(self) -> np.ndarray:
        """Each initial point's measured threshold over ``1/sum alpha`` (NaN where none was bracketed)."""
        return np.array([np.nan if z.estimate is None else z.estimate / self.theory for z in self.zoomed])


def _simulation_options(params: Params) -> dict:
    """The options every run of the chapter shares (the main initial point included)."""
    return dict(alphas=np.asarray(params.alphas), dim=params.dim, n_iterations=params.n_iterations,
                theta0=toy.initial_point(len(params.alphas), params.dim, params.init_seeds[0]))


def _sweep_options(params: Params) -> dict:
    return dict(late_fraction=params.late_fraction, seed=params.seed, **_simulation_options(params))


def _noise_label(std: float) -> str:
    return "exact gradient" if std == 0 else f"gradient noise, std {std:g}"


def analyse(params: Params, store: RunStore | None = None) -> ToyFindings:
    """Every simulation, number, table and claim of the chapter. The toy trains no network and reads no
    store: ``store`` is accepted for the common chapter signature and ignored."""
    findings = ToyFindings(params=params, main_label=_noise_label(params.noise_std))
    options = _sweep_options(params)
    findings.examples = toy.run_total(params.example_etas, noise_std=params.noise_std, seed=params.seed,
                                      **_simulation_options(params))
    etas = toy.log_spaced_etas(params.eta_min, params.eta_max, params.etas_per_decade)
    findings.main = toy.sweep(etas, noise_std=params.noise_std, **options)
    findings.noisy = {_noise_label(std): toy.sweep(etas, noise_std=std, **options)
                      for std in params.comparison_noise_stds}
    findings.split = toy.equal_split(len(params.alphas))
    findings.individual = toy.sweep(etas, constraint="individual", radii_sq=findings.split,
                                    noise_std=params.noise_std, **options)
    thresholds = _measure_thresholds(params, findings.main)
    findings.claims = [_elr_sum_claim(findings.examples), _threshold_claim(params, thresholds),
                       _self_tuning_claim(findings.main), _no_divergent_claim(params, findings)]
    findings.values = {**_theory_values(params), **_example_values(params, findings.examples),
                       **_sweep_values(params, findings, thresholds), **_constraint_values(findings, thresholds)}
    findings.tables = {"examples": _examples_table(params, findings.examples),
                       "thresholds": _thresholds_table(params, thresholds),
                       "claims": claims_table(findings.claims)}
    findings.key_numbers = _key_numbers(params, findings, thresholds)
    return findings


def _measure_thresholds(params: Params, main: toy.Sweep) -> _Thresholds:
    """The coarse bracket of ``main``, then a sweep of ``zoom_etas_per_decade`` over that bracket widened by
    one coarse step each side, from every initial point (:func:`toy.thresholds_over_inits`)."""
    coarse = toy.measure_convergence_threshold(main, params.converged_tolerance)
    theory = toy.convergence_threshold(params.alphas)
    if coarse.estimate is None:
        return _Thresholds(coarse, [], theory)
    step = 10 ** (1 / params.etas_per_decade)
    zoom = toy.log_spaced_etas(coarse.last_below / step, coarse.first_above * step, params.zoom_etas_per_decade)
    zoomed = toy.thresholds_over_inits(zoom, params.init_seeds, alphas=params.alphas, dim=params.dim,
                                       tolerance=params.converged_tolerance, n_iterations=params.n_iterations,
                                       late_fraction=params.late_fraction, noise_std=params.noise_std,
                                       seed=params.seed)
    return _Thresholds(coarse, zoomed, theory)


# --------------------------------------------------------------------------- the claims' rules

def elr_sum_deviation(trajectory: toy.Trajectory) -> float:
    """``max |eta sum_i 1/eta_i - 1|`` over every record and run of ``trajectory``."""
    inverse_sum = np.sum(1.0 / trajectory.elrs, axis=-1)
    return float(np.max(np.abs(trajectory.etas[None, :] * inverse_sum - 1.0)))


def _elr_sum_claim(examples: toy.Trajectory) -> Claim:
    deviation = elr_sum_deviation(examples)
    held = deviation < ROUNDING
    steps = len(examples.iterations) * len(examples.etas)
    return CLAIMS[0].measured(
        f"max |η Σ 1/η_i − 1| = {deviation:.2g} over {steps} steps", deviation,
        Verdict.HELD if held else Verdict.NOT_HELD, ratio_margin(deviation, ROUNDING, below=True),
        "the identity holds to float rounding" if held else "the identity is broken beyond float rounding")


def _threshold_claim(params: Params, thresholds: _Thresholds) -> Claim:
    spec = CLAIMS[1]
    if not thresholds.zoomed:
        return spec.untested("the sweep brackets no convergence threshold (no run converges, or all do)")
    steps = np.abs(np.log(thresholds.ratios)) / np.log(params.resolution)  # NaN: not bracketed, fails
    passed = int(np.sum(steps <= 1.0))
    verdict = count_verdict(passed, len(steps))
    worst = float(np.nanmax(steps)) if np.isfinite(steps).any() else np.inf
    ours = f"threshold / (1/Σα) = {spread(thresholds.ratios[np.isfinite(thresholds.ratios)])} over {len(steps)} initial points"
    margin = f"worst initial point {worst:.2f} steps of the zoomed sweep from 1/Σα (1 allowed); " + \
             count_margin(passed, len(steps))
    below = int(np.sum(thresholds.ratios < 1))
    reason = (f"{below} of {len(steps)} measured thresholds lie below 1/Σα; resolution a factor "
              f"{params.resolution:.4f} ({params.zoom_etas_per_decade} ELRs per decade), {params.n_iterations} "
              f"steps per run, converged below {params.converged_tolerance:g} of the random-direction level")
    return spec.measured(ours, worst, verdict, margin, reason)


def just_above_window(result: toy.Sweep) -> np.ndarray:
    """Which ELRs of ``result`` lie in ``(1, JUST_ABOVE] / sum alpha``."""
    threshold = toy.convergence_threshold(result.alphas)
    return (result.etas > threshold) & (result.etas <= JUST_ABOVE * threshold)


def _self_tuning_claim(main: toy.Sweep) -> Claim:
    spec = CLAIMS[2]
    window = just_above_window(main)
    if not window.any():
        return spec.untested(f"the sweep has no ELR in (1, {JUST_ABOVE:g}] / Σα")
    k = main.late_elrs[window] * main.alphas
    factors = np.exp(np.abs(np.log(k))).max(axis=1)  # per ELR: the group farthest from eta_i alpha_i = 1
    passed = int(np.sum(factors <= AROUND))
    worst = float(factors.max())
    ours = f"late-time η_i α_i from {k.min():.3g} to {k.max():.3g} over {int(window.sum())} ELRs"
    margin = f"worst group a factor {worst:.3g} from its threshold ({AROUND:g} allowed); " + \
             count_margin(passed, len(factors))
    return spec.measured(ours, worst, count_verdict(passed, len(factors)), margin,
                         f"{int(window.sum())} sweep ELRs in (1, {JUST_ABOVE:g}] / Σα; η_i α_i are geometric means over "
                         "the late window")


def _no_divergent_claim(params: Params, findings: ToyFindings) -> Claim:
    spec = CLAIMS[3]
    if params.noise_std != 0:
        return spec.untested("the preset's main sweep has gradient noise; Remark 2 is about the deterministic toy")
    if params.eta_max <= toy.no_stable_group_threshold(params.alphas):
        return spec.untested("the sweep stops below 1/min α_i, where the divergent regime would start")
    largest = float(findings.main.late_relative.max())
    held = toy.random_walk_onset(findings.main, params.random_walk_fraction) is None
    ours = f"largest late-time F / random-direction level {largest:.3f} (up to η = {params.eta_max:g})"
    return spec.measured(ours, largest, Verdict.HELD if held else Verdict.NOT_HELD,
                         ratio_margin(largest, params.random_walk_fraction, below=True),
                         f"exact gradient; for context, the random-walk level is reached {_noisy_onsets(params, findings)}")


def _noisy_onsets(params: Params, findings: ToyFindings) -> str:
    """Where each noisy sweep reaches the random-walk level, in words."""
    parts = []
    for label, result in findings.noisy.items():
        onset = toy.random_walk_onset(result, params.random_walk_fraction)
        parts.append(f"{label}: " + (f"from η ≈ {onset:.3g}" if onset is not None
                                     else f"nowhere (largest late-time value {result.late_relative.max():.2f})"))
    return "; ".join(parts) or "(no noisy sweeps in this preset)"


# --------------------------------------------------------------------------- glued values

def _theory_values(params: Params) -> dict:
    alphas = np.asarray(params.alphas)
    return {"n_inits": len(params.init_seeds), "n_groups": len(alphas), "dim": params.dim,
            "alphas_md": ", ".join(f"{a:g}" for a in alphas), "sum_alpha": float(alphas.sum()),
            "threshold_theory": toy.convergence_threshold(alphas),
            "no_stable_theory": toy.no_stable_group_threshold(alphas),
            "random_level": toy.random_direction_level(alphas, params.dim),
            "plateau_limit": params.dim / (2 * (params.dim - 1))}


def _late_k(trajectory: toy.Trajectory, late_fraction: float) -> np.ndarray:
    """Late-time ``eta_i alpha_i`` (geometric mean over the late window), shape ``(runs, groups)``."""
    late = toy.late_window(trajectory, late_fraction)
    return np.exp(np.log(trajectory.elrs[late]).mean(axis=0)) * trajectory.alphas


def _example_columns(params: Params, examples: toy.Trajectory) -> dict[str, np.ndarray]:
    late = toy.late_window(examples, params.late_fraction)
    return {"total ELR η": examples.etas, "range": toy.theory_regime(examples.etas, examples.alphas),
            "late F / random-direction level": examples.relative_loss[late].mean(axis=0),
            "late angle per step (°)": np.degrees(examples.angle[late].mean(axis=0))}


def _example_values(params: Params, examples: toy.Trajectory) -> dict:
    columns = _example_columns(params, examples)
    initial_k, final_k = examples.elrs[0, 0] * examples.alphas, examples.elrs[-1, 0] * examples.alphas
    tuned = int(np.argmax(initial_k))
    late_k = _late_k(examples, params.late_fraction)
    middle, last = params.example_etas[1], params.example_etas[-1]
    return {"examples_md": ", ".join(f"η = {eta:g} (range {r})" for eta, r in zip(examples.etas, columns["range"])),
            "late_relative_md": ", ".join(f"{v:.3g}" for v in columns["late F / random-direction level"]),
            "late_angle_md": ", ".join(f"{v:.3g}°" for v in columns["late angle per step (°)"]),
            "tuned_group": tuned + 1, "tuned_k_initial": float(initial_k[tuned]),
            "tuned_k_final": float(final_k[tuned]), "first_k_max_final": float(final_k.max()),
            "middle_eta": float(middle), "middle_k_md": ", ".join(f"{v:.2f}" for v in late_k[1]),
            "middle_k_equalised": float(middle * examples.alphas.sum()), "last_eta": float(last),
            "last_k_min": float(late_k[-1].min())}


def _sweep_values(params: Params, findings: ToyFindings, thresholds: _Thresholds) -> dict:
    main, claims = findings.main, {c.id: c for c in findings.claims}
    above = main.etas >= (thresholds.coarse.first_above or np.inf)
    level = toy.random_direction_level(main.alphas, main.dim)
    deviation = np.abs(main.late_relative - toy.two_cycle_loss(main.etas, main.alphas) / level)[above]
    k = main.late_elrs[just_above_window(main)] * main.alphas
    return {"n_sweep": len(main.etas), "eta_min": params.eta_min, "eta_max": params.eta_max,
            "per_decade": params.etas_per_decade, "zoom_per_decade": params.zoom_etas_per_decade,
            "n_iterations": params.n_iterations, "late_percent": 100 * params.late_fraction,
            "tolerance": params.converged_tolerance, "resolution": params.resolution,
            **_threshold_values(thresholds), "cycle_deviation": float(deviation.max()) if deviation.size else np.nan,
            "just_above": JUST_ABOVE,
            "equalised_spread": float(np.max(k.max(axis=1) / k.min(axis=1))) if k.size else np.nan,
            "random_walk_fraction": params.random_walk_fraction,
            "at_no_stable": float(np.interp(np.log(toy.no_stable_group_threshold(main.alphas)), np.log(main.etas),
                                            main.late_relative)),
            "at_eta_max": float(main.late_relative[-1]),
            "threshold_md": _verdict_md(claims["toy.convergence_threshold"]),
            "self_tuning_md": _self_tuning_md(claims["toy.self_tuning"]),
            "onset_md": _onset_md(params, main), "remark_md": _remark_md(claims["toy.no_divergent_regime"]),
            "noisy_onsets_md": _noisy_onsets(params, findings)}


def _threshold_values(thresholds: _Thresholds) -> dict:
    """The coarse bracket, the first initial point's zoomed threshold and the range of the ratios to theory."""
    ratios = thresholds.ratios
    finite = ratios[np.isfinite(ratios)]
    first = float(ratios[0]) if len(ratios) else np.nan
    return {"coarse_low": thresholds.coarse.last_below, "coarse_high": thresholds.coarse.first_above,
            "threshold_measured": first * thresholds.theory, "threshold_ratio": first,
            "ratio_min": float(finite.min()) if finite.size else np.nan,
            "ratio_max": float(finite.max()) if finite.size else np.nan}


def _verdict_md(claim: Claim) -> str:
    """The claim's verdict in one sentence, with its margin."""
    if claim.verdict is Verdict.NOT_TESTED:
        return f"This preset does not test it: {claim.reason}."
    return f"Verdict: **{claim.verdict}** ({claim.margin}; {claim.reason})."


def _self_tuning_md(claim: Claim) -> str:
    lead = {Verdict.HELD: "every group hovers around its own threshold, as §3 says",
            Verdict.PARTLY: "the groups hover around their own thresholds at some of these ELRs but not at all",
            Verdict.NOT_HELD: "the groups do not hover around their own thresholds",
            Verdict.NOT_TESTED: "the sweep does not test whether the groups hover around their thresholds"}
    return f"So {lead[claim.verdict]}. {_verdict_md(claim)}"


def _onset_md(params: Params, main: toy.Sweep) -> str:
    onset = toy.random_walk_onset(main, params.random_walk_fraction)
    if onset is not None:
        return f"reaches {params.random_walk_fraction:g} of the random-direction level from η ≈ {onset:.3g} on"
    return (f"never reaches {params.random_walk_fraction:g} of the random-direction level in the sweep (up to "
            f"η = {params.eta_max:g}): the largest late-time value is {main.late_relative.max():.3f} of that level")


def _remark_md(claim: Claim) -> str:
    text = {Verdict.HELD: "So in this deterministic toy the range above the no-stable-group threshold is a 2-cycle "
                          "plateau, not a random walk, as Remark 2 says: there is no 2→3 transition.",
            Verdict.NOT_HELD: "So this deterministic toy does reach the random-walk level, which Remark 2 did not "
                              "expect.",
            Verdict.NOT_TESTED: "This preset does not test Remark 2."}
    return f"{text.get(claim.verdict, '')} {_verdict_md(claim)}"


def _constraint_values(findings: ToyFindings, thresholds: _Thresholds) -> dict:
    measured = toy.measure_convergence_threshold(findings.individual, findings.params.converged_tolerance)
    theory = toy.individual_convergence_threshold(findings.main.alphas, findings.split)
    total_measured = thresholds.zoomed[0].estimate if thresholds.zoomed else None
    ratio = total_measured / measured.estimate if total_measured and measured.estimate else np.nan
    return {"individual_theory": theory, "individual_low": measured.last_below,
            "individual_high": measured.first_above, "total_over_individual_measured": ratio,
            "total_over_individual": thresholds.theory / theory}


# --------------------------------------------------------------------------- tables and key numbers

def _examples_table(params: Params, examples: toy.Trajectory) -> Table:
    frame = pd.DataFrame(_example_columns(params, examples))
    return Table(frame, formats={"total ELR η": "g", "late F / random-direction level": ".3g",
                                 "late angle per step (°)": ".3g"}, show_index=False)


def _thresholds_table(params: Params, thresholds: _Thresholds) -> Table:
    rows = [{"init seed": seed, "last converged η": z.last_below, "first not converged η": z.first_above,
             "threshold": z.estimate, "threshold × Σα": ratio,
             "steps from 1/Σα": abs(np.log(ratio)) / np.log(params.resolution)}
            for seed, z, ratio in zip(params.init_seeds, thresholds.zoomed, thresholds.ratios)]
    frame = pd.DataFrame(rows, columns=["init seed", "last converged η", "first not converged η", "threshold",
                                        "threshold × Σα", "steps from 1/Σα"])
    return Table(frame, formats={"last converged η": ".5f", "first not converged η": ".5f", "threshold": ".5f",
                                 "threshold × Σα": ".4f", "steps from 1/Σα": ".2f"}, show_index=False)


def _key_numbers(params: Params, findings: ToyFindings, thresholds: _Thresholds) -> list[str]:
    values = findings.values
    onset = toy.random_walk_onset(findings.main, params.random_walk_fraction)
    return [f"1/sum alpha = {values['threshold_theory']:.4f}, 1/min alpha = {values['no_stable_theory']:.3g}",
            f"threshold/(1/sum alpha) = {values['threshold_ratio']:.4f}",
            f"over {len(thresholds.zoomed)} initial points: {values['ratio_min']:.4f} to {values['ratio_max']:.4f}",
            f"random-walk onset ({findings.main_label}): " + ("none in the sweep" if onset is None
                                                             else f"eta = {onset:.2g}")]
