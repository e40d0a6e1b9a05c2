"""Which of the three regimes (paper §4) a finished run on the sphere is in.

1. **convergence**: the train loss keeps falling towards zero;
2. **chaotic equilibrium**: the train loss settles at a non-zero level and stays there;
3. **divergence**: the train loss stays near its initial level and the net predicts at chance.

The label depends on the epoch budget: near the 1/2 boundary a run may need very many epochs
to converge (paper §4; the follow-up reports 2621 epochs at one ELR), so a run that is still
moving at the budget is labelled 2. The rule reads the last part of the run:

* regime 3 if the mean train-mode error over the full-metric epochs of the second half is within
  ``chance_margin`` of chance (``1 - 1/num_classes``);
* regime 2 if the weights keep moving: the median angle turned per epoch on the sphere over the
  last quarter of the epochs is at least ``moving_angle_deg``, and the last train loss is not
  below ``converged_loss``;
* regime 1 otherwise: the point has (nearly) stopped on the sphere, as a converging run does
  (its gradient, hence its step, goes to zero).

The angle per epoch is recorded every epoch, so the rule does not depend on the sparser schedule
of the full metrics, and it is robust to the loss spikes of regime 2, which make trend tests on
the loss unreliable. On the ``cpu`` preset's runs the end-of-run angle per epoch is bimodal
(below 1 degree for converging runs, above 10 degrees in the chaotic equilibrium), and the
threshold sits between the modes. :func:`decay_exponent` is reported alongside as a diagnostic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .store import RunResult

REGIME_NAMES = {1: "convergence", 2: "chaotic equilibrium", 3: "divergence"}


@dataclass(frozen=True)
class RegimeRule:
    converged_loss: float = 1e-3  # a run whose last train loss is below this is regime 1
    moving_angle_deg: float = 3.0  # regime 2: median angle per epoch over the last quarter at least this
    chance_margin: float = 0.1  # regime 3: train error within this of chance


def second_half(metrics: pd.DataFrame) -> pd.DataFrame:
    """Full-metric rows from half the last evaluated epoch on (at least the last 3 rows)."""
    full = metrics.dropna(subset=["train_loss"])
    full = full[full.index > 0]
    if len(full) < 3:
        raise ValueError("a regime needs at least 3 evaluated epochs after the initial point")
    late = full[full.index >= full.index[-1] / 2]
    return late if len(late) >= 3 else full.iloc[-3:]


def tail_mean(metrics: pd.DataFrame, column: str, epochs: int) -> float:
    """Mean of ``column`` over the evaluated epochs among the last ``epochs`` epochs of the run (every
    epoch where the metric was recorded in ``(last - epochs, last]``)."""
    values = metrics[column].dropna()
    values = values[values.index > 0]
    if values.empty or epochs < 1:
        raise ValueError(f"need epochs >= 1 and a recorded {column!r} after the initial point")
    return float(values[values.index > values.index[-1] - epochs].mean())


def decay_exponent(metrics: pd.DataFrame) -> float:
    """Minus the least-squares slope of log train loss against log epoch over the second half."""
    late = second_half(metrics)
    slope = np.polyfit(np.log(late.index.to_numpy(dtype=float)), np.log(late["train_loss"].to_numpy()), 1)[0]
    return float(-slope)


def late_angle_deg(metrics: pd.DataFrame) -> float:
    """Median angle (degrees) turned per epoch on the sphere over the last quarter of the epochs."""
    angles = metrics["angle_epoch_deg"].dropna()
    if angles.empty:
        raise ValueError("a regime needs the angle turned per epoch (column angle_epoch_deg)")
    return float(angles[angles.index >= angles.index[-1] * 3 / 4].median())


def classify(metrics: pd.DataFrame, num_classes: int = 10, rule: RegimeRule = RegimeRule()) -> int:
    """Regime 1, 2 or 3 of a finished run from its metric table (see the module docstring)."""
    late = second_half(metrics)
    if late["train_error"].mean() >= 1 - 1 / num_classes - rule.chance_margin:
        return 3
    if late["train_loss"].iloc[-1] >= rule.converged_loss and late_angle_deg(metrics) >= rule.moving_angle_deg:
        return 2
    return 1


# --------------------------------------------------------------------------- sweeps of runs

def by_elr(results: Sequence[RunResult]) -> dict[float, list[RunResult]]:
    """Finished runs grouped by ELR (sorted), seeds in order."""
    groups: dict[float, list[RunResult]] = {}
    for result in sorted(results, key=lambda r: (r.config.elr, r.config.seed)):
        groups.setdefault(result.config.elr, []).append(result)
    return groups


def seed_band(results: Sequence[RunResult], column: str) -> pd.DataFrame:
    """Per epoch, the mean, min and max of ``column`` over the runs (seeds) of one ELR.

    Only epochs where every run has the metric are kept (full metrics follow a schedule).
    """
    table = pd.concat([r.metrics[column].rename(r.config.seed) for r in results], axis=1).dropna()
    return pd.DataFrame({"mean": table.mean(axis=1), "low": table.min(axis=1), "high": table.max(axis=1)})


def run_regime(result: RunResult, num_classes: int = 10, rule: RegimeRule = RegimeRule()) -> int:
    """:func:`classify` of a run; a run whose loss became NaN or inf (status ``diverged``) is regime 3,
    however few epochs it recorded."""
    return 3 if result.status.status == "diverged" else classify(result.metrics, num_classes, rule)


def run_summary(results: Sequence[RunResult], num_classes: int = 10, rule: RegimeRule = RegimeRule()
                ) -> pd.DataFrame:
    """One row per run: ELR, seed, status, regime, the last evaluated epoch's metrics, and the means of
    train loss and effective gradient norm over the second half (``late_*``: the stationary levels
    of regime 2)."""
    rows = []
    for result in results:
        final = result.final
        initial = result.metrics.loc[0]
        try:
            late, short = second_half(result.metrics), False
        except ValueError:  # only a run that diverged early: classify() needs 3 epochs
            late, short = result.metrics.iloc[-1:], True
        rows.append({
            "elr": result.config.elr, "seed": result.config.seed, "status": result.status.status,
            "epochs": int(final.name), "regime": run_regime(result, num_classes, rule),
            "decay_exponent": np.nan if short else decay_exponent(result.metrics),
            "late_angle_deg": np.nan if short else late_angle_deg(result.metrics),
            "train_loss": final["train_loss"], "train_error": final["train_error"],
            "test_error": final["test_error"], "effective_grad_norm": final["effective_grad_norm"],
            "late_train_loss": late["train_loss"].mean(), "late_effective_grad_norm": late["effective_grad_norm"].mean(),
            "grad_over_initial": final["effective_grad_norm"] / initial["effective_grad_norm"],
            "angle_epoch_deg": final["angle_epoch_deg"], "cos_to_init": final["cos_to_init"],
            "best_test_error": result.metrics["test_error"].min(),
            "sharpness": _last_value(result.metrics, "sharpness"),
        })
    return pd.DataFrame(rows).sort_values(["elr", "seed"]).reset_index(drop=True)


def at_equal_loss(results: Sequence[RunResult], column: str, losses: Sequence[float]) -> pd.DataFrame:
    """``column`` of each run where its train loss first falls to each level of ``losses`` (paper §4.1:
    regime-1 trajectories compared at equal loss): linear interpolation in log loss between the two
    evaluated epochs (rows with both metrics) that bracket the first crossing; NaN where the run never
    gets there. One row per run (elr, seed), one column per loss level."""
    rows = []
    for result in results:
        both = result.metrics.dropna(subset=["train_loss", column])
        log_loss, values = np.log(both["train_loss"].to_numpy()), both[column].to_numpy()
        row = {"elr": result.config.elr, "seed": result.config.seed}
        for level in losses:
            crossed = np.flatnonzero(log_loss <= np.log(level))
            if len(crossed) == 0 or crossed[0] == 0:
                row[level] = np.nan
                continue
            i = crossed[0]
            weight = (np.log(level) - log_loss[i - 1]) / (log_loss[i] - log_loss[i - 1])
            row[level] = float(values[i - 1] + weight * (values[i] - values[i - 1]))
        rows.append(row)
    return pd.DataFrame(rows)


def _last_value(metrics: pd.DataFrame, column: str) -> float:
    """The last recorded (non-NaN) value of ``column``, NaN if it was never recorded."""
    if column not in metrics:
        return float("nan")
    values = metrics[column].dropna()
    return float(values.iloc[-1]) if len(values) else float("nan")


def majority_regimes(summary: pd.DataFrame) -> pd.Series:
    """The majority regime of the seeds at each ELR of a :func:`run_summary` (ties: the higher one)."""
    return summary.groupby("elr")["regime"].agg(lambda r: int(r.mode().max()))


def grid_boundaries(summary: pd.DataFrame) -> list[tuple[int, int, float, float]]:
    """Where the majority regime changes between neighbouring ELRs of the grid.

    Returns ``(regime_below, regime_above, last_elr_below, first_elr_above)`` for each change.
    """
    majority = majority_regimes(summary)
    elrs, labels = list(majority.index), list(majority.values)
    return [(labels[i], labels[i + 1], elrs[i], elrs[i + 1]) for i in range(len(elrs) - 1)
            if labels[i] != labels[i + 1]]


def representative_elrs(regime_of: dict[float, int]) -> list[float]:
    """One ELR per regime present: the median ELR (the upper one of an even count) of each regime."""
    members = {regime: sorted(e for e, r in regime_of.items() if r == regime) for regime in set(regime_of.values())}
    return [members[regime][len(members[regime]) // 2] for regime in sorted(members)]


def regime_at(summary: pd.DataFrame, elr: float) -> int:
    """The regime of the fixed-ELR map at ``elr``: the majority regime of the grid ELR nearest in log ELR.

    The map's boundaries are then the geometric midpoints of the brackets of :func:`grid_boundaries`;
    beyond the grid the regime of its end is taken.
    """
    if not elr > 0:
        raise ValueError(f"an ELR must be > 0, got {elr!r}")
    majority = majority_regimes(summary)
    nearest = int(np.argmin(np.abs(np.log(majority.index.to_numpy(dtype=float)) - np.log(elr))))
    return int(majority.iloc[nearest])


def regime_map(summary: pd.DataFrame) -> tuple[list[float], list[int]]:
    """The fixed-ELR regime map of a grid as ``(boundaries, regimes)`` for
    :func:`sphere_regimes.plotting.shade_regimes`: the geometric midpoints of the brackets of
    :func:`grid_boundaries`, and the majority regime of each span between them (one more)."""
    changes = grid_boundaries(summary)
    majority = majority_regimes(summary)
    return ([float(np.sqrt(low * high)) for _, _, low, high in changes],
            [int(majority.iloc[0]), *[above for _, above, _, _ in changes]])


def fine_tuning_summary(results: Sequence[RunResult], average_epochs: int, num_classes: int = 10) -> pd.DataFrame:
    """One row per fine-tuning run in ``results`` (a run with ``init_from``; its pre-training run must be
    in ``results`` too): the pre-training ELR and regime, the fine-tuning ELR, and the test error of the
    pre-training run and of the fine-tuned run, each the :func:`tail_mean` over the last
    ``average_epochs`` epochs, with the fine-tuned run's train loss likewise."""
    by_id = {r.config.run_id: r for r in results}
    rows = []
    for result in results:
        if result.config.init_from is None:
            continue
        if result.config.init_from not in by_id:
            raise ValueError(f"the pre-training run {result.config.init_from} of {result.config.label()} is not "
                             "among the results")
        source = by_id[result.config.init_from]
        rows.append({
            "pretrain_elr": source.config.elr, "seed": result.config.seed, "finetune_elr": result.config.elr,
            "pretrain_regime": classify(source.metrics, num_classes),
            "pretrained_error": tail_mean(source.metrics, "test_error", average_epochs),
            "finetuned_error": tail_mean(result.metrics, "test_error", average_epochs),
            "finetuned_train_loss": tail_mean(result.metrics, "train_loss", average_epochs),
        })
    columns = ["pretrain_elr", "seed", "finetune_elr", "pretrain_regime", "pretrained_error", "finetuned_error",
               "finetuned_train_loss"]
    return pd.DataFrame(rows, columns=columns).sort_values(["pretrain_elr", "seed"]).reset_index(drop=True)
