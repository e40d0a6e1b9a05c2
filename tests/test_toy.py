"""The toy example of paper §3: exact identities, the gradient, thresholds and the simulators."""

from __future__ import annotations

import numpy as np
import pytest

from sphere_regimes import toy

ALPHAS = np.asarray(toy.DEFAULT_ALPHAS)
DIM = toy.DEFAULT_DIM


def _random_theta(seed: int = 1, shape: tuple[int, ...] = (len(ALPHAS), DIM)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.fixture(scope="module")
def total_runs() -> toy.Trajectory:
    """One ELR in each range of the thresholds, with noise so that the identities are tested off the 2-cycles."""
    return toy.run_total([0.02, 0.2, 5.0], n_iterations=2000, noise_std=0.3, seed=3)


def test_sum_of_inverse_individual_elrs_is_inverse_total_elr(total_runs):
    lhs = np.sum(1.0 / total_runs.elrs, axis=-1)
    np.testing.assert_allclose(lhs * total_runs.etas, 1.0, rtol=0, atol=1e-10)


def test_total_norm_stays_one(total_runs):
    np.testing.assert_allclose(total_runs.rho.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(total_runs.theta, axis=(-2, -1)), 1.0, rtol=0, atol=1e-12)


def test_each_group_is_scale_invariant():
    theta = _random_theta()
    scales = np.array([0.01, 3.0, 1e3, 0.5])[:, None]
    np.testing.assert_allclose(toy.group_losses(theta * scales, ALPHAS), toy.group_losses(theta, ALPHAS),
                               rtol=1e-12, atol=0)


def test_loss_is_alpha_sin_squared_of_the_angle_to_e():
    angles = np.array([0.0, 0.3, np.pi / 4, np.pi / 2])
    theta = np.zeros((len(ALPHAS), DIM))
    theta[:, 0], theta[:, 3] = np.cos(angles), np.sin(angles)
    np.testing.assert_allclose(toy.group_losses(2.0 * theta, ALPHAS), ALPHAS * np.sin(angles) ** 2, atol=1e-15)


def test_gradient_matches_central_finite_differences():
    theta = _random_theta(seed=2) * 0.3
    step = 1e-6
    numeric = np.zeros_like(theta)
    for index in np.ndindex(theta.shape):
        shift = np.zeros_like(theta)
        shift[index] = step
        numeric[index] = (toy.loss(theta + shift, ALPHAS) - toy.loss(theta - shift, ALPHAS)) / (2 * step)
    np.testing.assert_allclose(toy.gradient(theta, ALPHAS), numeric, rtol=1e-6, atol=1e-7)


def test_gradient_is_orthogonal_to_each_group():
    theta = _random_theta(seed=4, shape=(7, len(ALPHAS), DIM))
    inner = np.sum(toy.gradient(theta, ALPHAS) * theta, axis=-1)
    np.testing.assert_allclose(inner, 0.0, atol=1e-13)


def test_thresholds_have_their_closed_forms():
    assert toy.convergence_threshold(ALPHAS) == pytest.approx(1 / ALPHAS.sum())
    assert toy.no_stable_group_threshold(ALPHAS) == pytest.approx(1 / ALPHAS.min())
    assert toy.random_direction_level(ALPHAS, DIM) == pytest.approx(ALPHAS.sum() * (DIM - 1) / DIM)
    assert list(toy.theory_regime([0.01, 0.1, 2.0], ALPHAS)) == [1, 2, 3]


def test_random_direction_level_is_the_mean_loss_of_random_directions():
    theta = _random_theta(seed=5, shape=(20000, len(ALPHAS), DIM))
    mean = toy.loss(theta, ALPHAS).mean()
    assert mean == pytest.approx(toy.random_direction_level(ALPHAS, DIM), rel=0.01)


def test_one_step_is_projected_gradient_descent_on_the_total_sphere():
    start = toy.initial_point(len(ALPHAS), DIM, seed=7)
    eta = 0.3
    run = toy.run_total([eta], n_iterations=1, theta0=start)
    expected = start - eta * toy.gradient(start, ALPHAS)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(run.theta[0], expected, atol=1e-15)
    cos = np.sum(start * expected)
    assert run.angle[0, 0] == pytest.approx(np.arccos(cos), rel=1e-9)


def test_converges_below_the_threshold_and_not_far_above_the_no_stable_group_threshold():
    low = 0.5 * toy.convergence_threshold(ALPHAS)
    high = 5.0 * toy.no_stable_group_threshold(ALPHAS)
    run = toy.run_total([low, high], n_iterations=3000)
    late = run.relative_loss[-500:]
    assert late[:, 0].max() < 1e-12
    assert late[:, 1].min() > 0.05
    assert np.all(run.elrs[-1, 1] * ALPHAS > 1)  # no group stable, whatever the split of the norm


def test_individual_constraint_freezes_elrs_and_groups_converge_iff_elr_alpha_below_one():
    split = toy.equal_split(len(ALPHAS))
    etas = np.array([0.02, 0.04, 0.08, 0.15, 0.3])
    run = toy.simulate(etas, constraint="individual", radii_sq=split, n_iterations=3000)
    np.testing.assert_allclose(run.rho, np.broadcast_to(split, run.rho.shape), rtol=1e-12)
    frozen = etas[:, None] / split
    np.testing.assert_allclose(run.elrs, np.broadcast_to(frozen, run.elrs.shape), rtol=1e-12)
    k = frozen * ALPHAS
    assert not np.any(np.isclose(k, 1.0, rtol=0.05))  # keep clear of the marginal case
    late_sin2 = run.group_loss[-200:].max(axis=0) / ALPHAS
    np.testing.assert_array_equal(late_sin2 < 1e-10, k < 1)
    # off the threshold, a group sits on the 2-cycle of the exact one-group map
    late_mean = (run.group_loss[-200:] / ALPHAS).mean(axis=0)
    np.testing.assert_allclose(late_mean[k > 1], toy.two_cycle_sin2(k[k > 1]), atol=1e-6)


def test_individual_constraint_rejects_a_split_that_does_not_sum_to_one():
    with pytest.raises(ValueError):
        toy.simulate([0.1], constraint="individual", radii_sq=[0.5, 0.5, 0.5, 0.5], n_iterations=1)


@pytest.fixture(scope="module")
def fine_sweep() -> toy.Sweep:
    threshold = toy.convergence_threshold(ALPHAS)
    return toy.sweep(toy.log_spaced_etas(threshold / 3, threshold * 3, 40), n_iterations=3000)


def test_measured_convergence_threshold_is_within_five_percent_of_one_over_sum_alpha(fine_sweep):
    measured = toy.measure_convergence_threshold(fine_sweep)
    assert measured.last_below is not None and measured.first_above is not None
    assert measured.estimate / toy.convergence_threshold(ALPHAS) == pytest.approx(1.0, abs=0.05)


def test_chaotic_equilibrium_above_the_threshold_matches_the_two_cycle_loss(fine_sweep):
    above = fine_sweep.etas > 1.05 * toy.convergence_threshold(ALPHAS)
    predicted = toy.two_cycle_loss(fine_sweep.etas[above], ALPHAS)
    np.testing.assert_allclose(fine_sweep.late_loss[above], predicted, rtol=0.1)


def test_threshold_and_onset_helpers_on_a_hand_made_sweep():
    etas = np.array([0.4, 0.1, 0.2, 0.8, 1.6])
    relative = np.array([0.5, 0.0, 1e-9, 0.92, 0.95])
    result = toy.Sweep(etas=etas, alphas=ALPHAS, dim=DIM, late_loss=relative, late_relative=relative,
                       late_elrs=np.ones((5, 4)), late_group_sin2=np.zeros((5, 4)))
    measured = toy.measure_convergence_threshold(result)
    assert (measured.last_below, measured.first_above) == (0.2, 0.4)
    assert measured.estimate == pytest.approx(np.sqrt(0.08))
    assert toy.random_walk_onset(result) == 0.8
    assert toy.random_walk_onset(result, fraction=0.99) is None


def test_runs_are_deterministic_given_the_seeds():
    first = toy.run_total([0.1, 1.0], n_iterations=300, noise_std=0.2, seed=11)
    again = toy.run_total([0.1, 1.0], n_iterations=300, noise_std=0.2, seed=11)
    other = toy.run_total([0.1, 1.0], n_iterations=300, noise_std=0.2, seed=12)
    np.testing.assert_array_equal(first.theta, again.theta)
    np.testing.assert_array_equal(first.loss, again.loss)
    assert not np.array_equal(first.theta, other.theta)


@pytest.mark.parametrize("noise_std", [0.0, 0.5])
def test_vectorised_sweep_equals_a_loop_over_etas(noise_std):
    etas = toy.log_spaced_etas(0.01, 10.0, 3)
    batched = toy.sweep(etas, n_iterations=400, noise_std=noise_std, seed=2)
    for index, eta in enumerate(etas):
        single = toy.sweep([eta], n_iterations=400, noise_std=noise_std, seed=2)
        np.testing.assert_allclose(batched.late_loss[index], single.late_loss[0], rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(batched.late_elrs[index], single.late_elrs[0], rtol=1e-12)


def test_record_every_keeps_the_last_iterate():
    run = toy.run_total([0.1], n_iterations=95, record_every=10)
    assert list(run.iterations) == [*range(0, 91, 10), 95]
    full = toy.run_total([0.1], n_iterations=95)
    np.testing.assert_array_equal(run.loss[-1], full.loss[-1])
