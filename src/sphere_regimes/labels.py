"""What a run is, in words: the label that listings (``status``, ``ls``), sweep lines and exports show.

:meth:`RunConfig.label` names a run from its configuration alone; :func:`describe` adds what only the
store knows:

* a fine-tuning run says where it starts: ``pre-trained at ELR 0.001 for 200 → ELR 0.0005``, read from
  its pre-training run's config;
* a finished SGD run with weight decay says the effective learning rate it settled at, the equilibrium
  ELR of :func:`sphere_regimes.conventional.equilibrium_elr` (the median of ``lr / ||w||^2`` over the
  last quarter of its epochs; paper §6). Without momentum the angular update per step settles at
  ``sqrt(2 lr wd)`` (:func:`~sphere_regimes.conventional.angular_update_theory`); as that angle is
  ``ELR * ||g~||`` (``g~`` the gradient at the point scaled to unit norm, the effective gradient), the
  equilibrium ELR is ``sqrt(2 lr wd) / ||g~||``: it depends on the gradient the run meets, so it is read
  from the run, not computed from lr and wd alone.
"""

from __future__ import annotations

from .config import RunConfig
from .conventional import equilibrium_elr
from .engine import load
from .store import RunResult, RunStore


def describe(config: RunConfig, store: RunStore, result: RunResult | None = None) -> str:
    """:meth:`RunConfig.label`, saying what a fine-tuning run starts from and at which ELR a finished SGD
    run with weight decay settled; ``result`` is the run as :func:`sphere_regimes.engine.load` gives it
    (read from ``store`` when not given). Raises :class:`~sphere_regimes.store.StoreError` on a damaged run."""
    if config.init_from is not None:
        return _fine_tuning_label(config, store)
    if config.is_sphere or config.weight_decay == 0:
        return config.label()
    result = result if result is not None else load(config, store)
    return config.label() + _equilibrium_note(result)


def _fine_tuning_label(config: RunConfig, store: RunStore) -> str:
    source_dir = store.root / config.init_from
    if not (source_dir / "config.json").exists():
        return f"{config.label()}, fine-tuned from run {config.init_from} (not in the store)"
    source = store.read_config(source_dir)
    before = f"ELR {source.elr:g}" if source.is_sphere else f"SGD lr {source.lr:g} wd {source.weight_decay:g}"
    return (f"{config.model}-{config.width} {config.dataset} pre-trained at {before} for {source.epochs} → "
            f"ELR {config.elr:g} ({config.constraint}) seed {config.seed}")


def _equilibrium_note(result: RunResult | None) -> str:
    """``, equilibrium ELR 0.0123`` for a finished SGD run, ``, diverged: no equilibrium ELR``, or nothing
    for a run that has not finished (or recorded too few epochs to tell)."""
    if result is not None and result.status.status == "diverged":
        return ", diverged: no equilibrium ELR"
    elr = settled_elr(result)
    return "" if elr is None else f", equilibrium ELR {elr:.3g}"


def settled_elr(result: RunResult | None) -> float | None:
    """The equilibrium ELR (:func:`~sphere_regimes.conventional.equilibrium_elr`) of a finished SGD run with
    weight decay; ``None`` for a sphere run, a run without weight decay, one that has not finished or
    diverged, or one with no recorded ELR after the initial point."""
    if result is None or result.config.is_sphere or result.config.weight_decay == 0 \
            or result.status.status != "done":
        return None
    try:
        return equilibrium_elr(result.metrics)
    except ValueError:
        return None
