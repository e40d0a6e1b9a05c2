"""Chapter 02's budget study, "How long is long enough?" (issue 17, point 3): runs around the 1→2 boundary
trained for the paper's 1000 epochs and read at shorter budgets.

The paper trains for 1000 epochs; the authors' follow-up (NeurIPS 2024) found that the epochs a run needs to
converge blow up near the 1→2 boundary (ResNet18SI on CIFAR-10: 81–90 epochs at ELR 3e-4, 2621 at 3.9e-4).
So a run near the boundary may be labelled regime 2 after a short budget and regime 1 after a long one. The
study's runs are the grid's own runs extended (the epochs are not part of a run's id), so the grid keeps
reading their first epochs; here each run is read as it stood after each budget (:meth:`RunResult.up_to`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import regimes
from ..claims import Claim, ClaimSpec, count_margin, count_verdict
from ..store import RunResult
from ..table import scientific

SLOWER_NEAR_BOUNDARY = 2.0
"""How much slower ("grow sharply") the top regime-1 ELR of the study must converge than the next-lower one:
our reading of the follow-up's words, fixed before any long run of this book existed."""


def epochs_to_stay_below(metrics: pd.DataFrame, level: float) -> float:
    """The first evaluated epoch from which the train loss stays at or below ``level`` at every later
    evaluated epoch (the follow-up's "epochs to converge"); ``inf`` when the last evaluated loss is above it.
    Its resolution is the metric schedule's (every epoch early on, then every ``metric_every``)."""
    loss = metrics["train_loss"].dropna()
    loss = loss[loss.index > 0]
    above = loss[loss > level]
    if above.empty:
        return float(loss.index[0])
    after = loss[loss.index > above.index[-1]]
    return float(after.index[0]) if not after.empty else math.inf


def convergence_epochs(results: Sequence[RunResult], levels: Sequence[float]) -> pd.DataFrame:
    """One row per run and loss level: ``elr``, ``seed``, ``level`` and :func:`epochs_to_stay_below`."""
    rows = [{"elr": r.config.elr, "seed": r.config.seed, "level": level,
             "epochs": epochs_to_stay_below(r.metrics, level)} for r in results for level in levels]
    return pd.DataFrame(rows, columns=["elr", "seed", "level", "epochs"]).sort_values(["elr", "seed", "level"],
                                                                                        ignore_index=True)


def at_budgets(results: Sequence[RunResult], budgets: Sequence[int], num_classes: int,
               late_epochs: int) -> pd.DataFrame:
    """One row per run and budget: the run read after ``budget`` epochs (:meth:`RunResult.up_to`) with its
    regime label (the book's rule), best test error (best evaluated epoch), late test error (mean over the
    last ``late_epochs`` epochs) and final train loss, each run's rows in budget order. Budgets beyond a run's
    epochs are skipped."""
    rows = []
    for result in results:
        for budget in budgets:
            if budget > result.status.epochs_done and result.status.status != "diverged":
                continue
            run = result.up_to(budget)
            rows.append({"elr": result.config.elr, "seed": result.config.seed, "budget": budget,
                         "regime": regimes.run_regime(run, num_classes),
                         "best_test_error": float(run.metrics["test_error"].min()),
                         "late_test_error": regimes.tail_mean(run.metrics, "test_error", late_epochs),
                         "train_loss": float(run.final["train_loss"])})
    return pd.DataFrame(rows, columns=["elr", "seed", "budget", "regime", "best_test_error", "late_test_error",
                                       "train_loss"]).sort_values(["elr", "seed", "budget"], ignore_index=True)


def boundary_by_budget(table: pd.DataFrame) -> pd.DataFrame:
    """Where the 1→2 boundary lies among the study's ELRs at each budget of :func:`at_budgets`: the highest
    ELR whose majority regime is 1 (``below``) and the next ELR of the study above it (``above``, NaN when
    every ELR converges)."""
    rows = []
    for budget, group in table.groupby("budget"):
        majority = regimes.majority_regimes(group)
        converging = majority[majority == 1]
        below = float(converging.index.max()) if len(converging) else math.nan
        higher = majority[majority.index > below] if len(converging) else majority
        rows.append({"budget": int(budget), "below": below,
                     "above": float(higher.index.min()) if len(higher) else math.nan,
                     "regimes": " ".join(str(majority[e]) for e in sorted(majority.index))})
    return pd.DataFrame(rows, columns=["budget", "below", "above", "regimes"])


FOLLOW_UP_ELRS = (3e-4, 3.9e-4)
"""The follow-up's neighbouring ELRs between which the epochs to converge grew from 81–90 to 2621 (ResNet18SI,
CIFAR-10): the resolution at which it saw the growth, a factor 1.3."""


def resolution_sentence(bracket: tuple[float, float], budget_epochs: int,
                        grid_bracket: tuple[float, float] | None, grid_epochs: int, studied: Sequence[float]) -> str:
    """What the study's ELRs can resolve, in words: the width of its 1→2 ``bracket`` after ``budget_epochs``
    against the follow-up's factor (:data:`FOLLOW_UP_ELRS`), and the grid's bracket after ``grid_epochs`` where
    it is narrower (its lower ELR named when the study did not train it on)."""
    below, above = bracket
    if math.isnan(below) or math.isnan(above):
        return (f"After {budget_epochs} epochs the study's ELRs do not bracket the 1→2 boundary, so it cannot tell "
                "where near the boundary the epochs to converge grow.")
    follow_up = FOLLOW_UP_ELRS[1] / FOLLOW_UP_ELRS[0]
    sentence = (f"After {budget_epochs} epochs the study's bracket, {scientific(below)} to {scientific(above)}, spans a "
                f"factor {above / below:.2g}; the follow-up saw the growth between ELRs a factor {follow_up:.2g} apart "
                f"({scientific(FOLLOW_UP_ELRS[0])} and {scientific(FOLLOW_UP_ELRS[1])}).")
    if grid_bracket and below < grid_bracket[0] and grid_bracket[1] <= above:
        untrained = "" if grid_bracket[0] in studied else f", and the study does not train {scientific(grid_bracket[0])} on"
        sentence += (f" The grid's {grid_epochs}-epoch bracket, {scientific(grid_bracket[0])} to "
                     f"{scientific(grid_bracket[1])}, lies inside it{untrained}.")
    if above / below > follow_up:
        sentence += (f" So the study sees growth only between its own ELRs: a sharp growth between {scientific(below)} "
                     f"and {scientific(above)} is not resolved by it.")
    return sentence


SPEC = ClaimSpec(
    "budget.slower_near_boundary", "02_three_regimes",
    "The epochs a run needs to converge grow sharply near the 1→2 boundary",
    "follow-up (NeurIPS 2024), long ResNet18SI runs", (f"81–90 epochs at ELR {scientific(FOLLOW_UP_ELRS[0])}, 2621 at {scientific(FOLLOW_UP_ELRS[1])} "
     "(ResNet18SI, CIFAR-10)"),
    "epochs until the train loss stays below each level (mean over seeds) at the top regime-1 ELR of the budget "
    "study, over those of the next-lower regime-1 ELR, at the longest budget",
    f"held if that ratio is at least {SLOWER_NEAR_BOUNDARY:g} at every loss level; partly at some; not held at "
    "none; not tested with fewer than two regime-1 ELRs in the study",
    reading=f"'grow sharply' read as at least a factor {SLOWER_NEAR_BOUNDARY:g} between neighbouring ELRs of the "
            "study, fixed before any long run of this book existed",
    uses_regime_rule=True, section="sec-budget")


def slower_near_boundary(convergence: pd.DataFrame, labels: pd.DataFrame) -> Claim:
    """:data:`SPEC` from :func:`convergence_epochs` and the :func:`at_budgets` rows of the longest budget."""
    if labels.empty:
        return SPEC.untested("this preset trains no budget study (budget_elrs is empty)")
    majority = regimes.majority_regimes(labels)
    converging = sorted(majority[majority == 1].index)
    if len(converging) < 2:
        return SPEC.untested(f"fewer than two regime-1 ELRs in the study after {int(labels['budget'].max())} epochs")
    lower, top = converging[-2], converging[-1]
    means = convergence.groupby(["level", "elr"])["epochs"].mean()
    levels = sorted(convergence["level"].unique(), reverse=True)
    ratios = {level: means[(level, top)] / means[(level, lower)] for level in levels}
    passed = sum(ratio >= SLOWER_NEAR_BOUNDARY for ratio in ratios.values())
    ours = (f"ELR {scientific(top)} over {scientific(lower)}: " + ", ".join(f"×{ratio:.2g}" for ratio in ratios.values())
            + " below " + ", ".join(f"{level:g}" for level in levels))
    detail = "; ".join(f"below {level:g}: {means[(level, lower)]:g} → {means[(level, top)]:g} epochs" for level in levels)
    verdict = count_verdict(passed, len(levels))
    reason = f"{passed} of {len(levels)} loss levels at least ×{SLOWER_NEAR_BOUNDARY:g} slower at the top regime-1 ELR"
    return SPEC.measured(ours, float(np.nanmin(list(ratios.values()))), verdict, count_margin(passed, len(levels)),
                         reason, detail)
