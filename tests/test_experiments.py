"""Run plans that depend on the store: the boundary search bisects where the regime changes."""

from __future__ import annotations

import math

import pytest

from sphere_regimes import experiments, plans


@pytest.mark.parametrize("tiny_preset", [1], indirect=True)  # one bisection round
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


def test_individual_constraint_runs_pair_with_grid_runs_of_the_first_seed():
    params = {"dataset": "fashion_mnist", "train_size": 256, "width": 2, "batch_size": 128, "epochs": 3,
              "dense_metric_epochs": 3, "metric_every": 1, "sharpness_every": 0, "seeds": [4, 5],
              "elrs": [0.01, 1.0], "individual_elrs": [1.0]}
    (run,) = experiments.individual_constraint_runs(params)
    twin = experiments.base_config(params, elr=1.0, seed=4)
    assert (run.constraint, run.grouping, run.seed) == ("individual", "layer", 4)
    assert run.replace(constraint="total") == twin  # nothing else differs from its total-constraint twin
    with pytest.raises(ValueError, match="not in the grid"):
        experiments.individual_constraint_runs({**params, "individual_elrs": [0.5]})
