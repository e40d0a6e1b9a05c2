"""The regime rule on metric tables whose regime is known by construction, and the sweep summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sphere_regimes.regimes import (
    RegimeRule, classify, decay_exponent, grid_boundaries, representative_elrs, seed_band,
)


def _table(loss, error, epochs=None) -> pd.DataFrame:
    epochs = np.arange(1, len(loss) + 1) if epochs is None else np.asarray(epochs)
    rows = pd.DataFrame({"train_loss": loss, "train_error": error}, index=pd.Index(epochs, name="epoch"))
    start = pd.DataFrame({"train_loss": [12.0], "train_error": [0.9]}, index=pd.Index([0], name="epoch"))
    return pd.concat([start, rows])


def test_power_law_decay_is_regime_1_and_its_exponent_is_measured():
    epochs = np.arange(1, 151)
    table = _table(0.5 * epochs ** -0.8, np.full(150, 0.05))
    assert decay_exponent(table) == pytest.approx(0.8)
    assert classify(table) == 1


def test_slow_decay_is_regime_2_at_this_budget():
    epochs = np.arange(1, 151)
    table = _table(0.5 * epochs ** -0.2, np.full(150, 0.1))
    assert classify(table) == 2
    assert classify(table, rule=RegimeRule(min_decay_exponent=0.1)) == 1


def test_noisy_stationary_loss_is_regime_2():
    rng = np.random.default_rng(0)
    table = _table(0.3 * np.exp(rng.normal(0, 0.3, 150)), np.full(150, 0.1))
    assert abs(decay_exponent(table)) < 0.5
    assert classify(table) == 2


def test_loss_below_the_converged_level_is_regime_1_even_when_flat():
    assert classify(_table(np.full(50, 1e-4), np.zeros(50))) == 1


def test_chance_error_is_regime_3_for_the_number_of_classes():
    table = _table(np.full(50, 7.0), np.full(50, 0.85))
    assert classify(table, num_classes=10) == 3
    assert classify(table, num_classes=100) != 3  # chance is 0.99 there


def test_scheduled_metrics_use_only_evaluated_epochs_of_the_second_half():
    epochs = [*range(1, 21), *range(25, 151, 5)]
    loss = 0.5 * np.asarray(epochs, dtype=float) ** -1.0
    table = _table(loss, np.full(len(epochs), 0.05), epochs)
    table.loc[22] = [np.nan, np.nan]  # a cheap-metrics-only epoch
    assert decay_exponent(table.sort_index()) == pytest.approx(1.0)


def test_too_short_a_run_gets_a_clear_error():
    with pytest.raises(ValueError, match="at least 3 evaluated epochs"):
        classify(_table([0.5, 0.4], [0.1, 0.1]))


def test_grid_boundaries_follow_the_majority_of_seeds():
    summary = pd.DataFrame({
        "elr": [1e-3] * 3 + [2e-3] * 3 + [5e-3] * 3 + [1e-2] * 3,
        "regime": [1, 1, 1, 1, 2, 1, 2, 2, 2, 3, 3, 2],
    })
    assert grid_boundaries(summary) == [(1, 2, 2e-3, 5e-3), (2, 3, 5e-3, 1e-2)]


def test_seed_band_keeps_epochs_every_seed_has():
    class Run:
        def __init__(self, seed, values):
            self.config = type("C", (), {"seed": seed})()
            self.metrics = pd.DataFrame({"train_loss": values})

    band = seed_band([Run(0, [1.0, np.nan, 3.0]), Run(1, [3.0, 2.0, 5.0])], "train_loss")
    assert list(band.index) == [0, 2]
    assert band.loc[2].tolist() == [4.0, 3.0, 5.0]


def test_representative_elrs_are_the_median_of_each_regime():
    regime_of = {1e-4: 1, 2e-4: 1, 5e-4: 1, 1e-3: 2, 2e-3: 2, 1e-2: 3}
    assert representative_elrs(regime_of) == [2e-4, 2e-3, 1e-2]
