"""Which of the three regimes (paper §4) a finished run on the sphere is in.

1. **convergence**: the train loss keeps falling towards zero;
2. **chaotic equilibrium**: the train loss settles at a non-zero level and stays there;
3. **divergence**: the train loss stays near its initial level and the net predicts at chance.

The label depends on the epoch budget: near the 1/2 boundary a run may need very many epochs
to converge (paper §4; the follow-up reports 2621 epochs at one ELR), so a run that is still
moving at the budget is labelled 2. The rule reads the last part of the run:

* regime 3 if the mean train-mode error over the full-metric epochs of the second half is within
  ``chance_margin`` of chance (``1 - 1/num_classes``);
* regime 2 if the weights keep moving: the median (``angle_statistic``) angle turned per epoch on
  the sphere over the last quarter (``angle_window``) of the epochs is at least ``moving_angle_deg``,
  and the last train loss is not below ``converged_loss``;
* regime 1 otherwise: the point has (nearly) stopped on the sphere, as a converging run does
  (its gradient, hence its step, goes to zero).

The angle per epoch is recorded every epoch, so the rule does not depend on the sparser schedule
of the full metrics, and it is robust to the loss spikes of regime 2, which make trend tests on
the loss unreliable. On the ``cpu`` preset's runs the end-of-run angle per epoch is bimodal
(below 1 degree for converging runs, above 10 degrees in the chaotic equilibrium), and the
threshold sits between the modes. :func:`decay_exponent` is reported alongside as a diagnostic.

The rule was chosen after the first runs (the three-regimes chapter gives its history), so
:class:`RegimeRule` makes its choices parameters, the book's values the defaults, and
:func:`rule_sensitivity` shows which labels change within a range of them.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .table import scientific

if TYPE_CHECKING:
    from .store import RunResult

REGIME_NAMES = {1: "convergence", 2: "chaotic equilibrium", 3: "divergence"}


ANGLE_STATISTICS = ("median", "mean")


@dataclass(frozen=True)
class RegimeRule:
    """The regime rule's parameters (module docstring); the defaults are the book's rule."""

    converged_loss: float = 1e-3  # a run whose last train loss is below this is regime 1
    moving_angle_deg: float = 3.0  # regime 2: the angle statistic per epoch over the angle window at least this
    chance_margin: float = 0.1  # regime 3: train error within this of chance
    angle_window: float = 0.25  # regime 2: the angle is read over this last fraction of the epochs (a quarter)
    angle_statistic: str = "median"  # regime 2: "median" or "mean" of the angles per epoch in the window

    def __post_init__(self) -> None:
        if self.angle_statistic not in ANGLE_STATISTICS:
            raise ValueError(f"unknown angle_statistic {self.angle_statistic!r}; choose one of {list(ANGLE_STATISTICS)}")
        if not 0 < self.angle_window <= 1:
            raise ValueError(f"angle_window must be a fraction of the epochs in (0, 1], got {self.angle_window!r}")


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


def late_angle_deg(metrics: pd.DataFrame, rule: RegimeRule = RegimeRule()) -> float:
    """The rule's statistic (median by default) of the angle (degrees) turned per epoch on the sphere over
    its window (the last quarter of the epochs by default)."""
    angles = metrics["angle_epoch_deg"].dropna()
    if angles.empty:
        raise ValueError("a regime needs the angle turned per epoch (column angle_epoch_deg)")
    window = angles[angles.index >= angles.index[-1] * (1 - rule.angle_window)]
    return float(window.median() if rule.angle_statistic == "median" else window.mean())


def classify(metrics: pd.DataFrame, num_classes: int = 10, rule: RegimeRule = RegimeRule()) -> int:
    """Regime 1, 2 or 3 of a finished run from its metric table (see the module docstring)."""
    return _RuleReadings(metrics).regime(num_classes, rule)


class _RuleReadings:
    """What the rule reads from one run, each angle statistic computed once (the rule's sensitivity labels a
    run under many rules)."""

    def __init__(self, metrics: pd.DataFrame) -> None:
        late = second_half(metrics)
        self.metrics = metrics
        self.late_error = float(late["train_error"].mean())
        self.last_loss = float(late["train_loss"].iloc[-1])
        self.angles: dict[tuple[float, str], float] = {}

    def angle(self, rule: RegimeRule) -> float:
        key = (rule.angle_window, rule.angle_statistic)
        if key not in self.angles:
            self.angles[key] = late_angle_deg(self.metrics, rule)
        return self.angles[key]

    def regime(self, num_classes: int, rule: RegimeRule) -> int:
        if self.late_error >= 1 - 1 / num_classes - rule.chance_margin:
            return 3
        if self.last_loss >= rule.converged_loss and self.angle(rule) >= rule.moving_angle_deg:
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
            "late_angle_deg": np.nan if short else late_angle_deg(result.metrics, rule),
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


# --------------------------------------------------------------------------- the rule's sensitivity

RULE_RANGES: dict[str, tuple] = {
    "moving_angle_deg": (1.0, 2.0, 3.0, 5.0, 10.0),
    "chance_margin": (0.05, 0.075, 0.1, 0.125, 0.15),
    "angle_window": (0.25, 0.5),
    "angle_statistic": ("median", "mean"),
}
"""The range over which the rule's parameters are varied (issue 17: angle 1°–10°, chance margin 0.05–0.15,
angle window the last quarter or the last half, median or mean), set from the issue's ranges before any
variation was computed: roughly log-spaced angles, evenly spaced margins."""

_RULE_NAMES = {"moving_angle_deg": "angle ≥ {:g}°", "chance_margin": "chance margin {:g}",
               "angle_window": "window the last {:.0%} of the epochs", "angle_statistic": "{} angle"}


def rule_variations(ranges: dict[str, tuple] = RULE_RANGES) -> list[RegimeRule]:
    """The book's rule, then one parameter at a time at each other value of its range."""
    book = RegimeRule()
    rules = [book]
    for name, values in ranges.items():
        rules += [dataclasses.replace(book, **{name: value}) for value in values if value != getattr(book, name)]
    return rules


def rule_grid(ranges: dict[str, tuple] = RULE_RANGES) -> list[RegimeRule]:
    """Every combination of the values of ``ranges`` (the other parameters at the book's values)."""
    return [RegimeRule(**dict(zip(ranges, values))) for values in itertools.product(*ranges.values())]


def rule_name(rule: RegimeRule) -> str:
    """How the rule differs from the book's: e.g. "angle ≥ 1°", or "the book's rule"."""
    book = RegimeRule()
    changed = [_RULE_NAMES[f.name].format(getattr(rule, f.name)) for f in dataclasses.fields(rule)
               if getattr(rule, f.name) != getattr(book, f.name)]
    return ", ".join(changed) or "the book's rule"


class GridLabels:
    """The runs of a grid, labelled under any :class:`RegimeRule` (each run's readings taken once)."""

    def __init__(self, results: Sequence[RunResult], num_classes: int = 10) -> None:
        ordered = sorted(results, key=lambda r: (r.config.elr, r.config.seed))
        self.num_classes = num_classes
        self.keys = pd.DataFrame({"elr": [r.config.elr for r in ordered], "seed": [r.config.seed for r in ordered]})
        self.readings = [None if r.status.status == "diverged" else _RuleReadings(r.metrics) for r in ordered]

    def under(self, rule: RegimeRule) -> pd.DataFrame:
        """Each run's regime under ``rule`` (:func:`run_regime`): columns ``elr``, ``seed``, ``regime``, by ELR and seed."""
        regimes = [3 if reading is None else reading.regime(self.num_classes, rule) for reading in self.readings]
        return self.keys.assign(regime=regimes)


def rule_sensitivity(results: Sequence[RunResult], num_classes: int = 10,
                     ranges: dict[str, tuple] = RULE_RANGES) -> pd.DataFrame:
    """The labels and boundaries of a grid under each of :func:`rule_variations`: one row per rule with its
    ``rule`` name, ``changed`` (runs labelled otherwise than by the book's rule), ``boundaries`` (the brackets
    of :func:`grid_boundaries`, e.g. "1→2 (4e-3, 5e-3)") and one column per ELR (named as :func:`.table.scientific`
    writes it) with its seeds' labels (e.g. "112")."""
    grid = GridLabels(results, num_classes)
    book = grid.under(RegimeRule())
    rows = []
    for rule in rule_variations(ranges):
        labels = grid.under(rule)
        row = {"rule": rule_name(rule), "changed": int((labels["regime"] != book["regime"]).sum()),
               "boundaries": ", ".join(f"{a}→{b} ({scientific(low)}, {scientific(high)})"
                                       for a, b, low, high in grid_boundaries(labels))}
        row.update({scientific(elr): "".join(str(v) for v in group["regime"]) for elr, group in labels.groupby("elr")})
        rows.append(row)
    return pd.DataFrame(rows)


def label_ranges(results: Sequence[RunResult], num_classes: int = 10,
                 ranges: dict[str, tuple] = RULE_RANGES) -> tuple[pd.DataFrame, pd.Series]:
    """Every label each run and each ELR's majority take over :func:`rule_grid`: per run (``elr``, ``seed``,
    the book's ``regime``, ``labels``: the book's label first, then the others, e.g. "1/2", and ``unstable``),
    and per ELR the same string for the majority regime. A label is unstable where it changes within the range."""
    grid = GridLabels(results, num_classes)
    book = grid.under(RegimeRule())
    grids = [grid.under(rule) for rule in rule_grid(ranges)]
    seen = pd.concat([g["regime"] for g in grids], axis=1)
    book["labels"] = [_label_set(own, row) for own, row in zip(book["regime"], seen.to_numpy())]
    book["unstable"] = book["labels"].str.contains("/")
    majorities = pd.concat([majority_regimes(g) for g in grids], axis=1)
    book_majority = majority_regimes(book)
    per_elr = pd.Series([_label_set(own, row) for own, row in zip(book_majority, majorities.to_numpy())],
                        index=book_majority.index, name="labels")
    return book, per_elr


def _label_set(own: int, labels) -> str:
    """``own``, then every other label among ``labels``, in order, joined by "/" (e.g. "1/2")."""
    return "/".join(str(v) for v in [own, *sorted(set(int(x) for x in labels) - {own})])


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
