"""Factories for the regime-map tests (tests/test_regime_map.py): a tiny scale-invariant network for
28x28 grey images and the kinds of factory that ``map`` refuses."""

from __future__ import annotations

import torch
from torch import nn

NOT_CALLABLE = 3


def _body_and_head(frozen: bool) -> nn.Sequential:
    model = nn.Sequential(nn.Conv2d(1, 4, 5, stride=4, bias=False), nn.BatchNorm2d(4, affine=False), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    with torch.no_grad():
        model[-1].weight.mul_(10 / model[-1].weight.norm())
    model[-1].requires_grad_(not frozen)
    return model


def tiny_net() -> nn.Sequential:
    """One strided conv -> BN -> ReLU, then a frozen linear head of norm 10."""
    return _body_and_head(frozen=True)


def trainable_head() -> nn.Sequential:
    """:func:`tiny_net` with a trainable head (refused unless a head norm freezes it)."""
    return _body_and_head(frozen=False)


def no_si() -> nn.Sequential:
    """A linear classifier: nothing feeds BatchNorm."""
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))


def not_a_module() -> int:
    return 3
