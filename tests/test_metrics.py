"""The Hutchinson sharpness on the unit sphere against the exact Hessian trace, and its invariances."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from sphere_regimes import RunConfig, si_parameters
from sphere_regimes.data import DeviceData
from sphere_regimes.factories import build_model
from sphere_regimes.metrics import hutchinson_sharpness

N_IMAGES = 64  # one minibatch: the exact Hessian below is of that minibatch's loss


@pytest.fixture
def setup(fashion_mnist):
    """A width-2 ConvNetSI in float64 at an init where the loss is moderate (head norm 1), with
    BN eps ~ 0 so that it is exactly scale-invariant (eps = 1e-5 breaks that at the 1e-4 level)."""
    config = RunConfig(width=2, depth=1, head_norm=1.0, elr=1e-2, device="cpu", dtype="float64")
    data = DeviceData(fashion_mnist, torch.device("cpu"), torch.float64, train_size=N_IMAGES)
    model = build_model(config, 1, 10).double().to(memory_format=torch.channels_last)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = 1e-30
    return model, data


def _exact_hessian(model, data) -> tuple[torch.Tensor, list[int]]:
    """Dense Hessian of the train-mode minibatch loss in the flattened SI weights."""
    si = si_parameters(model)
    names, shapes = list(si), [p.shape for p in si.values()]
    sizes = [p.numel() for p in si.values()]
    x, y = data.train_x[:N_IMAGES], data.train_y[:N_IMAGES]
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def loss(flat: torch.Tensor) -> torch.Tensor:
        params = {n: t.view(s) for n, t, s in zip(names, flat.split(sizes), shapes)}
        return F.cross_entropy(functional_call(model, params, (x,)), y)

    flat = torch.cat([p.detach().flatten() for p in si.values()])
    hessian = torch.autograd.functional.hessian(loss, flat)
    model.load_state_dict(state)  # the functional calls updated the BN running statistics
    return hessian, sizes


@pytest.mark.slow
def test_hutchinson_matches_the_exact_trace_within_its_standard_error(setup):
    """E[v^T H v] = tr H; with Rademacher v the variance per probe is 2 sum_{i != j} H_ij^2."""
    model, data = setup
    hessian, sizes = _exact_hessian(model, data)
    probes = 400
    estimate = hutchinson_sharpness(model, data, si_parameters(model), N_IMAGES, N_IMAGES, probes,
                                    torch.Generator().manual_seed(0))
    norm2 = sum(float((p.detach() ** 2).sum()) for p in si_parameters(model).values())
    off_diagonal = hessian - torch.diag(torch.diagonal(hessian))
    stderr = math.sqrt(2 * float((off_diagonal ** 2).sum()) / probes) * norm2
    exact = float(torch.trace(hessian)) * norm2
    assert stderr < 0.1 * abs(exact)  # the check below is sharp
    assert abs(estimate.total - exact) < 4 * stderr + 1e-9 * abs(exact)
    blocks = torch.cumsum(torch.tensor([0, *sizes]), 0)
    for (name, value), low, high in zip(estimate.per_layer.items(), blocks[:-1], blocks[1:]):
        block = hessian[low:high, low:high]
        w2 = float((si_parameters(model)[name].detach() ** 2).sum())
        block_stderr = math.sqrt(2 * float(((hessian[low:high] ** 2).sum() - (torch.diagonal(block) ** 2).sum()))
                                 / probes) * w2
        assert abs(value - float(torch.trace(block)) * w2) < 4 * block_stderr + 1e-9


def test_radial_direction_carries_no_curvature(setup):
    """H w = -grad L for scale-invariant w, hence w^T H w = 0: the tangent trace is tr H."""
    model, data = setup
    hessian, _ = _exact_hessian(model, data)
    w = torch.cat([p.detach().flatten() for p in si_parameters(model).values()])
    assert abs(float(w @ hessian @ w)) < 1e-8 * float(hessian.abs().sum()) * float(w @ w)


def test_sharpness_is_scale_invariant_and_leaves_training_state_alone(setup):
    """||w||^2 tr H(w) is the same at c w (same probes); BN buffers and .grad untouched."""
    model, data = setup
    si = si_parameters(model)
    for p in si.values():
        p.grad = torch.full_like(p, 0.25)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    before = hutchinson_sharpness(model, data, si, 32, N_IMAGES, 3, torch.Generator().manual_seed(1))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(p.grad, torch.full_like(p, 0.25)) for p in si.values())
    with torch.no_grad():
        for p in si.values():
            p.mul_(7.0)
    after = hutchinson_sharpness(model, data, si, 32, N_IMAGES, 3, torch.Generator().manual_seed(1))
    assert after.total == pytest.approx(before.total, rel=1e-6)
    for name in before.per_layer:
        assert after.per_layer[name] == pytest.approx(before.per_layer[name], rel=1e-6)


@pytest.mark.slow
def test_engine_records_sharpness_on_its_schedule(tiny_config, store):
    from sphere_regimes import run

    config = tiny_config.replace(epochs=3, sharpness_every=2, sharpness_images=128, sharpness_probes=1)
    metrics = run(config, store).metrics
    recorded = metrics["sharpness"].notna()
    assert list(recorded) == [True, False, True, True]  # epochs 0, 2 and the last
    layers = [c for c in metrics.columns if c.startswith("sharpness/")]
    assert len(layers) == 4
    assert tiny_config.run_id != config.run_id
    assert "sharpness" not in run(tiny_config, store).metrics.columns
