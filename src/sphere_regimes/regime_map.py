"""The regime map of your own network: which of the three regimes (paper §4) a fixed ELR on the sphere
gives, over a range of ELRs, and where the boundaries 1→2 and 2→3 lie.

::

    from sphere_regimes.regime_map import map_regimes
    found = map_regimes(my_module.my_net, "fashion_mnist", elr_range=(1e-3, 1.0), epochs=25, seeds=1)
    print(found.report())
    found.write("regime-map")        # boundaries.csv, runs.csv, regime_map.png

``my_net`` is a module-level function without arguments that returns the network (see
:func:`sphere_regimes.factories.factory_model`: its trainable tensors must be scale-invariant, the head
frozen as built or rescaled to ``head_norm``). The map trains a log grid of ELRs (``points_per_decade``,
both ends included) on the sphere (:class:`~sphere_regimes.optim.SphereSGD`, total constraint) with
``seeds`` init seeds each, labels each run with the book's rule (:func:`sphere_regimes.regimes.run_regime`
with ``rule``; its defaults were set on ConvNetSI-8 / Fashion-MNIST, see :mod:`sphere_regimes.regimes`)
and the majority of the seeds at each ELR, then bisects every bracket where the regime changes
geometrically (``sqrt(low * high)``) until its ratio ``high / low`` is at most ``factor``
(:func:`boundary_search`). The runs go through the result store under ids that cover the factory's
import path and its module's source hash (:class:`~sphere_regimes.config.RunConfig` fields ``factory``,
``factory_sha256``): a rerun reads them, an edited module is a new map. The default store is
:data:`sphere_regimes.paths.MAP_STORE_DIR`, a user folder.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import paths, regimes
from .config import FACTORY_MODEL, RunConfig, check_finite
from .data import DATASET_INFO
from .engine import load
from .factories import build_model, factory_path, factory_sha256, import_factory
from .regimes import RegimeRule
from .store import RunResult, RunStore
from .sweep import Executor, connected, execute


@dataclass(frozen=True)
class MapSetting:
    """What a regime map trains: the network ``factory`` (``module:name``), the data and the run length,
    the ELR grid and the boundary search."""

    factory: str
    dataset: str = "fashion_mnist"
    elr_range: tuple[float, float] = (1e-3, 1.0)  # first and last ELR of the grid
    points_per_decade: int = 2  # ELRs of the grid per factor 10
    factor: float = 1.5  # bisect each boundary until its bracket's high / low is at most this
    epochs: int = 25  # epochs per run (the regime is labelled at this budget)
    seeds: int = 1  # init seeds 0 .. seeds-1 at each ELR (majority regime)
    train_size: int | None = 2000  # first N training images (None: all)
    head_norm: float | None = None  # rescale the head to this Frobenius norm and freeze it (None: as built)
    batch_size: int = 128
    rule: RegimeRule = field(default_factory=RegimeRule)  # the regime rule (defaults set on ConvNetSI-8 / Fashion-MNIST)

    def __post_init__(self) -> None:
        low, high = self.elr_range
        check_finite("the first ELR of the range", low, positive=True)
        check_finite("the last ELR of the range", high, positive=True)
        if not low < high:
            raise ValueError(f"the ELR range must go up, got {low:g} to {high:g}")
        if isinstance(self.points_per_decade, bool) or not isinstance(self.points_per_decade, int) \
                or self.points_per_decade < 1:
            raise ValueError(f"points per decade must be a positive integer, got {self.points_per_decade!r}")
        check_finite("the bracket factor", self.factor, positive=True)
        if not self.factor > 1:
            raise ValueError(f"the bracket factor must be > 1 (high / low of a bracket), got {self.factor:g}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"seeds must be a positive integer (how many), got {self.seeds!r}")
        self.base_config()  # the run fields are checked once, here

    @property
    def num_classes(self) -> int:
        return DATASET_INFO[self.dataset].num_classes

    def grid(self) -> list[float]:
        """The log grid from the first to the last ELR, ``points_per_decade`` per decade (3 significant digits)."""
        low, high = self.elr_range
        steps = max(math.ceil(math.log10(high / low) * self.points_per_decade - 1e-9), 1)
        return [float(f"{low * (high / low) ** (i / steps):.3g}") for i in range(steps + 1)]

    def rounds(self) -> int:
        """Bisection rounds that narrow the grid's largest step to at most ``factor`` (a step r becomes r^(1/2^k))."""
        grid = self.grid()
        step = max(b / a for a, b in itertools.pairwise(grid))
        return max(math.ceil(math.log2(math.log(step) / math.log(self.factor)) - 1e-9), 0) if step > self.factor else 0

    def base_config(self, elr: float = 1.0, seed: int = 0) -> RunConfig:
        """The run at ``elr`` with init seed ``seed`` (the factory's source hash read now)."""
        return RunConfig(dataset=self.dataset, train_size=self.train_size, model=FACTORY_MODEL, factory=self.factory,
                         factory_sha256=factory_sha256(self.factory), factory_head_norm=self.head_norm,
                         elr=float(elr), seed=seed, epochs=self.epochs, batch_size=self.batch_size)

    def configs_at(self, elrs: Sequence[float]) -> list[RunConfig]:
        """Every seed at each of ``elrs``."""
        return [self.base_config(elr, seed) for elr in elrs for seed in range(self.seeds)]


def boundary_search(elrs: Sequence[float], configs_at: Callable[[list[float]], list[RunConfig]], store: RunStore,
                    num_classes: int, rounds: int, rule: RegimeRule | None = None) -> list[float]:
    """ELRs that bisect (geometrically) the brackets where the majority regime changes.

    Round k+1 is known once every run of rounds 0..k is in the store: the grid ``elrs`` is round 0 (its
    runs are ``configs_at(elrs)``); each round adds ``sqrt(low * high)`` for every bracket ``(low, high)``
    between neighbouring ELRs of different regimes, so after k rounds a grid step r is narrowed to
    ``r^(1/2^k)``. Until the store holds a round, the later rounds are not planned (plan again after
    each pass, as :func:`compute` and ``plans.compute`` do).
    """
    elrs = sorted(elrs)
    added: list[float] = []
    for _ in range(rounds):
        results = [load(c, store) for c in configs_at(elrs)]
        if any(r is None for r in results):
            break
        summary = regimes.run_summary(results, num_classes, rule or RegimeRule())
        midpoints = [math.sqrt(low * high) for _, _, low, high in regimes.grid_boundaries(summary)]
        new = [m for m in midpoints if all(not math.isclose(m, e, rel_tol=1e-9) for e in elrs)]
        if not new:
            break
        elrs = sorted(elrs + new)
        added += new
    return added


def plan(setting: MapSetting, store: RunStore) -> list[RunConfig]:
    """The map's runs known so far: the grid, then the bisection rounds the store allows (:func:`boundary_search`)."""
    grid = setting.grid()
    return setting.configs_at(grid + boundary_search(grid, setting.configs_at, store, setting.num_classes,
                                                     setting.rounds(), setting.rule))


def compute(setting: MapSetting, store: RunStore, executor: Executor | None = None) -> None:
    """Train the map's runs that ``store`` lacks, pass after pass until the plan holds no new run. Ctrl-C stops
    it as it stops a sweep (:func:`sphere_regimes.sweep.execute`); the same call resumes. A failed run is a
    ``RuntimeError`` that names it."""
    executor = executor if executor is not None else Executor()
    with connected(executor):
        while True:
            todo = [c for c in plan(setting, store) if load(c, store) is None]
            if not todo:
                return
            print(f"regime map of {setting.factory}: {len(todo)} runs to compute in {store.root}", flush=True)
            failed = execute(todo, store, executor)
            if failed:
                raise RuntimeError(f"{len(failed)} runs of the map failed (e.g. {failed[0].label()}); "
                                   f"`sphere-regimes ls --store {store.root} --status failed` shows why")


BOUNDARY_COLUMNS = ["boundary", "elr_below", "elr_above", "bracket_factor", "midpoint"]


@dataclass(frozen=True)
class RegimeMap:
    """A finished regime map: one row per run (:func:`sphere_regimes.regimes.run_summary`) and one row per
    regime change of the majority regime along the ELR (``boundary`` such as ``1→2``, the bracket's ends,
    their ratio and geometric midpoint)."""

    setting: MapSetting
    runs: pd.DataFrame
    boundaries: pd.DataFrame

    @classmethod
    def from_results(cls, setting: MapSetting, results: Sequence[RunResult]) -> RegimeMap:
        summary = regimes.run_summary(results, setting.num_classes, setting.rule)
        rows = [{"boundary": f"{below}→{above}", "elr_below": low, "elr_above": high, "bracket_factor": high / low,
                 "midpoint": math.sqrt(low * high)} for below, above, low, high in regimes.grid_boundaries(summary)]
        return cls(setting, summary, pd.DataFrame(rows, columns=BOUNDARY_COLUMNS))

    def regime_of(self) -> dict[float, int]:
        """The majority regime of the seeds at each ELR."""
        return {float(e): int(r) for e, r in regimes.majority_regimes(self.runs).items()}

    def missing_boundaries(self) -> list[str]:
        """The boundaries 1→2 and 2→3 that the range does not show."""
        return [name for name in ("1→2", "2→3") if name not in set(self.boundaries["boundary"])]

    def report(self) -> str:
        """The boundaries with their brackets, one per line, and a note on those the range misses."""
        lines = [f"{row.boundary}: between ELR {row.elr_below:.3g} and {row.elr_above:.3g} (factor "
                 f"{row.bracket_factor:.3g}, midpoint {row.midpoint:.3g})" for row in self.boundaries.itertuples()]
        missing = self.missing_boundaries()
        if missing:
            low, high = self.setting.elr_range
            lines.append(f"not in ELR {low:g}..{high:g} at {self.setting.epochs} epochs: {', '.join(missing)} "
                         "(widen the range)")
        return "\n".join(lines)

    def write(self, folder: Path | str) -> list[Path]:
        """``boundaries.csv``, ``runs.csv`` and ``regime_map.png`` in ``folder``; returns their paths."""
        from .plotting.regime_map import plot_regime_map

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "boundaries.csv", folder / "runs.csv", folder / "regime_map.png"]
        self.boundaries.to_csv(written[0], index=False)
        self.runs.to_csv(written[1], index=False)
        figure = plot_regime_map(self)
        figure.savefig(written[2])
        import matplotlib.pyplot as plt

        plt.close(figure)
        return written


def map_regimes(factory: Callable | str, dataset: str = "fashion_mnist", elr_range: tuple[float, float] = (1e-3, 1.0),
                epochs: int = 25, seeds: int = 1, *, points_per_decade: int = 2, factor: float = 1.5,
                train_size: int | None = 2000, head_norm: float | None = None, batch_size: int = 128,
                rule: RegimeRule | None = None, store: RunStore | Path | str | None = None,
                executor: Executor | None = None) -> RegimeMap:
    """The regime map of the network that ``factory()`` returns (a module-level callable, or its
    ``"module:name"``), trained and read through ``store`` (default :data:`~sphere_regimes.paths.MAP_STORE_DIR`);
    see the module docstring. The factory is checked once before any training (a ``ValueError`` in one
    line: not importable, not callable, no ``nn.Module``, no scale-invariant tensor, another trainable one)."""
    path = factory if isinstance(factory, str) else factory_path(factory)
    setting = MapSetting(path, dataset, (float(elr_range[0]), float(elr_range[1])), points_per_decade, factor, epochs, seeds, train_size,
                         head_norm, batch_size, rule or RegimeRule())
    check_factory(setting)
    store = store if isinstance(store, RunStore) else RunStore(store if store is not None else paths.MAP_STORE_DIR)
    compute(setting, store, executor)
    return RegimeMap.from_results(setting, [load(c, store) for c in plan(setting, store)])


def check_factory(setting: MapSetting) -> None:
    """Build the map's network once, as a run would (a one-line ``ValueError`` if it cannot train on the sphere)."""
    import_factory(setting.factory)
    info = DATASET_INFO[setting.dataset]
    build_model(setting.base_config(), info.in_channels, info.num_classes)
