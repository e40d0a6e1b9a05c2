"""The model and optimizer of one run, built from its :class:`RunConfig` (used by the engines).

The science modules (:mod:`.models`, :mod:`.optim`) know networks and optimizers, not runs; these
factories translate a run's configuration into them: the body drawn from ``config.seed``, the frozen
head from ``config.head_seed`` (paper §4), and :class:`SphereSGD` at ``config.elr`` (sphere mode,
paper §4) or SGD with ``lr``, ``weight_decay`` and ``momentum`` (sgd mode, paper §6).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .config import RunConfig
from .models import ConvNetSI, ResNet18SI, si_parameters
from .optim import SphereSGD

_BUILDERS: dict[str, Callable[[RunConfig, int, int], nn.Module]] = {
    "convnet_si": lambda c, i, k: ConvNetSI(c.width, c.depth, i, k, affine=False,
                                            head_norm=c.head_norm, head_seed=c.head_seed),
    "convnet_af": lambda c, i, k: ConvNetSI(c.width, c.depth, i, k, affine=True,
                                            head_norm=c.head_norm, head_seed=c.head_seed),
    "resnet18_si": lambda c, i, k: ResNet18SI(c.width, i, k, affine=False,
                                              head_norm=c.head_norm, head_seed=c.head_seed),
    "resnet18_af": lambda c, i, k: ResNet18SI(c.width, i, k, affine=True,
                                              head_norm=c.head_norm, head_seed=c.head_seed),
}


def build_model(config: RunConfig, in_channels: int, num_classes: int) -> nn.Module:
    """The model of ``config``: body drawn from ``config.seed``, head from ``config.head_seed``.

    The global RNG is left untouched, so building a model has no side effects.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = _BUILDERS[config.model](config, in_channels, num_classes)
    return model


def make_optimizer(config: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer of a run: :class:`SphereSGD` on the SI tensors (sphere mode), or
    ``torch.optim.SGD(lr, weight_decay, momentum)`` on every trainable parameter (sgd mode)."""
    if config.is_sphere:
        return SphereSGD(si_parameters(model), config.elr, config.constraint, config.grouping)
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(trainable, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)
