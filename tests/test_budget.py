"""The budget study of chapter 02: epochs to converge, a run read at a shorter budget, the claim's rule."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sphere_regimes import RunConfig
from sphere_regimes.chapters import budget, three_regimes
from sphere_regimes.claims import Verdict
from sphere_regimes.plans import longest_first, longest_runs
from sphere_regimes.store import RunResult, RunStatus


def _metrics(losses: dict[int, float]) -> pd.DataFrame:
    frame = pd.DataFrame({"train_loss": pd.Series(losses, dtype=float), "test_error": 0.5})
    frame.index.name = "epoch"
    return frame


def test_epochs_to_stay_below_is_the_first_epoch_after_the_last_excursion_above_the_level():
    metrics = _metrics({0: 2.3, 1: 0.5, 2: 0.05, 3: 0.2, 5: 0.04, 10: 0.01, 15: 0.03, 20: 0.02})
    assert budget.epochs_to_stay_below(metrics, 0.1) == 5  # 0.2 at epoch 3 is the last loss above 0.1
    assert budget.epochs_to_stay_below(metrics, 1.0) == 1  # the initial point is not an epoch of training
    assert budget.epochs_to_stay_below(metrics, 0.015) == math.inf  # the last loss is above the level


def test_a_run_read_at_a_shorter_budget_is_the_run_as_it_stood_then():
    config = RunConfig(elr=1e-3, epochs=10)
    run = RunResult(config, RunStatus("done", 10, metrics_sha256="x"), _metrics({e: 1 / (e + 1) for e in range(11)}))
    short = run.up_to(4)
    assert list(short.metrics.index) == [0, 1, 2, 3, 4]
    assert (short.config.epochs, short.status.epochs_done, short.status.status) == (4, 4, "done")
    assert short.config.run_id == config.run_id and short.final["train_loss"] == pytest.approx(1 / 5)
    assert run.up_to(10) is run and run.up_to(20) is run


def test_a_run_that_diverged_after_the_budget_is_done_at_the_budget():
    config = RunConfig(elr=1e-1, epochs=10)
    run = RunResult(config, RunStatus("diverged", 7, diverged_epoch=8, diverged_reason="NaN"),
                    _metrics({e: 1.0 for e in range(8)}))
    assert run.up_to(5).status.status == "done" and run.up_to(5).status.diverged_epoch is None
    assert run.up_to(9).status.status == "diverged"


def _convergence(epochs: dict[tuple[float, float], float]) -> pd.DataFrame:
    return pd.DataFrame([{"elr": elr, "seed": 0, "level": level, "epochs": value}
                         for (elr, level), value in epochs.items()])


def _labels(regimes: dict[float, int]) -> pd.DataFrame:
    return pd.DataFrame([{"elr": elr, "seed": 0, "budget": 1000, "regime": r} for elr, r in regimes.items()])


@pytest.mark.parametrize("top_epochs, verdict", [((250, 900), Verdict.HELD), ((250, 300), Verdict.PARTLY),
                                                 ((150, 300), Verdict.NOT_HELD), ((250, np.inf), Verdict.HELD)])
def test_the_claim_compares_the_top_regime1_elr_with_the_next_lower_one_at_every_level(top_epochs, verdict):
    """ELR 2e-3 converges below 1e-2 in 100 epochs and below 1e-3 in 200; the regime-2 ELR 5e-3 and the
    control 1e-4 (slower, but not the next-lower ELR) play no part."""
    below_2, below_3 = top_epochs
    convergence = _convergence({(1e-4, 1e-2): 800, (1e-4, 1e-3): np.inf, (2e-3, 1e-2): 100, (2e-3, 1e-3): 200,
                                (3e-3, 1e-2): below_2, (3e-3, 1e-3): below_3, (5e-3, 1e-2): np.inf,
                                (5e-3, 1e-3): np.inf})
    claim = budget.slower_near_boundary(convergence, _labels({1e-4: 1, 2e-3: 1, 3e-3: 1, 5e-3: 2}))
    assert claim.verdict is verdict
    assert claim.ours.startswith("ELR 3e-3 over 2e-3: ×") and len(claim.ours) <= 90
    assert "below 0.01: 100 → " in claim.detail


def test_the_claim_is_not_tested_without_two_converging_elrs():
    convergence = _convergence({(2e-3, 1e-2): 100, (5e-3, 1e-2): np.inf})
    claim = budget.slower_near_boundary(convergence, _labels({2e-3: 1, 5e-3: 2}))
    assert claim.verdict is Verdict.NOT_TESTED
    assert budget.slower_near_boundary(convergence, _labels({}).iloc[0:0]).verdict is Verdict.NOT_TESTED


def test_the_boundary_at_each_budget_is_bracketed_by_the_study_s_elrs():
    table = pd.DataFrame([{"elr": e, "seed": 0, "budget": b, "regime": r} for b, regimes in
                          {150: {2e-3: 1, 3e-3: 2, 5e-3: 2}, 1000: {2e-3: 1, 3e-3: 1, 5e-3: 2}}.items()
                          for e, r in regimes.items()])
    boundary = budget.boundary_by_budget(table).set_index("budget")
    assert (boundary.loc[150, "below"], boundary.loc[150, "above"]) == (2e-3, 3e-3)
    assert (boundary.loc[1000, "below"], boundary.loc[1000, "above"]) == (3e-3, 5e-3)
    assert boundary.loc[1000, "regimes"] == "1 1 2"


def test_the_boundary_sentence_gives_each_bracket_once_with_the_budgets_that_share_it():
    boundary = pd.DataFrame({"budget": [100, 150, 300, 1000], "below": [2e-3, 2e-3, 3e-3, 3e-3],
                             "above": [3e-3, 3e-3, math.nan, math.nan], "regimes": ["1 2", "1 2", "1 1", "1 1"]})
    assert three_regimes._budget_boundary_sentence(boundary) == (
        "after 100 and 150 epochs, between 2e-3 and 3e-3; "
        "after 300 and 1000 epochs, every ELR of the study converges (up to 3e-3)")
    assert three_regimes._budget_boundary_sentence(boundary.iloc[:1]).startswith("after 100 epochs, between")


def test_the_resolution_sentence_says_when_the_study_is_coarser_than_the_follow_up():
    """The claim can only see growth between the study's own ELRs: the sentence says so exactly when its
    bracket is wider than the follow-up's factor 1.3, and names a narrower grid bracket inside it."""
    coarse = budget.resolution_sentence((3e-3, 5e-3), 1000, (4e-3, 5e-3), 150, [3e-3, 5e-3])
    assert "a factor 1.7" in coarse and "not resolved" in coarse
    assert "150-epoch bracket, 4e-3 to 5e-3, lies inside it, and the study does not train 4e-3 on" in coarse
    fine = budget.resolution_sentence((4e-3, 5e-3), 1000, (4e-3, 5e-3), 150, [4e-3, 5e-3])
    assert "a factor 1.2" in fine and "not resolved" not in fine and "inside" not in fine
    assert "do not bracket" in budget.resolution_sentence((3e-3, math.nan), 1000, None, 150, [3e-3])


def test_a_run_planned_with_several_epoch_counts_is_trained_to_the_longest():
    """The budget study's run is a grid run read for more epochs; the fine-tuning chapter may plan the same
    run again for the grid's epochs after it: the sweep must still train it to the longest."""
    short, long, other = RunConfig(elr=1e-3, epochs=150), RunConfig(elr=1e-3, epochs=1000), RunConfig(elr=1e-2)
    assert longest_runs([short, long, short, other]) == {short.run_id: long, other.run_id: other}


def test_a_pass_starts_its_longest_runs_first_and_keeps_plan_order_among_equals():
    """Longest processing time first: a 1300-epoch run started last would keep one worker busy for hours
    after the others have finished the pass."""
    grid = [RunConfig(elr=elr, epochs=150) for elr in (1e-3, 2e-3, 5e-3)]
    long, longer = RunConfig(elr=1e-2, epochs=450), RunConfig(elr=2e-2, epochs=1300)
    assert longest_first([*grid[:2], long, grid[2], longer]) == [longer, long, *grid]
