"""Chapter 02, the three regimes on real data (paper §4, Figure 1): a grid of fixed ELRs on the sphere,
a geometric bisection of the brackets where the regime changes, the individual constraint, and the
pilot that sized the setting."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import presets, regimes
from ..config import RunConfig
from ..data import DATASET_INFO
from ..engine import RunResult, load
from ..store import RunStore
from .base import Params as _Params
from .base import load_results

NOTEBOOK = "02_three_regimes"


@dataclass(frozen=True)
class Params(_Params):
    notebook = NOTEBOOK
    dataset: str = "fashion_mnist"  # fashion_mnist, cifar10 or cifar100
    train_size: int = 10000  # first N training images (0: all of them)
    width: int = 8  # ConvNetSI width: channels of the first conv layer
    batch_size: int = 128  # images per step
    epochs: int = 150  # epochs per run
    dense_metric_epochs: int = 20  # full metrics (train-mode loss, test error, effective gradient) every epoch up to here
    metric_every: int = 5  # ... then every this many epochs
    sharpness_every: int = 10  # Hutchinson sharpness every this many epochs (0: never)
    elrs: tuple[float, ...] = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1)  # effective learning rates of the grid
    seeds: tuple[int, ...] = (0, 1, 2)  # init seeds (the last layer is shared by all runs)
    bisection_steps: int = 1  # rounds of geometric bisection of the ELR brackets where the regime changes
    individual_elrs: tuple[float, ...] = (5e-3, 1e-1)  # ELRs also trained under the individual (per-layer) norm constraint, first seed
    pilot_widths: tuple[int, ...] = (4, 8, 16, 32)  # appendix: widths timed on this chapter's training set
    pilot_train_sizes: tuple[int, ...] = (0,)  # appendix: training-set sizes timed at this chapter's width (0: all images)
    pilot_epochs: int = 2  # appendix: epochs of each pilot run (full metrics every epoch)

    def __post_init__(self) -> None:
        if self.dataset not in DATASET_INFO:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {sorted(DATASET_INFO)}")
        if not self.elrs or not self.seeds:
            raise ValueError("elrs and seeds must not be empty")
        outside = sorted(set(self.individual_elrs) - set(self.elrs))
        if outside:
            raise ValueError(f"individual_elrs {outside} are not in the grid elrs {list(self.elrs)}: each individual-"
                             "constraint run is compared with the total-constraint run of the same ELR")

    @property
    def num_classes(self) -> int:
        return DATASET_INFO[self.dataset].num_classes


def base_config(params: Params, **changes) -> RunConfig:
    """The chapter's common setting (dataset, model, data size, metric schedule), with ``changes``;
    ``train_size = 0`` means the whole training set."""
    values = dict(dataset=params.dataset, train_size=params.train_size or None, model="convnet_si",
                  width=params.width, batch_size=params.batch_size, epochs=params.epochs,
                  dense_metric_epochs=params.dense_metric_epochs, metric_every=params.metric_every,
                  sharpness_every=params.sharpness_every)
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
    return grid + grid_configs(params, bisection_elrs(params, store)) + individual_configs(params) + pilot_configs(params)


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
    """The first seed at each of ``individual_elrs`` under the individual (per-layer) constraint.

    Each layer keeps its initial norm, so its ELR stays frozen at ``eta_i = elr ||w_0||^2 / ||w_i0||^2``,
    the value the total-constraint run of the same ELR starts from (paper §3, §5.2).
    """
    return [base_config(params, elr=elr, seed=params.seeds[0], constraint="individual", grouping="layer")
            for elr in params.individual_elrs]


def bisection_elrs(params: Params, store: RunStore) -> list[float]:
    """ELRs that bisect (geometrically) the brackets where the majority regime changes.

    Round k+1 is known once every run of rounds 0..k is in the store: the grid is round 0; each
    round adds ``sqrt(low * high)`` for every bracket ``(low, high)`` between neighbouring ELRs of
    different regimes, so after k rounds a grid step of 2 is narrowed to ``2^(1/2^k)``. Until the
    store holds a round, the later rounds are not planned (the sweep plans again after each pass).
    """
    elrs = sorted(params.elrs)
    added: list[float] = []
    for _ in range(params.bisection_steps):
        results = [load(c, store) for c in grid_configs(params, elrs)]
        if any(r is None for r in results):
            break
        summary = regimes.run_summary(results, params.num_classes)
        midpoints = [math.sqrt(low * high) for _, _, low, high in regimes.grid_boundaries(summary)]
        new = [m for m in midpoints if all(not math.isclose(m, e, rel_tol=1e-9) for e in elrs)]
        if not new:
            break
        elrs = sorted(elrs + new)
        added += new
    return added


@dataclass(frozen=True)
class Runs:
    """The chapter's finished runs by role."""

    grid: list[RunResult]  # total constraint: the ELR grid and the boundary search
    individual: list[RunResult]  # individual constraint (:func:`individual_configs`)
    pilot: list[RunResult]  # timing pilot (:func:`pilot_configs`)


def runs(params: Params, store: RunStore | None = None) -> Runs:
    """The chapter's finished runs under ``params``, by role (:class:`~.base.MissingRunsError` if any is missing)."""
    store = store if store is not None else presets.preset_store(params.preset)
    results = load_results(plan(params, store), store, NOTEBOOK, params.preset)
    pilot_ids = {c.run_id for c in pilot_configs(params)}
    main = [r for r in results if r.config.run_id not in pilot_ids]
    return Runs(grid=[r for r in main if r.config.constraint == "total"],
                individual=[r for r in main if r.config.constraint == "individual"],
                pilot=[r for r in results if r.config.run_id in pilot_ids])
