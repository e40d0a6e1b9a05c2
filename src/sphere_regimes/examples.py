"""Example models for the regime map of your own network (:mod:`sphere_regimes.regime_map`) and the tutorial.

A factory for ``map_regimes`` (or ``sphere-regimes map --model MODULE:NAME``) is a function at module level
that takes no arguments and returns an ``nn.Module`` whose trainable tensors are all scale-invariant: here
bias-free convolutions feeding BatchNorm without affine terms, and a last layer rescaled to Frobenius norm
10 and frozen (paper §4, "fully scale-invariant" networks).
"""

from __future__ import annotations

import torch
from torch import nn


def small_convnet() -> nn.Sequential:
    """The tutorial's network for 28x28 grey images and 10 classes: two conv3x3 -> BN -> ReLU -> MaxPool2
    blocks (8 and 16 channels), then a frozen Linear head of Frobenius norm 10."""
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8, affine=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16, affine=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
    )
    head = model[-1]
    with torch.no_grad():
        head.weight.mul_(10 / head.weight.norm())
    head.requires_grad_(False)
    return model
