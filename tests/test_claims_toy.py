"""The toy chapter's claims (paper §3, Remark 2) under the cpu preset: each measured value is recomputed
from the simulation (``sphere_regimes.toy``, the science layer) by hand, not through
``chapters.toy.analyse``, and the ledger's verdicts are the pinned ones (``tests/expected_verdicts.yaml``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from sphere_regimes import chapters, toy
from sphere_regimes.claims import Claim

PARAMS = chapters.toy.Params.from_preset("cpu")
ALPHAS = np.asarray(PARAMS.alphas)
LEVEL = ALPHAS.sum() * (PARAMS.dim - 1) / PARAMS.dim  # F at a random direction in every group
THEORY = 1.0 / ALPHAS.sum()
JUST_ABOVE, AROUND = 1.5, 2.0  # the self-tuning rule's reading: ELRs in (1, 1.5]/sum alpha, eta_i alpha_i within 2x of 1
EXPECTED = Path(__file__).parent / "expected_verdicts.yaml"


@pytest.fixture(scope="module")
def ledger() -> dict[str, Claim]:
    return {claim.id: claim for claim in chapters.toy.analyse(PARAMS).claims}


def _run(etas, init_seed: int = PARAMS.init_seeds[0], **options) -> toy.Trajectory:
    return toy.simulate(etas, alphas=ALPHAS, dim=PARAMS.dim, n_iterations=PARAMS.n_iterations,
                        noise_std=PARAMS.noise_std, seed=PARAMS.seed,
                        theta0=toy.initial_point(len(ALPHAS), PARAMS.dim, init_seed), **options)


def _late(run: toy.Trajectory) -> tuple[np.ndarray, np.ndarray]:
    """Late-time F / random-direction level and geometric-mean eta_i alpha_i, by hand."""
    late = run.iterations >= run.iterations[-1] * (1 - PARAMS.late_fraction)
    elrs = run.etas[None, :, None] / run.rho[late]
    return run.loss[late].mean(axis=0) / LEVEL, np.exp(np.log(elrs).mean(axis=0)) * ALPHAS


def _threshold(etas: np.ndarray, relative: np.ndarray) -> float:
    """Geometric mean of the largest converged ELR and the next one (NaN if not bracketed)."""
    converged = np.flatnonzero(relative < PARAMS.converged_tolerance)
    if not len(converged) or converged[-1] + 1 == len(etas):
        return np.nan
    return float(np.sqrt(etas[converged[-1]] * etas[converged[-1] + 1]))


@pytest.fixture(scope="module")
def sweep() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The main sweep's ELRs, late-time relative losses and late eta_i alpha_i."""
    etas = toy.log_spaced_etas(PARAMS.eta_min, PARAMS.eta_max, PARAMS.etas_per_decade)
    return (etas, *_late(_run(etas)))


def test_elr_sum_is_the_max_deviation_of_the_example_trajectories(ledger):
    run = _run(PARAMS.example_etas)
    deviation = np.max(np.abs(run.etas[None, :] * np.sum(1.0 / run.elrs, axis=-1) - 1.0))
    assert ledger["toy.elr_sum"].value == pytest.approx(deviation, rel=1e-9, abs=0)


def test_convergence_threshold_is_the_worst_initial_point_in_steps_of_the_zoomed_sweep(ledger, sweep):
    etas, relative, _ = sweep
    step = 10 ** (1 / PARAMS.etas_per_decade)
    last = np.flatnonzero(relative < PARAMS.converged_tolerance)[-1]
    zoom = toy.log_spaced_etas(etas[last] / step, etas[last + 1] * step, PARAMS.zoom_etas_per_decade)
    thresholds = np.array([_threshold(zoom, _late(_run(zoom, seed))[0]) for seed in PARAMS.init_seeds])
    steps = np.abs(np.log10(thresholds / THEORY)) * PARAMS.zoom_etas_per_decade
    assert ledger["toy.convergence_threshold"].value == pytest.approx(np.max(steps), rel=1e-9)


def test_self_tuning_is_the_largest_factor_between_a_groups_elr_alpha_and_one(ledger, sweep):
    etas, _, k = sweep
    window = (etas > THEORY) & (etas <= JUST_ABOVE * THEORY)
    worst = np.max(np.maximum(k[window], 1.0 / k[window]))
    assert ledger["toy.self_tuning"].value == pytest.approx(worst, rel=1e-9)
    assert (chapters.toy.JUST_ABOVE, chapters.toy.AROUND) == (JUST_ABOVE, AROUND)


def test_no_divergent_regime_is_the_largest_late_loss_of_the_exact_sweep(ledger, sweep):
    assert PARAMS.noise_std == 0
    assert ledger["toy.no_divergent_regime"].value == pytest.approx(np.max(sweep[1]), rel=1e-9)


def test_verdicts_are_the_pinned_ones(ledger):
    pinned = yaml.safe_load(EXPECTED.read_text())[chapters.toy.NOTEBOOK]
    assert {claim_id: str(claim.verdict) for claim_id, claim in ledger.items()} == pinned


def test_a_lower_random_walk_criterion_flips_the_remark_2_verdict():
    """The 2-cycle plateau sits at d/(2(d-1)) = 0.556 of the random level: a criterion below it must fail."""
    params = dataclasses.replace(chapters.toy.Params.from_preset("smoke"), random_walk_fraction=0.5)
    claims = {claim.id: claim for claim in chapters.toy.analyse(params).claims}
    assert str(claims["toy.no_divergent_regime"].verdict) == "not held"
