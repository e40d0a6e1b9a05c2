"""Scale-invariant (SI) networks of the paper and the function that finds their SI groups.

A parameter tensor w is scale-invariant when L(c*w) = L(w) for every c > 0; here that holds
for every convolution whose output feeds a BatchNorm layer without learnable affine terms
(paper §2). The last layer is rescaled to a fixed Frobenius norm (10 in the paper) and frozen,
so that the whole trainable part of the net is scale-invariant (paper §4, "fully
scale-invariant" networks). Its weights come from ``head_seed`` alone, so they are identical
across runs; the body comes from the global RNG (a run's ``seed``, see
:func:`sphere_regimes.factories.build_model`), so that all ELRs of a sweep start from the same point.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def _frozen_head(in_features: int, num_classes: int, *, bias: bool, head_norm: float,
                 head_seed: int, trainable: bool) -> nn.Linear:
    """Linear layer drawn from ``head_seed`` only, weight rescaled to Frobenius norm ``head_norm``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(head_seed)
        head = nn.Linear(in_features, num_classes, bias=bias)
    with torch.no_grad():
        head.weight.mul_(head_norm / head.weight.norm())
    head.requires_grad_(trainable)
    return head


class ConvNetSI(nn.Module):
    """ConvNet of the paper (§4): conv3x3 -> BN -> ReLU, then ``depth`` blocks of
    conv3x3 -> BN -> ReLU -> MaxPool2 doubling the channels, global max-pool, Linear.

    Width 32 and depth 3 give 3 -> 32 -> 64 -> 128 -> 256 channels (paper's ConvNetSI). The
    global max-pool equals the official ``MaxPool2d(4)`` on 32x32 inputs and also handles
    28x28 inputs (3x3 maps). ``affine=True`` with a trainable last layer is the ``Af``
    variant for conventional training.
    """

    def __init__(self, width: int = 32, depth: int = 3, in_channels: int = 3, num_classes: int = 10,
                 *, affine: bool = False, head_norm: float = 10.0, head_seed: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv3x3(in_channels, width), nn.BatchNorm2d(width, affine=affine), nn.ReLU()]
        channels = width
        for _ in range(depth):
            layers += [_conv3x3(channels, 2 * channels), nn.BatchNorm2d(2 * channels, affine=affine),
                       nn.ReLU(), nn.MaxPool2d(2)]
            channels *= 2
        self.features = nn.Sequential(*layers)
        self.head = _frozen_head(channels, num_classes, bias=True, head_norm=head_norm,
                                 head_seed=head_seed, trainable=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.head(torch.amax(x, dim=(2, 3)))

    def si_parameter_names(self) -> list[str]:
        """Every conv weight: each one feeds a BatchNorm, so each is SI on its own."""
        return [n for n, p in self.named_parameters() if n.startswith("features.") and p.dim() == 4]


class PreActBlock(nn.Module):
    """Pre-activation basic block; the down-sampling shortcut is BN -> conv1x1 on the
    pre-activated input, so the residual stream stays homogeneous in the conv weights."""

    def __init__(self, in_channels: int, channels: int, stride: int, affine: bool) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, affine=affine)
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels, affine=affine)
        self.conv2 = _conv3x3(channels, channels)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.BatchNorm2d(in_channels, affine=affine),
                nn.Conv2d(in_channels, channels, kernel_size=1, stride=stride, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + skip


class ResNet18SI(nn.Module):
    """Pre-activation ResNet-18 with every BN ``affine=False``, BN in the down-sampling
    shortcut, and a final BN -> ReLU -> global average pool -> Linear without bias.

    Scaling *all* conv weights jointly by c scales the residual stream by c, which the final
    BN removes: the conv weights form one jointly scale-invariant group (the total
    constraint). A single layer is not SI on its own here (it changes the balance of a
    residual sum), unlike in :class:`ConvNetSI`. ``width=64`` is the standard ResNet-18.
    """

    def __init__(self, width: int = 64, in_channels: int = 3, num_classes: int = 10,
                 *, affine: bool = False, head_norm: float = 10.0, head_seed: int = 0) -> None:
        super().__init__()
        self.stem = _conv3x3(in_channels, width)
        blocks: list[nn.Module] = []
        channels = width
        for stage, out_channels in enumerate((width, 2 * width, 4 * width, 8 * width)):
            for index in range(2):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(PreActBlock(channels, out_channels, stride, affine))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(channels, affine=affine)
        self.head = _frozen_head(channels, num_classes, bias=False, head_norm=head_norm,
                                 head_seed=head_seed, trainable=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.blocks(self.stem(x))))
        return self.head(x.mean(dim=(2, 3)))

    def si_parameter_names(self) -> list[str]:
        """Every conv weight (jointly scale-invariant)."""
        return [n for n, p in self.named_parameters() if p.dim() == 4]


_NORMALISERS = (nn.modules.batchnorm._BatchNorm,)
_LINEAR_MAPS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def si_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The scale-invariant parameter tensors of ``model``, by name, in registration order.

    Models of this package declare them (``si_parameter_names``). For any other model the
    rule is structural, found by tracing it with ``torch.fx``: the trainable weight of a convolution
    or linear layer whose output goes *only* into BatchNorm layers (paper §2). Such a layer may keep
    its bias: BatchNorm subtracts the batch mean, which cancels the bias, so the weight is still
    scale-invariant and the bias is irrelevant (it is not returned, so SphereSGD does not train it).
    A model without SI tensors gets a ``ValueError`` that names each conv/linear layer and why it was
    rejected. Check a custom model numerically with :func:`sphere_regimes.metrics.scale_invariance_gap`.
    """
    named = dict(model.named_parameters())
    if hasattr(model, "si_parameter_names"):
        names, rejected = model.si_parameter_names(), {}
    else:
        names, rejected = _traced_si_names(model)
    if not names:
        why = "; ".join(f"{layer}: {reason}" for layer, reason in rejected.items()) or "it has no conv/linear layer"
        raise ValueError(f"{type(model).__name__} has no scale-invariant parameters (the weight of a trainable "
                         f"conv/linear layer whose output feeds only BatchNorm): {why}; pass the SI tensors to "
                         "SphereSGD explicitly")
    return {name: named[name] for name in names}


def _traced_si_names(model: nn.Module) -> tuple[list[str], dict[str, str]]:
    """The SI weights that tracing finds, and each rejected conv/linear layer with the reason."""
    try:
        graph_module = torch.fx.symbolic_trace(model)
    except Exception as error:  # noqa: BLE001 - fx raises many types for untraceable code
        raise ValueError(f"cannot trace {type(model).__name__} with torch.fx to find its scale-invariant "
                         f"parameters ({error}); pass the SI tensors to SphereSGD explicitly") from None
    modules = dict(graph_module.named_modules())
    names, rejected = [], {}
    for node in graph_module.graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], _LINEAR_MAPS):
            continue
        layer = modules[node.target]
        others = [str(user.target) for user in node.users
                  if user.op != "call_module" or not isinstance(modules[user.target], _NORMALISERS)]
        if not node.users or others:
            rejected[node.target] = f"its output feeds {', '.join(others) or 'nothing'}, not only BatchNorm"
        elif not layer.weight.requires_grad:
            rejected[node.target] = "its weight is frozen (requires_grad=False)"
        else:
            names.append(f"{node.target}.weight")
    return names, rejected
