"""The run plans of the book's chapters: which :class:`RunConfig` each chapter reads.

Each plan is a function of the chapter's notebook parameters (as a preset sets them) and is
registered under the notebook's name, so that ``make book`` (``sphere-regimes sweep PRESET``)
trains exactly what the chapters will read. Notebooks call
:func:`sphere_regimes.plans.load_results` with their own parameters and never train.
"""

from __future__ import annotations

import math
from typing import Any

from . import regimes
from .config import RunConfig
from .data import DATASET_INFO
from .engine import load
from .plans import register
from .store import RunStore

THREE_REGIMES = "02_three_regimes"


def base_config(params: dict[str, Any], **changes: Any) -> RunConfig:
    """The chapter's common setting (dataset, model, data size, metric schedule), with ``changes``.

    ``train_size = 0`` in a notebook's parameters means the whole training set.
    """
    values: dict[str, Any] = dict(
        dataset=params["dataset"], train_size=params["train_size"] or None, model="convnet_si",
        width=params["width"], batch_size=params["batch_size"], epochs=params["epochs"],
        dense_metric_epochs=params["dense_metric_epochs"], metric_every=params["metric_every"],
        sharpness_every=params["sharpness_every"])
    values.update(changes)
    return RunConfig(**values)


@register(THREE_REGIMES)
def three_regimes_plan(params: dict[str, Any]) -> list[RunConfig]:
    """Figure 1 grid (every ELR x every init seed on the sphere, total constraint, shared last layer),
    then ``bisection_steps`` rounds of boundary search (:func:`bisection_elrs`)."""
    grid = [base_config(params, elr=float(elr), seed=int(seed)) for seed in params["seeds"] for elr in params["elrs"]]
    return grid + [base_config(params, elr=elr, seed=int(seed))
                   for elr in bisection_elrs(params) for seed in params["seeds"]]


def bisection_elrs(params: dict[str, Any]) -> list[float]:
    """ELRs that bisect (geometrically) the brackets where the majority regime changes.

    Round k+1 is known once every run of rounds 0..k is in the store: the grid is round 0; each
    round adds ``sqrt(low * high)`` for every bracket ``(low, high)`` between neighbouring ELRs of
    different regimes, so after k rounds a grid step of 2 is narrowed to ``2^(1/2^k)``. Until the
    store holds a round, the later rounds are not planned (``compute`` plans again after each pass).
    """
    from .plans import preset_store  # the plans module imports this one

    store = preset_store(params["preset"])
    elrs = sorted(float(e) for e in params["elrs"])
    added: list[float] = []
    for _ in range(params["bisection_steps"]):
        summary = _finished_summary(params, elrs, store)
        if summary is None:
            break
        midpoints = [math.sqrt(low * high) for _, _, low, high in regimes.grid_boundaries(summary)]
        new = [m for m in midpoints if all(not math.isclose(m, e, rel_tol=1e-9) for e in elrs)]
        if not new:
            break
        elrs = sorted(elrs + new)
        added += new
    return added


def _finished_summary(params: dict[str, Any], elrs: list[float], store: RunStore):
    """:func:`regimes.run_summary` of every seed at ``elrs``, or ``None`` while any run is missing."""
    results = [load(base_config(params, elr=elr, seed=int(seed)), store) for elr in elrs for seed in params["seeds"]]
    if any(r is None for r in results):
        return None
    return regimes.run_summary(results, DATASET_INFO[params["dataset"]].num_classes)
