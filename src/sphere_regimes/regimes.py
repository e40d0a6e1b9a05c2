"""Which of the three regimes (paper §4) a finished run on the sphere is in.

1. **convergence**: the train loss keeps falling towards zero;
2. **chaotic equilibrium**: the train loss settles at a non-zero level and stays there;
3. **divergence**: the train loss stays near its initial level and the net predicts at chance.

The label depends on the epoch budget: near the 1/2 boundary a run may need very many epochs
to converge (paper §4; the follow-up reports 2621 epochs at one ELR), so a run that is still
at a plateau at the budget is labelled 2. The rule reads the full-metric rows of the run and
compares the last window (the last fifth of the evaluated epochs, at least 3 of them) with
the window before it:

* regime 3 if the mean train-mode error in the last window is within ``chance_margin`` of
  chance (``1 - 1/num_classes``);
* regime 1 if the last train loss is below ``converged_loss``, or the mean log train loss fell
  by more than ``min_log_drop`` (natural log) from the previous window to the last one;
* regime 2 otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

REGIME_NAMES = {1: "convergence", 2: "chaotic equilibrium", 3: "divergence"}


@dataclass(frozen=True)
class RegimeRule:
    converged_loss: float = 1e-3
    min_log_drop: float = math.log(2)  # the loss must at least halve from one window to the next
    chance_margin: float = 0.1


def classify(metrics: pd.DataFrame, num_classes: int = 10, rule: RegimeRule = RegimeRule()) -> int:
    """Regime 1, 2 or 3 of a finished run from its metric table (see the module docstring)."""
    full = metrics.dropna(subset=["train_loss"])
    full = full[full.index > 0]
    if len(full) < 2:
        raise ValueError("a regime needs at least 2 evaluated epochs after the initial point")
    window = max(min(3, len(full) // 2), len(full) // 5)
    last, before = full.iloc[-window:], full.iloc[-2 * window:-window]
    if last["train_error"].mean() >= 1 - 1 / num_classes - rule.chance_margin:
        return 3
    if last["train_loss"].iloc[-1] < rule.converged_loss:
        return 1
    log_drop = np.log(before["train_loss"]).mean() - np.log(last["train_loss"]).mean()
    return 1 if log_drop > rule.min_log_drop else 2
