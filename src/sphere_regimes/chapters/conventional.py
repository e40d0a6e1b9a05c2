"""Chapter 03, conventional training (paper §6): plain SGD with weight decay in the full parameter
space, read on the regime map of the three-regimes chapter."""

from __future__ import annotations

from dataclasses import dataclass

from .. import presets
from ..config import RunConfig
from ..data import DATASET_INFO
from ..store import RunStore
from . import three_regimes
from .base import Params as _Params

NOTEBOOK = "03_conventional_training"
SAME_NETWORK = ("dataset", "train_size", "width", "batch_size")
"""Parameters this chapter shares with the three-regimes chapter, whose regime map it reads."""


@dataclass(frozen=True)
class Params(_Params):
    notebook = NOTEBOOK
    dataset: str = "fashion_mnist"  # fashion_mnist, cifar10 or cifar100 (as in the three-regimes chapter)
    train_size: int = 10000  # first N training images (0: all of them)
    width: int = 8  # ConvNetSI width: channels of the first conv layer
    batch_size: int = 128  # images per step
    epochs: int = 150  # epochs per run
    dense_metric_epochs: int = 20  # full metrics (train-mode loss, test error, effective gradient) every epoch up to here
    metric_every: int = 5  # ... then every this many epochs
    lrs: tuple[float, ...] = (0.1, 0.3, 1.0)  # SGD learning rates of the grid
    weight_decays: tuple[float, ...] = (1e-3, 3e-3, 1e-2)  # weight decays of the grid (lambda: the step adds -lr * lambda * w)
    momentum: float = 0.0  # heavy-ball momentum of SGD
    af_pairs: tuple[tuple[float, float], ...] = ((0.1, 1e-3), (1.0, 1e-2))  # [lr, weight decay] pairs also trained with convnet_af
    seeds: tuple[int, ...] = (0,)  # init seeds (the frozen last layer is shared by all runs)
    tolerance: float = 0.2  # an angular update within this relative distance of its theory counts as at equilibrium

    def __post_init__(self) -> None:
        if self.dataset not in DATASET_INFO:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {sorted(DATASET_INFO)}")

    @property
    def num_classes(self) -> int:
        return DATASET_INFO[self.dataset].num_classes

    def sphere(self) -> three_regimes.Params:
        """The three-regimes chapter's parameters under the same preset; its network and data must be this
        chapter's (:data:`SAME_NETWORK`)."""
        sphere = three_regimes.Params.from_preset(self.preset)
        different = [k for k in SAME_NETWORK if getattr(self, k) != getattr(sphere, k)]
        if different:
            raise presets.PresetError(
                f"{presets.where(self.preset, NOTEBOOK)}: this chapter is read on the regime map of "
                f"{three_regimes.NOTEBOOK} and must train the same network on the same data, but {different} differ")
        return sphere


def plan(params: Params, store: RunStore | None = None) -> list[RunConfig]:
    """Every (lr, weight decay) of the grid on the fully scale-invariant net with the frozen last layer,
    then the ``convnet_af`` variant (affine BN, trainable last layer) at ``af_pairs``, for every seed; the
    three-regimes chapter's setting otherwise. The grid does not depend on finished runs, so ``store``
    (which the other chapters' plans read) is not read."""
    params.sphere()
    runs = [("convnet_si", lr, wd) for lr in params.lrs for wd in params.weight_decays]
    runs += [("convnet_af", lr, wd) for lr, wd in params.af_pairs]
    return [RunConfig(dataset=params.dataset, train_size=params.train_size or None, model=model, width=params.width,
                      batch_size=params.batch_size, epochs=params.epochs, dense_metric_epochs=params.dense_metric_epochs,
                      metric_every=params.metric_every, sharpness_every=0, optimizer="sgd", lr=lr, weight_decay=wd,
                      momentum=params.momentum, seed=seed)
            for seed in params.seeds for model, lr, wd in runs]
