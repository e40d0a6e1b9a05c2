"""Chapter 04, fine-tuning (the authors' 2024 follow-up): pre-training on the sphere at the ELRs of the
three regimes for T1 epochs, then T2 epochs at a small ELR from each stored end point."""

from __future__ import annotations

from dataclasses import dataclass

from .. import presets
from ..config import RunConfig
from ..engine import load
from ..store import RunStore
from . import three_regimes
from .base import Params as _Params

NOTEBOOK = "04_fine_tuning"


@dataclass(frozen=True)
class Params(_Params):
    notebook = NOTEBOOK
    pretrain_elrs: tuple[float, ...] = (1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2)  # pre-training ELRs; empty: the three-regimes chapter's grid
    pretrain_epochs: int = 100  # pre-training epochs T1; 0: the three-regimes chapter's epochs (its runs are reused)
    seeds: tuple[int, ...] = ()  # init seeds; empty: the three-regimes chapter's seeds
    finetune_elr: float = 5e-4  # fine-tuning ELR on the sphere (regime 1 of the three-regimes chapter)
    finetune_epochs: int = 50  # fine-tuning epochs T2 (full metrics every epoch)
    average_epochs: int = 10  # test errors: mean over the evaluated epochs among the last this many epochs of a run

    def sphere(self) -> three_regimes.Params:
        """The three-regimes chapter's parameters under the same preset (network, data, metric schedule)."""
        return three_regimes.Params.from_preset(self.preset)


def pretraining_configs(params: Params) -> list[RunConfig]:
    """The pre-training runs: the three-regimes chapter's setting at ``pretrain_elrs`` x ``seeds`` for
    ``pretrain_epochs`` epochs ($T_1$); an empty list takes that chapter's ELR grid or seeds.

    ``pretrain_epochs = 0`` (or that chapter's epochs) reuses that chapter's runs. Other values train
    runs of their own without sharpness measurements: a run's epochs do not name it (a longer run
    extends a shorter one), so the missing sharpness is what names them apart, and a three-regimes
    chapter that measures no sharpness cannot have a different ``pretrain_epochs``.
    """
    source = params.sphere()
    elrs = params.pretrain_elrs or source.elrs
    seeds = params.seeds or source.seeds
    epochs = params.pretrain_epochs or source.epochs
    changes = {}
    if epochs != source.epochs:
        if not source.sharpness_every:
            raise presets.PresetError(
                f"{presets.where(params.preset, NOTEBOOK)}: pretrain_epochs {epochs} differs from the epochs of "
                f"{three_regimes.NOTEBOOK} ({source.epochs}), whose runs measure no sharpness, so the pre-training "
                "runs would be those runs (epochs do not name a run); set pretrain_epochs to 0")
        changes["sharpness_every"] = 0
    return [three_regimes.base_config(source, elr=elr, seed=seed, epochs=epochs, **changes)
            for seed in seeds for elr in elrs]


def fine_tuning_config(pretraining: RunConfig, params: Params) -> RunConfig:
    """Fine-tuning of ``pretraining``: from its final weights, ``finetune_epochs`` epochs on the sphere at
    ``finetune_elr`` with the full metrics every epoch (the follow-up paper's protocol)."""
    return pretraining.replace(elr=params.finetune_elr, epochs=params.finetune_epochs,
                               dense_metric_epochs=params.finetune_epochs, sharpness_every=0,
                               init_from=pretraining.run_id)


def plan(params: Params, store: RunStore | None = None) -> list[RunConfig]:
    """The pre-training runs, then a fine-tuning run from each of them that has finished in the store;
    the sweep plans again after each pass, so the fine-tuning runs follow their pre-training. A
    pre-training run that diverged has no end point to start from and gets none."""
    store = store if store is not None else presets.preset_store(params.preset)
    pretraining = pretraining_configs(params)
    finished = [c for c in pretraining if (r := load(c, store)) is not None and r.status.status == "done"]
    return pretraining + [fine_tuning_config(c, params) for c in finished]
