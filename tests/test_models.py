"""Models: architecture, scale invariance, the frozen shared head, and SI-group discovery."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sphere_regimes import ConvNetSI, ResNet18SI, RunConfig, si_parameters
from sphere_regimes.factories import build_model
from sphere_regimes.metrics import scale_invariance_gap


def _set_bn_eps(model: nn.Module, eps: float) -> None:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = eps


def _batch(channels: int, size: int, n: int = 16, seed: int = 0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, size, size, generator=generator, dtype=dtype)
    return x, torch.randint(0, 10, (n,), generator=generator)


def test_convnet_si_matches_the_paper_architecture():
    model = ConvNetSI(width=32, depth=3, in_channels=3, num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 32), (32, 64), (64, 128), (128, 256)]
    assert all(c.bias is None and c.kernel_size == (3, 3) for c in convs)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 4 and not any(bn.affine for bn in norms)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 3
    assert model.head.in_features == 256 and model.head.bias is not None


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_models_accept_mnist_and_cifar_shapes(channels, size):
    for model in (ConvNetSI(8, 3, channels, 10), ResNet18SI(4, channels, 10)):
        x, _ = _batch(channels, size, n=4, dtype=torch.float32)
        assert model(x).shape == (4, 10)


def test_every_convnet_layer_is_scale_invariant_on_its_own():
    """L(c w_i) = L(w_i) for each conv tensor separately; exact when BN eps is negligible.

    With BN's eps = 1e-5 the normalisation x / sqrt(var + eps) deviates from invariance by about
    eps / (2 var) * |1 - 1/c^2|; the pre-BN variances at this init are ~1e-2, hence the 1e-3 bound.
    """
    torch.manual_seed(0)
    model = ConvNetSI(8, 3, 1, 10).double()
    x, y = _batch(1, 28)
    si = si_parameters(model)
    assert len(si) == 4
    for scale in (0.5, 3.0, 100.0):  # tiny scales meet BN eps: not invariant there
        for tensor in si.values():
            assert scale_invariance_gap(model, [tensor], x, y, scale) < 1e-3
    _set_bn_eps(model, 1e-30)
    for tensor in si.values():
        assert scale_invariance_gap(model, [tensor], x, y, 37.0) < 1e-12


def test_resnet_is_jointly_but_not_layerwise_scale_invariant():
    model = ResNet18SI(4, 3, 10).double()
    _set_bn_eps(model, 1e-30)
    x, y = _batch(3, 32)
    si = list(si_parameters(model).values())
    assert len(si) == 1 + 8 * 2 + 3  # stem, 8 blocks x 2 convs, 3 down-sampling shortcuts
    assert scale_invariance_gap(model, si, x, y, 5.0) < 1e-10
    # A single residual-branch conv changes the balance with the skip path: not SI alone.
    conv2 = model.blocks[0].conv2.weight
    assert scale_invariance_gap(model, [conv2], x, y, 5.0) > 1e-3


def test_gradient_is_orthogonal_to_each_si_tensor():
    model = ConvNetSI(8, 3, 1, 10).double()
    _set_bn_eps(model, 1e-30)
    x, y = _batch(1, 28)
    si = list(si_parameters(model).values())
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), si)
    for w, g in zip((w.detach() for w in si), grads):
        assert abs(float((w * g).sum())) < 1e-10 * float(w.norm() * g.norm()) + 1e-14


def test_head_is_frozen_scaled_and_shared_across_seeds():
    base = RunConfig(width=8, elr=1e-3)
    a = build_model(base, 1, 10)
    b = build_model(base.replace(seed=7, elr=1e-1), 1, 10)
    c = build_model(base.replace(head_seed=1), 1, 10)
    assert not any(p.requires_grad for p in a.head.parameters())
    assert float(a.head.weight.norm()) == pytest.approx(10.0, rel=1e-6)
    assert torch.equal(a.head.weight, b.head.weight) and torch.equal(a.head.bias, b.head.bias)
    assert not torch.equal(a.head.weight, c.head.weight)
    assert not torch.equal(a.features[0].weight, b.features[0].weight)
    assert torch.equal(a.features[0].weight, c.features[0].weight)


def test_same_seed_gives_the_same_start_for_every_elr_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = build_model(RunConfig(width=8, elr=1e-5), 1, 10)
    b = build_model(RunConfig(width=8, elr=1e-1), 1, 10)
    assert torch.equal(torch.rand(3), expected)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_affine_variants_train_bn_and_head():
    for name in ("convnet_af", "resnet18_af"):
        model = build_model(RunConfig(model=name, width=4, optimizer="sgd", lr=0.1), 3, 10)
        assert model.head.weight.requires_grad
        assert any(m.affine for m in model.modules() if isinstance(m, nn.BatchNorm2d))
        si = si_parameters(model)
        assert all(p.dim() == 4 for p in si.values())


def test_si_parameters_found_by_tracing_a_custom_model():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4, affine=False), nn.ReLU(),
        nn.Conv2d(4, 4, 3), nn.ReLU(),  # has a bias and no BN: not SI
        nn.Conv2d(4, 6, 3, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10),
    ).double()
    names = list(si_parameters(model))
    assert names == ["0.weight", "5.weight"]
    x, y = _batch(1, 12)
    _set_bn_eps(model, 1e-30)
    assert scale_invariance_gap(model, list(si_parameters(model).values()), x, y, 4.0) < 1e-12


def test_model_without_si_parameters_gets_a_clear_error():
    with pytest.raises(ValueError, match="no scale-invariant parameters"):
        si_parameters(nn.Sequential(nn.Linear(3, 3), nn.ReLU()))
