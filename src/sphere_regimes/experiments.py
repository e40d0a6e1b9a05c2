"""The run plans of the book's chapters: which :class:`RunConfig` each chapter reads.

Each plan is a function of the chapter's notebook parameters (as a preset sets them) and is
registered under the notebook's name, so that ``make book`` (``python -m sphere_regimes.plans
compute PRESET``) trains exactly what the chapters will read. Notebooks call
:func:`sphere_regimes.plans.load_results` with their own parameters and never train.
"""

from __future__ import annotations

from typing import Any

from .config import RunConfig
from .plans import register

THREE_REGIMES = "02_three_regimes"


def base_config(params: dict[str, Any], **changes: Any) -> RunConfig:
    """The chapter's common setting (dataset, model, data size, metric schedule), with ``changes``.

    ``train_size = 0`` in a notebook's parameters means the whole training set.
    """
    values: dict[str, Any] = dict(
        dataset=params["dataset"], train_size=params["train_size"] or None, model="convnet_si",
        width=params["width"], batch_size=params["batch_size"], epochs=params["epochs"],
        dense_metric_epochs=params["dense_metric_epochs"], metric_every=params["metric_every"],
        sharpness_every=params["sharpness_every"])
    values.update(changes)
    return RunConfig(**values)


@register(THREE_REGIMES)
def three_regimes_plan(params: dict[str, Any]) -> list[RunConfig]:
    """Figure 1 grid: every ELR x every init seed on the sphere (total constraint, shared last layer)."""
    return [base_config(params, elr=float(elr), seed=int(seed)) for seed in params["seeds"] for elr in params["elrs"]]
