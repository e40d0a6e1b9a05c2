"""Conventional training (paper §6): plain SGD with weight decay on a scale-invariant (SI) network.

For SI weights the gradient g is orthogonal to w, so one SGD step with learning rate ``lr`` and
weight decay ``wd`` changes the squared norm by

    ||w'||^2 = (1 - lr wd)^2 ||w||^2 + lr^2 ||g||^2.

The norm stops changing when ``lr^2 ||g||^2 = (2 lr wd - lr^2 wd^2) ||w||^2``, and the angle the step
turns w by, ``lr ||g|| / ||w||``, is then ``sqrt(2 lr wd)`` to first order; heavy-ball momentum m
divides the squared angle by 1 + m (Wan et al. 2021, "Spherical motion dynamics"). In that
equilibrium the effective learning rate ``lr / ||w||^2`` settles at a level set by the intrinsic
learning rate ``lr wd`` (Li, Lyu & Arora 2020): the run trains on the sphere at that ELR, and falls in
the regime of that ELR. Far above the equilibrium the squared norm shrinks as ``(1 - lr wd)^{2t}``, so
the equilibrium is reached after about ``ln(||w_0||^2 / ||w_eq||^2) / (2 lr wd)`` steps.

The law fixes the mean *square* of the angular update, not its mean: the norm balance holds on average
over the steps, ``E[lr^2 ||g||^2 / ||w||^2] = 2 lr wd - lr^2 wd^2``, and the mean of the angles is below
their root mean square whenever they vary from step to step. So the claim is read on the RMS.

The functions read a run's metric table (:attr:`sphere_regimes.store.RunResult.metrics`, one row
per epoch): ``angle_step_rad`` and ``angle_step_rms_rad`` (mean and RMS angular update per step of the
epoch; runs made before the RMS was recorded lack it, see :func:`implied_rms_angles`), ``elr``,
``si_norm``, and the full metrics on their schedule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .regimes import RegimeRule, regime_at, run_regime, second_half

if TYPE_CHECKING:
    from .store import RunResult

LATE_FRACTION = 0.25
"""The equilibrium levels are read over this last fraction of the epochs."""
TOLERANCE = 0.2
"""An angular update within this relative distance of the theory counts as at equilibrium."""
SETTLE_RELAXATIONS = 2.0
"""A norm can count as settled only after this many relaxation times 1/(2 lr wd) steps (issue 17: "at least
twice"): free decay shrinks the squared norm by exp(-2) in two of them, and near the equilibrium ``ln ||w||``
relaxes twice as fast (:func:`norm_drift`), by exp(-4)."""
SPIKE_FACTOR = 10.0
"""A destabilisation is a rise of the loss to this factor (one decade on the book's log loss axes) above the
level below which the run counts as converged; our reading of a "spike", set before the long runs were trained."""


def angular_update_theory(lr: float, weight_decay: float, momentum: float = 0.0) -> float:
    """Equilibrium angular update per step, ``sqrt(2 lr wd / (1 + momentum))`` radians."""
    if lr <= 0 or weight_decay < 0 or not 0 <= momentum < 1:
        raise ValueError(f"need lr > 0, weight_decay >= 0 and 0 <= momentum < 1, got lr={lr!r}, "
                         f"weight_decay={weight_decay!r}, momentum={momentum!r}")
    return math.sqrt(2 * lr * weight_decay / (1 + momentum))


def relaxation_epochs(lr: float, weight_decay: float, steps_per_epoch: int) -> float:
    """The relaxation time of the norm, ``1 / (2 lr wd)`` steps, in epochs of ``steps_per_epoch`` steps: far
    above the equilibrium the squared norm shrinks as ``(1 - lr wd)^{2t} ~ exp(-2 lr wd t)``."""
    if lr <= 0 or weight_decay <= 0 or steps_per_epoch < 1:
        raise ValueError(f"need lr > 0, weight_decay > 0 and steps_per_epoch >= 1, got lr={lr!r}, "
                         f"weight_decay={weight_decay!r}, steps_per_epoch={steps_per_epoch!r}")
    return 1 / (2 * lr * weight_decay * steps_per_epoch)


def norm_drift(si_norm: pd.Series, lr: float, weight_decay: float, steps_per_epoch: int,
               fraction: float = LATE_FRACTION) -> float:
    """How fast the norm still moves over the late window (:func:`late_window`), as a fraction of the free decay.

    The least-squares slope of ``ln ||w||`` against the step over the window's epochs, divided by
    ``ln(1 - lr wd)``, the slope of a norm that weight decay alone shrinks (no gradient): 1 is that free decay,
    0 a stationary norm, a negative value a growing one. By the norm recurrence
    ``||w'||^2 = (1 - lr wd)^2 ||w||^2 + lr^2 ||g||^2`` a drift ``r`` puts the window's mean square angular update
    at ``(1 - r)`` times its law value ``-2 ln(1 - lr wd) ~ 2 lr wd`` (:func:`implied_rms_angles`); linearised about
    the equilibrium (effective gradient fixed) ``ln ||w||`` relaxes at rate ``4 lr wd`` per step, so ``r`` is about
    4 times its remaining distance from the equilibrium. NaN with fewer than two epochs in the window."""
    window = np.log(late_window(si_norm, fraction))
    if len(window) < 2:
        return math.nan
    slope_per_epoch = np.polyfit(window.index.to_numpy(dtype=float), window.to_numpy(dtype=float), 1)[0]
    return float(slope_per_epoch / steps_per_epoch / math.log1p(-lr * weight_decay))


def norm_settled(epochs: int, relaxation: float, drift: float, tolerance: float = TOLERANCE,
                 relaxations: float = SETTLE_RELAXATIONS) -> bool:
    """Whether a run's norm settled: it trained for at least ``relaxations`` relaxation times (``relaxation``
    epochs each, :func:`relaxation_epochs`) and its late-window :func:`norm_drift` is within ``tolerance`` of 0,
    i.e. its mean square angular update within ``tolerance`` of the law's (a NaN drift is not settled)."""
    return bool(epochs >= relaxations * relaxation and abs(drift) <= tolerance)


def destabilisations(losses: pd.Series, converged: float, factor: float = SPIKE_FACTOR) -> list[int]:
    """The epochs at which a converged run destabilises (a loss spike): the loss (one value per epoch, NaN
    skipped) rises above ``factor * converged`` after it has been below ``converged`` since the last spike (or
    the start). A run that never converges has none; one that converges and spikes again and again, the periodic
    destabilisation of Lobacheva et al. 2021 (paper §6), has one per cycle."""
    spikes, below = [], False
    for epoch, loss in losses.dropna().items():
        if loss < converged:
            below = True
        elif below and loss > factor * converged:
            spikes.append(int(epoch))
            below = False
    return spikes


def intrinsic_lr(lr: float, weight_decay: float) -> float:
    """``lr * wd`` to 9 significant digits, so that equal products compare equal (0.1 * 3e-3 is
    3.0000000000000003e-4 in floating point, 0.3 * 1e-3 is 3e-4)."""
    return float(f"{lr * weight_decay:.9g}")


def late_epochs(metrics: pd.DataFrame, column: str, fraction: float = LATE_FRACTION) -> pd.Series:
    """The recorded values of ``column`` over the last ``fraction`` of the epochs (the initial point
    excluded)."""
    if column not in metrics:
        raise ValueError(f"the metric table has no column {column!r}")
    return late_window(metrics[column], fraction)


def late_window(series: pd.Series, fraction: float = LATE_FRACTION) -> pd.Series:
    """The recorded (non-NaN) values of a per-epoch ``series`` over its last ``fraction`` of the epochs,
    the initial point excluded."""
    values = series.dropna()
    values = values[values.index > 0]
    if values.empty:
        raise ValueError(f"the metric table has no recorded {series.name!r} after the initial point")
    return values[values.index >= values.index[-1] * (1 - fraction)]


def implied_rms_angles(si_norm: pd.Series, lr: float, weight_decay: float, steps_per_epoch: int) -> pd.Series:
    """The RMS angular update per step of each epoch implied by the norms at its ends (plain SGD, no momentum).

    One step is ``w' = (1 - lr wd) w - lr g`` with ``g`` orthogonal to ``w`` (scale invariance), so
    ``<w', w> = (1 - lr wd) ||w||^2`` and the step's angle obeys exactly ``cos(theta) = (1 - lr wd) ||w|| / ||w'||``
    (the norm recurrence ``||w'||^2 = (1 - lr wd)^2 ||w||^2 + lr^2 ||g||^2``). Over the S steps of epoch e the
    product of these cosines telescopes, and with ``-2 ln cos(theta) = theta^2 (1 + theta^2 / 6 + ...)``:

        RMS_e = sqrt( -2 ln(1 - lr wd) + (2 / S) ln(||w_e|| / ||w_{e-1}||) ),

    exact up to a relative ``theta^2 / 12`` (1e-3 at 0.1 rad). A stationary norm gives
    ``sqrt(-2 ln(1 - lr wd)) = sqrt(2 lr wd) (1 + lr wd / 4 + ...)``: the law. NaN at the initial point."""
    squares = -2 * math.log1p(-lr * weight_decay) + 2 / steps_per_epoch * np.log(si_norm / si_norm.shift(1))
    return np.sqrt(squares.clip(lower=0)).rename("angle_step_rms_rad")


def rms_angles(metrics: pd.DataFrame, lr: float, weight_decay: float, momentum: float,
               steps_per_epoch: int) -> tuple[pd.Series, str]:
    """The RMS angular update per step of each epoch and where it comes from: the recorded column
    ``angle_step_rms_rad`` where the run has it ("recorded"), else :func:`implied_rms_angles` ("implied by the
    norm"), which holds for plain SGD only (NaN with momentum, whose step is not orthogonal to ``w``)."""
    if "angle_step_rms_rad" in metrics and metrics["angle_step_rms_rad"].notna().any():
        return metrics["angle_step_rms_rad"], "recorded"
    if momentum:
        return pd.Series(math.nan, index=metrics.index, name="angle_step_rms_rad"), "not recorded"
    return implied_rms_angles(metrics["si_norm"], lr, weight_decay, steps_per_epoch), "implied by the norm"


def window_rms(rms: pd.Series, fraction: float = LATE_FRACTION) -> float:
    """The RMS angular update over every step of the late window, from the per-epoch RMS ``rms``:
    ``sqrt(mean_e RMS_e^2)`` over the window's epochs (each epoch has the same number of steps). Not a median
    over epochs: the few epochs of a destabilisation, whose steps are large, carry much of the mean square."""
    return float(np.sqrt(np.square(late_window(rms, fraction)).mean()))


def equilibrium_elr(metrics: pd.DataFrame, fraction: float = LATE_FRACTION) -> float:
    """The equilibrium effective learning rate: median of ``lr / ||w||^2`` over the last ``fraction``
    of the epochs."""
    return float(late_epochs(metrics, "elr", fraction).median())


def equilibrium_epochs(angles: pd.Series, theory: float, tolerance: float = TOLERANCE) -> tuple[float, float]:
    """When the angular update per step (``angles``, one value per epoch) reaches its theory value.

    Returns ``(first, settled)``: the first epoch whose angular update is within ``tolerance``
    (relative) of ``theory``, and the first epoch from which every later epoch is within it; NaN when
    that never happens (``settled`` is NaN when the last epoch is outside).
    """
    angles = angles.dropna()
    inside = (angles / theory - 1).abs() <= tolerance
    if not inside.any():
        return math.nan, math.nan
    first = float(inside.idxmax())
    return first, _inside_from(inside)


def constant_output_from(metrics: pd.DataFrame, num_classes: int, tolerance: float = 0.01) -> float:
    """The first epoch from which the running train loss stays within ``tolerance`` of ``ln(classes)``,
    the loss of a net whose output no longer depends on its input (NaN if it never does). Such a net
    sends no gradient into its convolution weights, so weight decay alone shrinks them by
    ``(1 - lr wd)`` per step until their norm underflows (the collapse :mod:`sphere_regimes.engine`
    records as a divergence)."""
    losses = metrics["train_loss_running"].dropna()
    return _inside_from((losses - math.log(num_classes)).abs() <= tolerance)


def _inside_from(inside: pd.Series) -> float:
    """The first index from which every later value of the boolean series ``inside`` is True (NaN when
    its last value is False or it is empty)."""
    if inside.empty or not inside.iloc[-1]:
        return math.nan
    outside = inside.index[~inside.to_numpy()]
    return float(inside.index[0] if outside.empty else inside.index[inside.index > outside[-1]][0])


def sgd_summary(results: Sequence[RunResult], steps_per_epoch: int, num_classes: int = 10,
                tolerance: float = TOLERANCE, rule: RegimeRule = RegimeRule()) -> pd.DataFrame:
    """One row per SGD run: its setting, the theory and the measured angular update per step (``late_angle``:
    median over the last quarter of the per-epoch mean, the first edition's reading; ``late_rms``: the RMS over
    every step of the last quarter, :func:`window_rms` of :func:`rms_angles`, with ``rms_source``;
    ``angle_ratio`` is ``late_rms`` / theory, the law's reading, ``mean_ratio`` the mean's), the epochs the
    per-epoch RMS took to reach the theory (:func:`equilibrium_epochs`), the
    equilibrium ELR with its min and max over the last quarter, the train loss's min and max over the
    last quarter (``late_loss_*``: a wide range is a run destabilised again and again), its own regime
    (:func:`sphere_regimes.regimes.run_regime`: a diverged run is regime 3), and its final and
    stationary metrics; the norm's relaxation time in epochs (:func:`relaxation_epochs`), how many of them the run
    trained for (``relaxations``), its late-window drift (:func:`norm_drift`) and whether it settled
    (:func:`norm_settled`), and the epochs of its loss spikes (:func:`destabilisations` of the running train loss,
    recorded every epoch, from below the rule's ``converged_loss``). A run that diverged (NaN loss, or weights
    collapsed to norm 0: see :mod:`sphere_regimes.engine`) has no equilibrium: its ELR columns and its drift are
    NaN and ``diverged_epoch`` says when it ended."""
    rows = []
    for result in results:
        config, metrics = result.config, result.metrics
        if config.is_sphere:
            raise ValueError(f"sgd_summary takes SGD runs; {config.label()} trained on the sphere")
        theory = angular_update_theory(config.lr, config.weight_decay, config.momentum)
        rms, rms_source = rms_angles(metrics, config.lr, config.weight_decay, config.momentum, steps_per_epoch)
        first, settled = equilibrium_epochs(rms, theory, tolerance)
        late_angle = float(late_epochs(metrics, "angle_step_rad").median())
        late_rms = window_rms(rms) if rms.notna().any() else math.nan
        diverged = result.status.status == "diverged"
        late_elr = late_epochs(metrics, "elr")
        late_loss = late_epochs(metrics, "train_loss")
        elr_levels = (math.nan,) * 3 if diverged else (late_elr.median(), late_elr.min(), late_elr.max())
        final = result.final
        rows.append({
            "run_id": config.run_id, "model": config.model, "lr": config.lr, "weight_decay": config.weight_decay,
            "momentum": config.momentum, "seed": config.seed, "lr_wd": intrinsic_lr(config.lr, config.weight_decay),
            "theory_angle": theory, "late_angle": late_angle, "mean_ratio": late_angle / theory,
            "late_rms": late_rms, "angle_ratio": late_rms / theory, "rms_source": rms_source,
            "first_epoch": first, "settled_epoch": settled, "equilibrium_elr": float(elr_levels[0]),
            "elr_min": float(elr_levels[1]), "elr_max": float(elr_levels[2]),
            "initial_si_norm": float(metrics["si_norm"].iloc[0]), "max_si_norm": float(metrics["si_norm"].max()),
            "final_si_norm": float(metrics["si_norm"].iloc[-1]),
            "regime": run_regime(result, num_classes, rule), "epochs": int(final.name),
            "train_loss": final["train_loss"], "late_train_loss": second_half(metrics)["train_loss"].mean(),
            "late_loss_min": float(late_loss.min()), "late_loss_max": float(late_loss.max()),
            "test_error": final["test_error"], "best_test_error": metrics["test_error"].min(),
            "status": result.status.status,
            "diverged_epoch": result.status.diverged_epoch if diverged else math.nan,
            "constant_output_from": constant_output_from(metrics, num_classes),
            **relaxation_columns(result, steps_per_epoch, tolerance, rule.converged_loss),
        })
    return pd.DataFrame(rows).sort_values(["model", "lr_wd", "lr", "seed"]).reset_index(drop=True)


def relaxation_columns(result: RunResult, steps_per_epoch: int, tolerance: float, converged: float) -> dict:
    """The norm's relaxation and the loss spikes of one SGD run, :func:`sgd_summary`'s columns
    ``relaxation_epochs``, ``relaxations`` (epochs trained / relaxation time), ``norm_drift`` (NaN if it
    diverged), ``norm_settled``, ``converged_epoch`` (the first epoch whose running train loss is below
    ``converged``, NaN if none), ``spike_epochs`` and ``n_spikes``."""
    config, metrics, epochs = result.config, result.metrics, int(result.final.name)
    relaxation = relaxation_epochs(config.lr, config.weight_decay, steps_per_epoch)
    drift = (math.nan if result.status.status == "diverged" else
             norm_drift(metrics["si_norm"], config.lr, config.weight_decay, steps_per_epoch))
    losses = metrics["train_loss_running"].dropna()
    spikes = destabilisations(losses, converged)
    below = losses.index[losses < converged]
    return {"relaxation_epochs": relaxation, "relaxations": epochs / relaxation, "norm_drift": drift,
            "norm_settled": norm_settled(epochs, relaxation, drift, tolerance),
            "converged_epoch": float(below[0]) if len(below) else math.nan, "spike_epochs": tuple(spikes),
            "n_spikes": len(spikes)}


def equal_lr_wd_spread(summary: pd.DataFrame, column: str = "equilibrium_elr") -> pd.DataFrame:
    """For every intrinsic LR ``lr wd`` shared by several runs of one model: ``column`` of each and
    the ratio of the largest to the smallest (1 when runs of equal ``lr wd`` agree exactly). ``summary``
    is :func:`sgd_summary`'s table (its ``lr_wd`` is :func:`intrinsic_lr`)."""
    rows = []
    for (model, lr_wd), group in summary.groupby(["model", "lr_wd"]):
        if group["lr"].nunique() < 2:
            continue
        values = group[column].to_numpy(dtype=float)
        rows.append({"model": model, "lr_wd": lr_wd, "lrs": tuple(group["lr"]), column: tuple(values),
                     "ratio": float(np.max(values) / np.min(values))})
    return pd.DataFrame(rows, columns=["model", "lr_wd", "lrs", column, "ratio"])


def map_regimes(summary: pd.DataFrame, sphere_summary: pd.DataFrame, column: str = "equilibrium_elr") -> pd.Series:
    """The regime of the sphere's fixed-ELR map (:func:`sphere_regimes.regimes.regime_at` of the
    ``sphere_summary`` of :func:`sphere_regimes.regimes.run_summary`) at the ELR in ``column`` of each row
    of ``summary`` (paper §6: SGD with weight decay trains in the regime of its equilibrium ELR); NaN
    where that ELR is NaN, as for a diverged run, which has no equilibrium."""
    return pd.Series([regime_at(sphere_summary, elr) if elr > 0 else math.nan for elr in summary[column]],
                     index=summary.index, name="map_regime", dtype=float)
