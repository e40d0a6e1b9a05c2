"""Chapter 01, the toy example (paper §3): a function of several scale-invariant groups trained by
projected gradient descent on the unit sphere. Numpy only; it reads no store."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Params as _Params

NOTEBOOK = "01_toy_theory"


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
