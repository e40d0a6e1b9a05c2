r"""The toy example of paper §3: a sum of scale-invariant groups trained on the sphere.

The function
------------
The parameters are n groups, ``theta = (theta_1, ..., theta_n)`` with ``theta_i`` in R^d, and

.. math::

    F(\theta) = \sum_i f_i(\theta_i), \qquad
    f_i(\theta_i) = \alpha_i \Bigl(1 - \frac{\langle \theta_i, e_i\rangle^2}{\|\theta_i\|^2}\Bigr)
                  = \alpha_i \sin^2\varphi_i ,

where ``phi_i`` is the angle between ``theta_i`` and a fixed unit vector ``e_i`` and
``alpha_i > 0`` is the group's sharpness. Each ``f_i`` depends on ``theta_i / ||theta_i||`` only,
so F is scale-invariant in every group separately (like the weights preceding each BatchNorm
layer of a network). Its minima are ``theta_i = ±||theta_i|| e_i`` with any split of the norm.
Here every ``e_i`` is the first coordinate vector of R^d: the initial point and the noise are
isotropic, so any other choice is a rotation of this one.

The gradient of ``f_i`` is orthogonal to ``theta_i`` and scales as ``1/||theta_i||``:

.. math::

    \nabla f_i(\theta_i) = -\frac{2\alpha_i c_i}{\|\theta_i\|^2}
        \Bigl(e_i - \frac{c_i}{\|\theta_i\|^2}\,\theta_i\Bigr), \qquad c_i = \langle\theta_i, e_i\rangle .

Stability of one group on its own sphere
----------------------------------------
On the unit sphere of group i, ``f_i = alpha_i sin^2 phi`` has derivative ``alpha_i sin 2phi`` and
second derivative ``2 alpha_i`` at the minimum ``phi = 0``. A gradient step of size ``eta_i`` in
the plane of ``e_i`` and ``theta_i``, followed by renormalisation, maps exactly

.. math::

    \tan\varphi' = \tan\varphi\;\frac{1 - 2\eta_i\alpha_i\cos^2\varphi}{1 + 2\eta_i\alpha_i\sin^2\varphi}
    \;\approx\; (1 - 2\eta_i\alpha_i)\,\tan\varphi \quad (\varphi \to 0),

so the minimum is linearly stable iff ``|1 - 2 eta_i alpha_i| < 1``, i.e. ``eta_i alpha_i < 1``.
(For ``eta_i alpha_i > 1`` the exact map has a 2-cycle at ``cos 2phi = 1/(eta_i alpha_i)``.)

Training on the total sphere (paper §3)
---------------------------------------
Projected gradient descent with a fixed total effective learning rate (ELR) ``eta`` on the
sphere ``||theta|| = 1``: ``theta <- theta - eta grad F(theta)``, then ``theta <- theta / ||theta||``.
Group i then moves on its own sphere with the *individual* ELR ``eta_i = eta / rho_i``, where
``rho_i = ||theta_i||^2``; since ``sum_i rho_i = 1``,

.. math::

    \sum_i \frac{1}{\eta_i} = \frac{1}{\eta}\sum_i \rho_i = \frac{1}{\eta}.

* **Convergence threshold** ``1 / sum_i alpha_i``: at a stable minimum every group needs
  ``eta_i alpha_i < 1``, i.e. ``eta alpha_i < rho_i``; summing over i gives
  ``eta sum_i alpha_i < sum_i rho_i = 1``. Conversely for ``eta < 1/sum alpha_i`` the split
  ``rho_i > eta alpha_i`` exists, and the dynamics can find it: a group whose gradient is large
  gains norm, ``rho_i' = (rho_i + eta^2 ||grad_i F||^2) / (1 + eta^2 ||grad F||^2)``, which lowers
  its ELR (self-tuning of the individual ELRs).
* **No stable group** above ``1 / min_i alpha_i``: ``rho_i <= 1`` gives ``eta_i >= eta > 1/alpha_i``
  for every i, whatever the split of the norm.

The module only simulates and measures; whether the toy shows a random-walk ("divergent")
regime is read from :func:`sweep` and :func:`random_walk_onset` (the paper's Remark 2 says
this simple formulation allegedly lacks it).

Batching
--------
Every simulator takes a 1-D array of total ELRs and runs them at once on arrays of shape
``(B, n, d)``. All runs in a batch start from the same initial point and, with noise, see the
same noise sequence (common random numbers), so a batched run equals the per-ELR runs exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

DEFAULT_ALPHAS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)
"""Sharpness of the four groups: spread over a decade, ``1/sum = 1/18``, ``1/min = 1``."""
DEFAULT_DIM: int = 10
"""Dimension d of each group."""
DEFAULT_INIT_SEED: int = 0
"""Seed of the default initial point (a standard normal vector scaled to total norm 1)."""

Constraint = Literal["total", "individual"]
ArrayLike = Sequence[float] | np.ndarray


# --------------------------------------------------------------------------- the function

def _as_alphas(alphas: ArrayLike) -> np.ndarray:
    values = np.asarray(alphas, dtype=float)
    if values.ndim != 1 or len(values) == 0 or np.any(values <= 0):
        raise ValueError(f"alphas must be a non-empty 1-D sequence of positive numbers, got {alphas!r}")
    return values


def group_losses(theta: np.ndarray, alphas: ArrayLike) -> np.ndarray:
    """``f_i(theta_i) = alpha_i (1 - theta_i[0]^2 / ||theta_i||^2)`` for theta of shape ``(..., n, d)``."""
    rho = np.sum(theta**2, axis=-1)
    return _as_alphas(alphas) * (1.0 - theta[..., 0] ** 2 / rho)


def loss(theta: np.ndarray, alphas: ArrayLike) -> np.ndarray:
    """``F(theta) = sum_i f_i(theta_i)`` for theta of shape ``(..., n, d)``."""
    return group_losses(theta, alphas).sum(axis=-1)


def gradient(theta: np.ndarray, alphas: ArrayLike) -> np.ndarray:
    """Analytic ``grad F``: ``-2 alpha_i c_i / rho_i (e_i - c_i theta_i / rho_i)``, ``c_i = theta_i[0]``."""
    rho = np.sum(theta**2, axis=-1, keepdims=True)
    c = theta[..., :1]
    direction = -(c / rho) * theta
    direction[..., 0] += 1.0
    return -2.0 * _as_alphas(alphas)[:, None] * (c / rho) * direction


# --------------------------------------------------------------------------- thresholds

def convergence_threshold(alphas: ArrayLike) -> float:
    """``1 / sum_i alpha_i``: the total ELR below which a stable minimum exists on the total sphere."""
    return float(1.0 / _as_alphas(alphas).sum())


def no_stable_group_threshold(alphas: ArrayLike) -> float:
    """``1 / min_i alpha_i``: above it ``eta_i >= eta > 1/alpha_i`` for every group and every norm split."""
    return float(1.0 / _as_alphas(alphas).min())


def random_direction_level(alphas: ArrayLike, dim: int) -> float:
    """Expected F at a uniformly random direction in each group: ``sum_i alpha_i (d-1)/d``.

    For a uniform unit vector in R^d, ``E cos^2 phi = 1/d``, hence ``E sin^2 phi = (d-1)/d``.
    """
    if dim < 2:
        raise ValueError(f"dim must be at least 2, got {dim}")
    return float(_as_alphas(alphas).sum() * (dim - 1) / dim)


def individual_convergence_threshold(alphas: ArrayLike, radii_sq: ArrayLike) -> float:
    """``min_i r_i^2 / alpha_i``: under the individual constraints ``||theta_i||^2 = r_i^2`` group i
    converges iff ``eta_i alpha_i = eta alpha_i / r_i^2 < 1``, so all groups converge iff eta is below this."""
    return float(np.min(np.asarray(radii_sq, dtype=float) / _as_alphas(alphas)))


def equal_split(n_groups: int) -> np.ndarray:
    """``r_i^2 = 1/n`` for every group: the same norm for every group, total norm 1."""
    return np.full(n_groups, 1.0 / n_groups)


def theory_regime(etas: ArrayLike, alphas: ArrayLike) -> np.ndarray:
    """1 below ``1/sum alpha``, 2 up to ``1/min alpha``, 3 above: the ELR ranges of the thresholds.

    This labels ranges by the theory of §3, not by what a run does: "3" is the range where no
    group can be stable (the candidate for the divergent regime); :func:`random_walk_onset` says
    whether the simulation actually reaches the random-walk level there.
    """
    etas = np.asarray(etas, dtype=float)
    return 1 + (etas >= convergence_threshold(alphas)).astype(int) + (etas >= no_stable_group_threshold(alphas))


def two_cycle_sin2(elr_times_alpha: ArrayLike) -> np.ndarray:
    """``sin^2 phi`` on the 2-cycle of one group, ``(1 - 1/k)/2`` for ``k = eta_i alpha_i > 1``, else 0.

    The exact one-group map (module docstring) has the 2-cycle ``phi -> -phi`` where
    ``1 - 2k cos^2 phi = -(1 + 2k sin^2 phi)``, i.e. ``cos 2phi = 1/k``; below ``k = 1`` the group converges.
    """
    k = np.asarray(elr_times_alpha, dtype=float)
    return np.where(k > 1.0, (1.0 - 1.0 / np.maximum(k, 1.0)) / 2.0, 0.0)


def two_cycle_loss(etas: ArrayLike, alphas: ArrayLike) -> np.ndarray:
    """F when every group sits on its 2-cycle: ``(sum_i alpha_i - 1/eta) / 2`` (0 below ``1/sum alpha``).

    With ``eta_i alpha_i >= 1`` for all i, ``F = sum_i alpha_i (1 - 1/(eta_i alpha_i)) / 2
    = (sum_i alpha_i - sum_i 1/eta_i) / 2 = (sum_i alpha_i - 1/eta) / 2`` by the identity
    ``sum_i 1/eta_i = 1/eta``, whatever the split of the norm. It tends to ``sum_i alpha_i / 2``
    (each group at 45 degrees from its minimum) as eta grows, which is ``d / (2(d-1))`` of the
    random-direction level.
    """
    etas = np.asarray(etas, dtype=float)
    return np.maximum(_as_alphas(alphas).sum() - 1.0 / etas, 0.0) / 2.0


def log_spaced_etas(low: float, high: float, per_decade: int) -> np.ndarray:
    """ELRs from ``low`` to ``high`` (both included), ``per_decade`` points per factor of 10."""
    if not 0 < low < high or per_decade < 1:
        raise ValueError("need 0 < low < high and per_decade >= 1")
    count = int(round(np.log10(high / low) * per_decade)) + 1
    return np.logspace(np.log10(low), np.log10(high), count)


# --------------------------------------------------------------------------- simulation

def initial_point(n_groups: int = len(DEFAULT_ALPHAS), dim: int = DEFAULT_DIM,
                  seed: int = DEFAULT_INIT_SEED) -> np.ndarray:
    """A standard normal ``(n, d)`` array scaled to total norm 1 (isotropic directions, random split)."""
    theta = np.random.default_rng(seed).standard_normal((n_groups, dim))
    return theta / np.linalg.norm(theta)


@dataclass(frozen=True)
class Trajectory:
    """A batch of runs, one per total ELR. Arrays are indexed ``[record, run, (group)]``.

    ``iterations[k]`` is the step count of record k (0 = the initial point).
    ``angle[k]`` is the angle in radians on the total sphere between the point at record k and
    the point one step later (the last entry is the angle of the last step taken).
    """

    etas: np.ndarray            # (B,) total ELR of each run
    alphas: np.ndarray          # (n,)
    dim: int
    constraint: Constraint
    iterations: np.ndarray      # (K,)
    loss: np.ndarray            # (K, B) F
    group_loss: np.ndarray      # (K, B, n) f_i
    rho: np.ndarray             # (K, B, n) ||theta_i||^2
    angle: np.ndarray           # (K, B) radians
    theta: np.ndarray           # (B, n, d) final point

    @property
    def elrs(self) -> np.ndarray:
        """Individual ELRs ``eta_i = eta / rho_i``, shape ``(K, B, n)``."""
        return self.etas[None, :, None] / self.rho

    @property
    def relative_loss(self) -> np.ndarray:
        """F divided by its random-direction level, shape ``(K, B)``."""
        return self.loss / random_direction_level(self.alphas, self.dim)


def _noisy_gradient(theta: np.ndarray, alphas: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
    """grad F plus, per group, ``noise_i`` projected orthogonally to theta_i and scaled by 1/||theta_i||.

    This is the stochastic gradient of a scale-invariant function: it stays orthogonal to each
    group and scales like the true gradient, so the noise has std ``noise_std`` per coordinate
    on the unit sphere of each group.
    """
    grad = gradient(theta, alphas)
    if noise is None:
        return grad
    rho = np.sum(theta**2, axis=-1, keepdims=True)
    tangent = noise - (np.sum(noise * theta, axis=-1, keepdims=True) / rho) * theta
    return grad + tangent / np.sqrt(rho)


def _retract(theta: np.ndarray, constraint: Constraint, radii: np.ndarray) -> np.ndarray:
    """Back onto the constraint set: the unit total sphere, or each group on its sphere of radius r_i."""
    if constraint == "total":
        return theta / np.sqrt(np.sum(theta**2, axis=(-2, -1), keepdims=True))
    return theta * (radii[:, None] / np.sqrt(np.sum(theta**2, axis=-1, keepdims=True)))


def _angle(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Angle between unit-norm points, ``2 arcsin(||a - b|| / 2)`` (accurate for small angles)."""
    chord = np.sqrt(np.sum((after - before) ** 2, axis=(-2, -1)))
    return 2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))


@dataclass
class _History:
    """Preallocated records of :func:`simulate`; ``filled`` counts the records stored so far."""

    group_loss: np.ndarray
    rho: np.ndarray
    angle: np.ndarray
    filled: int = 0

    @classmethod
    def empty(cls, records: int, runs: int, groups: int) -> _History:
        return cls(np.empty((records, runs, groups)), np.empty((records, runs, groups)), np.empty((records, runs)))

    def store(self, theta: np.ndarray, alphas: np.ndarray, angle: np.ndarray) -> None:
        self.group_loss[self.filled] = group_losses(theta, alphas)
        self.rho[self.filled] = np.sum(theta**2, axis=-1)
        self.angle[self.filled] = angle
        self.filled += 1


def _checked_inputs(etas: ArrayLike, alphas: ArrayLike, dim: int, constraint: Constraint,
                    theta0: np.ndarray | None, radii_sq: ArrayLike | None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``(etas, alphas, start, radii)`` for :func:`simulate`."""
    alphas = _as_alphas(alphas)
    etas = np.atleast_1d(np.asarray(etas, dtype=float))
    if etas.ndim != 1 or np.any(etas <= 0):
        raise ValueError("etas must be a 1-D array of positive ELRs")
    if constraint not in ("total", "individual"):
        raise ValueError(f"constraint must be 'total' or 'individual', got {constraint!r}")
    start = initial_point(len(alphas), dim) if theta0 is None else np.asarray(theta0, dtype=float)
    if start.shape != (len(alphas), dim):
        raise ValueError(f"theta0 must have shape {(len(alphas), dim)}, got {start.shape}")
    radii_sq = np.sum(start**2, axis=-1) if radii_sq is None else np.asarray(radii_sq, dtype=float)
    if constraint == "individual" and (np.any(radii_sq <= 0) or abs(np.sum(radii_sq) - 1.0) > 1e-12):
        raise ValueError("radii_sq must be positive and sum to 1 so that the total norm is 1")
    return etas, alphas, start, np.sqrt(radii_sq)


def _step(theta: np.ndarray, etas: np.ndarray, alphas: np.ndarray, noise: np.ndarray | None,
          constraint: Constraint, radii: np.ndarray) -> np.ndarray:
    """One projected GD step for every run of the batch: ``retract(theta - eta * grad)``."""
    return _retract(theta - etas[:, None, None] * _noisy_gradient(theta, alphas, noise), constraint, radii)


def simulate(etas: ArrayLike, alphas: ArrayLike = DEFAULT_ALPHAS, dim: int = DEFAULT_DIM,
             n_iterations: int = 4000, constraint: Constraint = "total", noise_std: float = 0.0,
             seed: int = 0, theta0: np.ndarray | None = None, radii_sq: ArrayLike | None = None,
             record_every: int = 1) -> Trajectory:
    """Projected gradient descent on F for every total ELR in ``etas`` at once.

    ``constraint="total"``: step ``theta - eta grad F`` then rescale to ``||theta|| = 1``.
    ``constraint="individual"``: step, then rescale each group to ``||theta_i|| = r_i`` with
    ``r_i^2 = radii_sq[i]`` (default: the initial point's split; must sum to 1), which freezes the
    individual ELRs at ``eta_i = eta / r_i^2``.

    ``theta0`` defaults to :func:`initial_point` (``n = len(alphas)``, ``dim``). With
    ``noise_std > 0`` isotropic Gaussian noise (seed ``seed``, the same for every run in the
    batch) is added to each group's unit-sphere gradient (see :func:`_noisy_gradient`).
    Every ``record_every``-th iterate is recorded, plus the last one.
    """
    etas, alphas, start, radii = _checked_inputs(etas, alphas, dim, constraint, theta0, radii_sq)
    theta = _retract(np.broadcast_to(start, (len(etas), *start.shape)).copy(), constraint, radii)
    rng = np.random.default_rng(seed) if noise_std > 0 else None
    recorded = sorted(set(range(0, n_iterations + 1, record_every)) | {n_iterations})
    history = _History.empty(len(recorded), len(etas), len(alphas))
    angle = np.zeros(len(etas))
    for step in range(n_iterations + 1):
        new = theta
        if step < n_iterations:
            noise = None if rng is None else noise_std * rng.standard_normal(start.shape)
            new = _step(theta, etas, alphas, noise, constraint, radii)
            angle = _angle(theta, new)
        if step == recorded[history.filled]:
            history.store(theta, alphas, angle)
        theta = new
    return Trajectory(etas=etas, alphas=alphas, dim=dim, constraint=constraint,
                      iterations=np.asarray(recorded), loss=history.group_loss.sum(axis=-1),
                      group_loss=history.group_loss, rho=history.rho, angle=history.angle, theta=theta)


def run_total(etas: ArrayLike, **kwargs) -> Trajectory:
    """:func:`simulate` under the total constraint ``||theta|| = 1`` (paper §3)."""
    return simulate(etas, constraint="total", **kwargs)


# --------------------------------------------------------------------------- sweeps

@dataclass(frozen=True)
class Sweep:
    """Late-time summary of a batch of runs (means over the last ``late_fraction`` of the iterations)."""

    etas: np.ndarray           # (B,)
    alphas: np.ndarray         # (n,)
    dim: int
    late_loss: np.ndarray      # (B,) mean F
    late_relative: np.ndarray  # (B,) mean F / random-direction level
    late_elrs: np.ndarray      # (B, n) geometric mean of eta_i
    late_group_sin2: np.ndarray  # (B, n) mean sin^2(phi_i) = f_i / alpha_i


def late_window(trajectory: Trajectory, late_fraction: float = 0.25) -> slice:
    """The records whose iteration lies in the last ``late_fraction`` of the run."""
    last = trajectory.iterations[-1]
    first = int(np.searchsorted(trajectory.iterations, last * (1.0 - late_fraction)))
    return slice(min(first, len(trajectory.iterations) - 1), None)


def summarize(trajectory: Trajectory, late_fraction: float = 0.25) -> Sweep:
    """Late-time means of a :class:`Trajectory` (see :class:`Sweep`)."""
    late = late_window(trajectory, late_fraction)
    late_loss = trajectory.loss[late].mean(axis=0)
    return Sweep(etas=trajectory.etas, alphas=trajectory.alphas, dim=trajectory.dim, late_loss=late_loss,
                 late_relative=late_loss / random_direction_level(trajectory.alphas, trajectory.dim),
                 late_elrs=np.exp(np.log(trajectory.elrs[late]).mean(axis=0)),
                 late_group_sin2=(trajectory.group_loss[late] / trajectory.alphas).mean(axis=0))


def sweep(etas: ArrayLike, alphas: ArrayLike = DEFAULT_ALPHAS, dim: int = DEFAULT_DIM,
          n_iterations: int = 4000, late_fraction: float = 0.25, record_every: int = 1,
          **kwargs) -> Sweep:
    """Run :func:`simulate` for every ELR (batched) and summarise the late-time behaviour.

    Extra keyword arguments (``constraint``, ``noise_std``, ``seed``, ``theta0``, ``radii_sq``)
    go to :func:`simulate`.
    """
    trajectory = simulate(etas, alphas=alphas, dim=dim, n_iterations=n_iterations,
                          record_every=record_every, **kwargs)
    return summarize(trajectory, late_fraction)


@dataclass(frozen=True)
class ThresholdEstimate:
    """A threshold bracketed on the sweep grid: ``last_below < threshold <= first_above``."""

    last_below: float | None   # largest ELR that converged
    first_above: float | None  # the next ELR of the grid (did not converge)

    @property
    def estimate(self) -> float | None:
        """Geometric mean of the bracket (None if the sweep does not bracket a threshold)."""
        if self.last_below is None or self.first_above is None:
            return None
        return float(np.sqrt(self.last_below * self.first_above))


def measure_convergence_threshold(result: Sweep, tolerance: float = 1e-6) -> ThresholdEstimate:
    """Bracket the convergence threshold: the largest ELR whose late-time ``F / level`` is below
    ``tolerance``, and the next ELR of the (sorted) grid."""
    order = np.argsort(result.etas)
    etas, converged = result.etas[order], result.late_relative[order] < tolerance
    if not converged.any():
        return ThresholdEstimate(None, float(etas[0]))
    last = int(np.flatnonzero(converged)[-1])
    above = float(etas[last + 1]) if last + 1 < len(etas) else None
    return ThresholdEstimate(float(etas[last]), above)


def thresholds_over_inits(etas: ArrayLike, init_seeds: Sequence[int], alphas: ArrayLike = DEFAULT_ALPHAS,
                          dim: int = DEFAULT_DIM, tolerance: float = 1e-6, **kwargs) -> list[ThresholdEstimate]:
    """:func:`measure_convergence_threshold` of a :func:`sweep` from each initial point
    ``initial_point(n, dim, seed)``; extra keyword arguments go to :func:`sweep`."""
    return [measure_convergence_threshold(
        sweep(etas, alphas=alphas, dim=dim, theta0=initial_point(len(alphas), dim, seed), **kwargs), tolerance)
        for seed in init_seeds]


def random_walk_onset(result: Sweep, fraction: float = 0.9) -> float | None:
    """The smallest ELR whose late-time F reaches ``fraction`` of the random-direction level, or None."""
    order = np.argsort(result.etas)
    reached = result.late_relative[order] >= fraction
    return float(result.etas[order][np.argmax(reached)]) if reached.any() else None
