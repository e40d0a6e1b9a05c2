"""Chapter 90, the tutorial: ``SphereSGD`` on your own model. Its first sections train a few hundred steps
in the notebook itself (the one chapter that does: it teaches the loop); its last section reads the regime
map of the tutorial's network (:func:`sphere_regimes.examples.small_convnet`) from the store, whose runs
the preset plans (:func:`plan`) like every chapter's."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import presets, regime_map
from ..config import RunConfig
from ..regime_map import MapSetting, RegimeMap
from ..store import RunStore
from ..table import Table, scientific
from .base import Findings, core_hours, load_results
from .base import Params as _Params

NOTEBOOK = "90_sphere_sgd_on_your_model"
MAP_FACTORY = "sphere_regimes.examples:small_convnet"
"""The network the tutorial maps: the one its first section builds, as an importable factory."""


@dataclass(frozen=True)
class Params(_Params):
    notebook = NOTEBOOK
    elr: float = 0.001  # effective learning rate on the sphere, lr / ||w||^2
    steps: int = 300  # optimizer steps
    batch_size: int = 128  # images per step
    train_size: int = 4096  # first N Fashion-MNIST training images
    seed: int = 0  # init and batch-order seed
    map_elr_range: tuple[float, float] = (1e-3, 1.0)  # regime map: first and last ELR of its log grid
    map_points_per_decade: int = 2  # regime map: grid ELRs per factor 10
    map_factor: float = 1.5  # regime map: bisect each boundary until its bracket's high / low is at most this
    map_epochs: int = 25  # regime map: epochs per run (the regimes are labelled at this budget)
    map_seeds: int = 1  # regime map: init seeds per ELR
    map_train_size: int = 2000  # regime map: first N Fashion-MNIST training images

    def __post_init__(self) -> None:
        self.map_setting()

    def map_setting(self) -> MapSetting:
        """The regime map of the tutorial's network under these parameters."""
        return MapSetting(MAP_FACTORY, "fashion_mnist", self.map_elr_range, self.map_points_per_decade,
                          self.map_factor, self.map_epochs, self.map_seeds, self.map_train_size)


def plan(params: Params, store: RunStore | None = None) -> list[RunConfig]:
    """The regime map's runs: its grid, then the bisection rounds the store allows (:func:`regime_map.plan`)."""
    store = store if store is not None else presets.preset_store(params.preset)
    return regime_map.plan(params.map_setting(), store)


HEADINGS = {"boundary": "boundary", "elr_below": "last ELR below", "elr_above": "first ELR above",
            "bracket_factor": "bracket (above / below)", "midpoint": "geometric midpoint", "elr": "ELR",
            "regime": "regime", "train_loss": "final train loss", "train_error": "final train error",
            "late_angle_deg": "late angle per epoch (°)", "test_error": "final test error"}
"""The headings (with units) of the tutorial's map tables."""


@dataclass
class TutorialFindings(Findings):
    regime_map: RegimeMap = None  # the map of the tutorial's network (runs and boundaries)
    runs: list = field(default_factory=list)  # its finished runs


def analyse(params: Params, store: RunStore | None = None) -> TutorialFindings:
    """The regime map of the tutorial's network from the store (it trains nothing): its boundaries with their
    brackets, the majority regime at each ELR, and the settings the prose cites."""
    store = store if store is not None else presets.preset_store(params.preset)
    setting = params.map_setting()
    results = load_results(plan(params, store), store, NOTEBOOK, params.preset)
    found = RegimeMap.from_results(setting, results)
    findings = TutorialFindings(params=params, regime_map=found, runs=results)
    regime_of = found.regime_of()
    findings.tables["map_boundaries"] = Table(found.boundaries, {"elr_below": scientific, "elr_above": scientific,
                                                                 "bracket_factor": ".3g", "midpoint": scientific},
                                              show_index=False, headings=HEADINGS)
    findings.tables["map_runs"] = Table(found.runs[["elr", "seed", "regime", "train_loss", "train_error",
                                                    "late_angle_deg", "test_error"]],
                                        {"elr": scientific, "train_loss": ".3g", "train_error": ".3f",
                                         "late_angle_deg": ".2g", "test_error": ".3f"}, show_index=False,
                                        headings=HEADINGS)
    low, high = setting.elr_range
    findings.values.update({
        "map_factory_md": f"`{MAP_FACTORY}`", "map_n_runs": len(results), "map_n_elrs": len(regime_of),
        "map_n_grid": len(setting.grid()), "map_epochs": setting.epochs, "map_train_size": setting.train_size,
        "map_seeds": setting.seeds, "map_factor": setting.factor, "map_low": low, "map_high": high,
        "map_core_minutes": 60 * core_hours(results, store),
        "map_regimes_md": ", ".join(str(r) for r in sorted(set(regime_of.values()))),
        "map_boundaries_md": "; ".join(f"{row.boundary} between ELR {scientific(row.elr_below)} and "
                                       f"{scientific(row.elr_above)}"
                                       for row in found.boundaries.itertuples()) or "no regime change in this range",
        "map_missing_md": ", ".join(found.missing_boundaries()) or "none",
    })
    findings.key_numbers = [f"ELR {elr:.3g}: regime {regime}" for elr, regime in regime_of.items()]
    findings.key_numbers += found.report().splitlines()
    return findings
