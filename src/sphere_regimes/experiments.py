"""The run plans of the book's chapters: which :class:`RunConfig` each chapter reads.

Each plan is a function of the chapter's notebook parameters (as a preset sets them) and is
registered under the notebook's name, so that ``make book`` (``sphere-regimes sweep PRESET``)
trains exactly what the chapters will read. Notebooks call
:func:`sphere_regimes.plans.load_results` with their own parameters and never train.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import pandas as pd

from . import regimes
from .config import RunConfig
from .data import DATASET_INFO
from .engine import RunResult, load
from .plans import register
from .presets import resolved_params
from .store import RunStore

THREE_REGIMES = "02_three_regimes"
CONVENTIONAL = "03_conventional_training"
FINE_TUNING = "04_fine_tuning"
SAME_NETWORK_PARAMS = ("dataset", "train_size", "width", "batch_size")
"""Parameters the conventional-training chapter shares with the three-regimes chapter, whose map it uses."""


def base_config(params: dict[str, Any], **changes: Any) -> RunConfig:
    """The chapter's common setting (dataset, model, data size, metric schedule), with ``changes``.

    ``train_size = 0`` in a notebook's parameters means the whole training set; a chapter without a
    ``sharpness_every`` parameter never measures sharpness.
    """
    values: dict[str, Any] = dict(
        dataset=params["dataset"], train_size=params["train_size"] or None, model="convnet_si",
        width=params["width"], batch_size=params["batch_size"], epochs=params["epochs"],
        dense_metric_epochs=params["dense_metric_epochs"], metric_every=params["metric_every"],
        sharpness_every=params.get("sharpness_every", 0))
    values.update(changes)
    return RunConfig(**values)


@register(THREE_REGIMES)
def three_regimes_plan(params: dict[str, Any]) -> list[RunConfig]:
    """Figure 1 grid (every ELR x every init seed on the sphere, total constraint, shared last layer),
    then ``bisection_steps`` rounds of boundary search (:func:`bisection_elrs`), then the
    individual-constraint runs (:func:`individual_constraint_runs`)."""
    grid = [base_config(params, elr=float(elr), seed=int(seed)) for seed in params["seeds"] for elr in params["elrs"]]
    bisection = [base_config(params, elr=elr, seed=int(seed))
                 for elr in bisection_elrs(params) for seed in params["seeds"]]
    return grid + bisection + individual_constraint_runs(params) + pilot_runs(params)


def pilot_runs(params: dict[str, Any]) -> list[RunConfig]:
    """The pilot that sizes the chapter's setting: ``pilot_epochs`` epochs at the grid's first ELR (full
    metrics every epoch) for each of ``pilot_widths`` on the chapter's training set, and for each of
    ``pilot_train_sizes`` (0: all images) at the chapter's width; their timing gives the seconds per
    epoch of each choice (:func:`pilot_projection`)."""
    shapes = {(int(w), params["train_size"]) for w in params["pilot_widths"]}
    shapes |= {(params["width"], int(n)) for n in params["pilot_train_sizes"]}
    epochs = int(params["pilot_epochs"])
    return [base_config(params, width=width, train_size=train_size or None, elr=float(params["elrs"][0]),
                        seed=int(params["seeds"][0]), epochs=epochs, dense_metric_epochs=epochs, sharpness_every=0)
            for width, train_size in sorted(shapes, key=lambda shape: (shape[0], shape[1] or 10**9))]


def individual_constraint_runs(params: dict[str, Any]) -> list[RunConfig]:
    """The first seed at each of ``individual_elrs`` under the individual (per-layer) constraint.

    Each layer keeps its initial norm, so its ELR stays frozen at ``eta_i = elr ||w_0||^2 / ||w_i0||^2``,
    the value the total-constraint run of the same ELR starts from (paper §3, §5.2): the comparison
    shows what the total constraint's self-tuning of the ``eta_i`` does.
    """
    outside = sorted(set(map(float, params["individual_elrs"])) - set(map(float, params["elrs"])))
    if outside:
        raise ValueError(f"individual_elrs {outside} are not in the grid elrs {params['elrs']}: each individual-"
                         "constraint run is compared with the total-constraint run of the same ELR")
    seed = int(params["seeds"][0])
    return [base_config(params, elr=float(elr), seed=seed, constraint="individual", grouping="layer")
            for elr in params["individual_elrs"]]


class ThreeRegimesRuns(NamedTuple):
    """The runs of :func:`three_regimes_plan` by role."""

    grid: list[RunResult]  # total constraint: the ELR grid and the boundary search
    individual: list[RunResult]  # individual constraint (:func:`individual_constraint_runs`)
    pilot: list[RunResult]  # timing pilot (:func:`pilot_runs`)


def three_regimes_runs(params: dict[str, Any]) -> ThreeRegimesRuns:
    """The three-regimes chapter's finished runs under ``params`` (that chapter's parameters), by role."""
    from .plans import load_results  # the plans module imports this one

    results = load_results(THREE_REGIMES, params)
    pilot_ids = {c.run_id for c in pilot_runs(params)}
    main = [r for r in results if r.config.run_id not in pilot_ids]
    return ThreeRegimesRuns(grid=[r for r in main if r.config.constraint == "total"],
                            individual=[r for r in main if r.config.constraint == "individual"],
                            pilot=[r for r in results if r.config.run_id in pilot_ids])


def pilot_projection(pilot: list[RunResult], store: RunStore, runs: int, epochs: int, workers: int) -> pd.DataFrame:
    """Seconds per epoch of each pilot run (its wall time over its epochs, full metrics every epoch: an
    upper bound for a sparser schedule) and the projected wall time in hours of ``runs`` runs of
    ``epochs`` epochs on ``workers`` single-thread processes."""
    rows = []
    for result in pilot:
        seconds = store.wall_seconds(result.config) / result.config.epochs
        rows.append({"width": result.config.width, "train_size": result.config.train_size or 0,
                     "seconds_per_epoch": seconds, "projected_hours": seconds * runs * epochs / workers / 3600})
    return pd.DataFrame(rows)


def bisection_elrs(params: dict[str, Any]) -> list[float]:
    """ELRs that bisect (geometrically) the brackets where the majority regime changes.

    Round k+1 is known once every run of rounds 0..k is in the store: the grid is round 0; each
    round adds ``sqrt(low * high)`` for every bracket ``(low, high)`` between neighbouring ELRs of
    different regimes, so after k rounds a grid step of 2 is narrowed to ``2^(1/2^k)``. Until the
    store holds a round, the later rounds are not planned (``compute`` plans again after each pass).
    """
    from .plans import preset_store  # the plans module imports this one

    store = preset_store(params["preset"])
    elrs = sorted(float(e) for e in params["elrs"])
    added: list[float] = []
    for _ in range(params["bisection_steps"]):
        summary = _finished_summary(params, elrs, store)
        if summary is None:
            break
        midpoints = [math.sqrt(low * high) for _, _, low, high in regimes.grid_boundaries(summary)]
        new = [m for m in midpoints if all(not math.isclose(m, e, rel_tol=1e-9) for e in elrs)]
        if not new:
            break
        elrs = sorted(elrs + new)
        added += new
    return added


def _finished_summary(params: dict[str, Any], elrs: list[float], store: RunStore):
    """:func:`regimes.run_summary` of every seed at ``elrs``, or ``None`` while any run is missing."""
    results = [load(base_config(params, elr=elr, seed=int(seed)), store) for elr in elrs for seed in params["seeds"]]
    if any(r is None for r in results):
        return None
    return regimes.run_summary(results, DATASET_INFO[params["dataset"]].num_classes)


@register(CONVENTIONAL)
def conventional_plan(params: dict[str, Any]) -> list[RunConfig]:
    """Plain SGD with weight decay in the full space (paper §6): every (lr, weight decay) of the grid
    on the fully scale-invariant net with the frozen last layer, then the ``convnet_af`` variant (affine
    BN, trainable last layer) at ``af_pairs``, for every seed; the chapter's common setting
    (:func:`base_config`) otherwise. The network and data must be the three-regimes chapter's
    (:data:`SAME_NETWORK_PARAMS`)."""
    sphere = resolved_params(params["preset"], THREE_REGIMES)
    different = [k for k in SAME_NETWORK_PARAMS if params[k] != sphere[k]]
    if different:
        raise ValueError(f"preset {params['preset']!r}: {CONVENTIONAL} is read on the regime map of {THREE_REGIMES} "
                         f"and must train the same network on the same data, but {different} differ")
    pairs = [(float(lr), float(wd)) for lr in params["lrs"] for wd in params["weight_decays"]]
    af_pairs = params["af_pairs"]
    if not all(isinstance(p, list) and len(p) == 2 for p in af_pairs):
        raise ValueError(f"af_pairs must be a list of [lr, weight_decay] pairs, got {af_pairs!r}")
    runs = [("convnet_si", lr, wd) for lr, wd in pairs] + [("convnet_af", float(lr), float(wd)) for lr, wd in af_pairs]
    return [base_config(params, model=model, optimizer="sgd", lr=lr, weight_decay=wd,
                        momentum=float(params["momentum"]), seed=int(seed))
            for seed in params["seeds"] for model, lr, wd in runs]


def pretraining_configs(params: dict[str, Any]) -> list[RunConfig]:
    """The fine-tuning chapter's pre-training runs: the three-regimes chapter's setting under the same
    preset (network, data, metric schedule) at ``pretrain_elrs`` x ``seeds`` for ``pretrain_epochs``
    epochs ($T_1$); an empty list takes that chapter's ELR grid or seeds.

    ``pretrain_epochs = 0`` (or that chapter's epochs) reuses that chapter's runs. Other values train
    runs of their own without sharpness measurements: a run's epochs do not name it (a longer run
    extends a shorter one), so the missing sharpness is what names them apart, and a three-regimes
    chapter that measures no sharpness cannot have a different ``pretrain_epochs``.
    """
    source = resolved_params(params["preset"], THREE_REGIMES)
    elrs = params["pretrain_elrs"] or source["elrs"]
    seeds = params["seeds"] or source["seeds"]
    epochs = int(params["pretrain_epochs"]) or source["epochs"]
    changes = {}
    if epochs != source["epochs"]:
        if not source["sharpness_every"]:
            raise ValueError(f"pretrain_epochs {epochs} differs from the epochs of {THREE_REGIMES} ({source['epochs']}), "
                             f"whose runs measure no sharpness, so the pre-training runs would be those runs (epochs "
                             "do not name a run); set pretrain_epochs to 0")
        changes["sharpness_every"] = 0
    return [base_config(source, elr=float(elr), seed=int(seed), epochs=epochs, **changes)
            for seed in seeds for elr in elrs]


def fine_tuning_config(pretraining: RunConfig, params: dict[str, Any]) -> RunConfig:
    """Fine-tuning of ``pretraining``: from its final weights, ``finetune_epochs`` epochs on the sphere at
    ``finetune_elr`` with the full metrics every epoch (the follow-up paper's protocol)."""
    return pretraining.replace(elr=float(params["finetune_elr"]), epochs=params["finetune_epochs"],
                               dense_metric_epochs=params["finetune_epochs"], sharpness_every=0,
                               init_from=pretraining.run_id)


@register(FINE_TUNING)
def fine_tuning_plan(params: dict[str, Any]) -> list[RunConfig]:
    """The pre-training runs (:func:`pretraining_configs`), then a fine-tuning run
    (:func:`fine_tuning_config`) from each of them that has finished in the store; ``compute`` plans
    again after each pass, so the fine-tuning runs follow their pre-training. A pre-training run that
    diverged (NaN loss) has no end point to start from and gets none."""
    from .plans import preset_store  # the plans module imports this one

    store = preset_store(params["preset"])
    pretraining = pretraining_configs(params)
    finished = [c for c in pretraining if (r := load(c, store)) is not None and r.status.status == "done"]
    return pretraining + [fine_tuning_config(c, params) for c in finished]
