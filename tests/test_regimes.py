"""The regime rule on metric tables whose regime is known by construction, and the sweep summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sphere_regimes import RunConfig
from sphere_regimes.chapters.three_regimes import sensitivity_by_elr
from sphere_regimes.regimes import (
    RULE_RANGES, RegimeRule, classify, decay_exponent, fine_tuning_summary, grid_boundaries, label_ranges,
    late_angle_deg, regime_at, regime_map, representative_elrs, rule_grid, rule_name, rule_sensitivity,
    rule_variations, seed_band, tail_mean,
)
from sphere_regimes.store import RunResult, RunStatus


def _table(loss, error, angle, epochs=None) -> pd.DataFrame:
    """A metric table with full metrics at ``epochs`` (default: every epoch) and the angle every epoch."""
    epochs = np.arange(1, len(loss) + 1) if epochs is None else np.asarray(epochs)
    rows = pd.DataFrame({"train_loss": loss, "train_error": error}, index=pd.Index(epochs, name="epoch"))
    start = pd.DataFrame({"train_loss": [12.0], "train_error": [0.9]}, index=pd.Index([0], name="epoch"))
    table = pd.concat([start, rows]).reindex(pd.RangeIndex(0, epochs[-1] + 1, name="epoch"))
    table["angle_epoch_deg"] = np.r_[np.nan, np.broadcast_to(angle, epochs[-1])]
    return table


def test_a_run_that_stops_moving_is_regime_1():
    epochs = np.arange(1, 151)
    table = _table(0.5 * epochs ** -0.8, np.full(150, 0.05), 20 * epochs ** -0.8)
    assert late_angle_deg(table) < 1
    assert classify(table) == 1


def test_a_run_that_keeps_turning_at_a_noisy_loss_is_regime_2_even_when_the_loss_dips():
    rng = np.random.default_rng(0)
    loss = 0.3 * np.exp(rng.normal(0, 0.6, 150))
    loss[-20:] *= 0.3  # a late dip, as in the chaotic equilibrium: not a convergence
    table = _table(loss, np.full(150, 0.1), 15 + rng.normal(0, 2, 150))
    assert decay_exponent(table) > 0.5  # a trend test on the loss would call it converging
    assert classify(table) == 2
    assert classify(table, rule=RegimeRule(moving_angle_deg=30)) == 1


def test_loss_below_the_converged_level_is_regime_1_even_while_moving():
    assert classify(_table(np.full(50, 1e-4), np.zeros(50), 10.0)) == 1


def test_chance_error_is_regime_3_for_the_number_of_classes():
    table = _table(np.full(50, 7.0), np.full(50, 0.85), 90.0)
    assert classify(table, num_classes=10) == 3
    assert classify(table, num_classes=100) == 2  # chance is 0.99 there; it still moves


def test_scheduled_metrics_use_only_evaluated_epochs_and_every_angle():
    epochs = [*range(1, 21), *range(25, 151, 5)]
    loss = 0.5 * np.asarray(epochs, dtype=float) ** -1.0
    table = _table(loss, np.full(len(epochs), 0.05), 0.5, epochs)
    assert table["train_loss"].isna().sum() == 150 - len(epochs)
    assert decay_exponent(table) == pytest.approx(1.0)
    assert late_angle_deg(table) == 0.5


def test_the_angle_window_and_statistic_are_parameters_of_the_rule():
    """Still at 0.5° per epoch except for a spike of 90° in epoch 100 of 120: the median of the last quarter
    (epochs 90-120) ignores it, its mean does not; the last half's median reads the same 0.5°."""
    angle = np.full(120, 0.5)
    angle[99] = 90.0
    table = _table(np.full(120, 0.05), np.full(120, 0.02), angle)
    assert classify(table) == 1 and late_angle_deg(table) == 0.5
    assert late_angle_deg(table, RegimeRule(angle_statistic="mean")) == pytest.approx((30 * 0.5 + 90) / 31)
    assert classify(table, rule=RegimeRule(angle_statistic="mean")) == 2
    assert classify(table, rule=RegimeRule(angle_window=0.5)) == 1
    with pytest.raises(ValueError, match="unknown angle_statistic 'mode'"):
        RegimeRule(angle_statistic="mode")
    with pytest.raises(ValueError, match="angle_window must be a fraction"):
        RegimeRule(angle_window=0)


def _labelled(elr: float, seed: int, table: pd.DataFrame) -> RunResult:
    return RunResult(RunConfig(elr=elr, seed=seed), RunStatus("done", int(table.index[-1])), table)


def test_the_sensitivity_shows_each_variation_and_marks_a_label_that_changes_within_the_range():
    """Three ELRs: one still (0.2°), one at 2.5° (regime 1 at the book's 3°, 2 at 1° or 2°), one at an error
    of 0.805 (regime 3 with the margin 0.1, 2 with 0.05 or 0.075)."""
    runs = [_labelled(1e-3, 0, _table(np.full(60, 0.05), np.full(60, 0.02), 0.2)),
            _labelled(3e-3, 0, _table(np.full(60, 0.2), np.full(60, 0.1), 2.5)),
            _labelled(3e-2, 0, _table(np.full(60, 2.0), np.full(60, 0.805), 80.0))]
    rules = rule_variations()
    assert rules[0] == RegimeRule() and len(rules) == 1 + sum(len(v) - 1 for v in RULE_RANGES.values())
    assert len(rule_grid()) == np.prod([len(v) for v in RULE_RANGES.values()])
    assert rule_name(RegimeRule()) == "the book's rule" and rule_name(RegimeRule(moving_angle_deg=1.0)) == "angle ≥ 1°"
    table = rule_sensitivity(runs).set_index("rule")
    assert table.loc["the book's rule", "changed"] == 0 and table.loc["the book's rule", "3e-3"] == "1"
    assert table.loc["angle ≥ 2°", "3e-3"] == "2" and table.loc["angle ≥ 2°", "changed"] == 1
    assert table.loc["chance margin 0.05", "3e-2"] == "2"
    assert table.loc["the book's rule", "boundaries"] == "1→3 (3e-3, 3e-2)"
    by_elr = sensitivity_by_elr(rule_sensitivity(runs))  # the chapter's table: one row per ELR, a column per rule
    assert list(by_elr.index) == ["1e-3", "3e-3", "3e-2", "labels changed", "boundaries"]
    assert by_elr.columns[0] == "the book's rule" and len(by_elr.columns) == len(rules)
    assert (by_elr.loc["3e-3", "angle ≥ 2°"], by_elr.loc["labels changed", "angle ≥ 2°"]) == ("2", "1")
    per_run, per_elr = label_ranges(runs)
    assert list(per_run["labels"]) == ["1", "1/2", "3/2"] and list(per_run["unstable"]) == [False, True, True]
    assert list(per_elr) == ["1", "1/2", "3/2"]


def test_too_short_a_run_gets_a_clear_error():
    with pytest.raises(ValueError, match="at least 3 evaluated epochs"):
        classify(_table([0.5, 0.4], [0.1, 0.1], 1.0))


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


MAP = pd.DataFrame({"elr": [1e-3] * 2 + [2e-3] * 2 + [5e-3] * 2 + [1e-2] * 2, "regime": [1, 1, 2, 1, 2, 2, 3, 3]})


def test_regime_map_cuts_at_geometric_midpoints():
    boundaries, spans = regime_map(MAP)  # majority with ties to the higher regime: 1, 2, 2, 3
    assert boundaries == pytest.approx([np.sqrt(1e-3 * 2e-3), np.sqrt(5e-3 * 1e-2)])
    assert spans == [1, 2, 3]
    assert regime_at(MAP, 1.4e-3) == 1 and regime_at(MAP, 1.42e-3) == 2  # sqrt(2) x 1e-3 = 1.414e-3
    assert regime_at(MAP, 1e-6) == 1 and regime_at(MAP, 1.0) == 3  # beyond the grid: its ends
    with pytest.raises(ValueError, match="ELR must be > 0"):
        regime_at(MAP, 0.0)


def test_tail_mean_takes_the_evaluated_epochs_of_the_last_window():
    epochs = [0, *range(1, 21), *range(25, 151, 5)]
    table = pd.DataFrame({"test_error": np.asarray(epochs, dtype=float)}, index=pd.Index(epochs, name="epoch"))
    table = table.reindex(pd.RangeIndex(151, name="epoch"))
    assert tail_mean(table, "test_error", 10) == 147.5  # epochs 145 and 150 are evaluated in (140, 150]
    assert tail_mean(table, "test_error", 1) == 150.0


def _finished(config: RunConfig, test_error: list[float]) -> RunResult:
    n = len(test_error)
    table = pd.DataFrame({"test_error": test_error, "train_loss": np.linspace(1.0, 0.5, n),
                          "train_error": np.full(n, 0.2), "angle_epoch_deg": np.r_[np.nan, np.full(n - 1, 0.1)]},
                         index=pd.RangeIndex(n, name="epoch"))
    return RunResult(config, RunStatus("done", n - 1), table)


def test_fine_tuning_summary_pairs_each_run_with_its_pre_training():
    pre = _finished(RunConfig(elr=1e-2, epochs=5), [0.9, 0.5, 0.4, 0.3, 0.4, 0.3])
    tuned = _finished(RunConfig(elr=1e-4, epochs=4, init_from=pre.config.run_id), [0.35, 0.2, 0.15, 0.12, 0.1])
    table = fine_tuning_summary([tuned, pre], average_epochs=2)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["pretrain_elr"], row["finetune_elr"], row["pretrain_regime"]) == (1e-2, 1e-4, 1)
    assert row["pretrained_error"] == pytest.approx(0.35) and row["finetuned_error"] == pytest.approx(0.11)
    with pytest.raises(ValueError, match="pre-training run .* is not among the results"):
        fine_tuning_summary([tuned], average_epochs=2)


def test_at_equal_loss_interpolates_at_the_first_crossing_in_log_loss():
    from types import SimpleNamespace

    from sphere_regimes import regimes

    metrics = pd.DataFrame({"train_loss": [1.0, 0.1, 0.5, 0.01], "effective_grad_norm": [10.0, 20.0, 99.0, 40.0]},
                           index=pd.Index([0, 1, 2, 3], name="epoch"))
    result = SimpleNamespace(config=SimpleNamespace(elr=1e-3, seed=0), metrics=metrics)
    row = regimes.at_equal_loss([result], "effective_grad_norm", [np.sqrt(0.1), 0.1, 0.05, 1e-3]).iloc[0]
    assert row[np.sqrt(0.1)] == pytest.approx(15.0)  # halfway between epochs 0 and 1 in log loss
    assert row[0.1] == pytest.approx(20.0)  # reached exactly at epoch 1
    assert row[0.05] == pytest.approx(99.0 + (np.log(0.05) - np.log(0.5)) / (np.log(0.01) - np.log(0.5)) * (40 - 99))
    assert np.isnan(row[1e-3])  # never reached
