"""Run plans that depend on the store: the boundary search bisects where the regime changes."""

from __future__ import annotations

import math

import pytest

from sphere_regimes import plans


@pytest.mark.parametrize("tiny_preset", [{"bisection_steps": 1}], indirect=True)  # one bisection round
def test_bisection_is_planned_once_the_grid_is_stored_and_compute_runs_it(tiny_preset):
    def planned_elrs() -> list[float]:
        return [c.elr for c in plans.planned_runs(tiny_preset)["02_three_regimes"]]

    assert planned_elrs() == [0.01, 1.0]  # the next round needs the grid's regimes
    assert plans.compute(tiny_preset) == []
    elrs = planned_elrs()
    assert elrs[:2] == [0.01, 1.0] and len(elrs) == 3
    assert math.isclose(elrs[2], 0.1)  # sqrt(0.01 * 1.0): ELR 1 is a random walk at once, 0.01 is not
    store = plans.preset_store(tiny_preset)
    assert len(list(store.root.iterdir())) == 3  # compute planned again and ran the bisection round
