"""SphereSGD: norm preservation, equality with a naive reference, ELR-only dependence."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sphere_regimes import ConvNetSI, SphereSGD, si_parameters
from sphere_regimes.optim import joint_norm


def _real_batches(raw, n_batches: int, batch_size: int = 64, dtype=torch.float32):
    x = (raw.train_images[: n_batches * batch_size].to(dtype) / 255 - 0.286) / 0.353
    y = raw.train_labels[: n_batches * batch_size]
    return list(zip(x.split(batch_size), y.split(batch_size)))


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, batches, steps: int) -> None:
    for step in range(steps):
        x, y = batches[step % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def _set_bn_eps(model: nn.Module, eps: float) -> None:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = eps


def test_joint_norm_is_preserved_to_1e6_after_hundreds_of_steps(fashion_mnist):
    torch.manual_seed(0)
    model = ConvNetSI(4, 3, 1, 10)
    si = list(si_parameters(model).values())
    radius = float(joint_norm([p.detach() for p in si]))
    optimizer = SphereSGD(si, elr=0.05)  # regime-3 ELR: large steps, the hardest case
    _train(model, optimizer, _real_batches(fashion_mnist, 4), steps=300)
    assert abs(float(joint_norm([p.detach() for p in si])) / radius - 1) < 1e-6
    individual = [float(p.detach().norm()) for p in si]
    assert max(individual) / min(individual) != pytest.approx(1.0)  # the layers' shares did move


def test_individual_constraint_keeps_each_layer_and_filter_norm(fashion_mnist):
    batches = _real_batches(fashion_mnist, 3)
    for grouping in ("layer", "filter"):
        torch.manual_seed(0)
        model = ConvNetSI(4, 3, 1, 10)
        si = list(si_parameters(model).values())
        before = [p.detach().flatten(1).norm(dim=1) if grouping == "filter" else p.detach().norm() for p in si]
        optimizer = SphereSGD(si, elr=0.01, constraint="individual", grouping=grouping)
        _train(model, optimizer, batches, steps=100)
        after = [p.detach().flatten(1).norm(dim=1) if grouping == "filter" else p.detach().norm() for p in si]
        for b, a in zip(before, after):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_the_official_individual_constraint_puts_every_filter_at_the_rms_norm(fashion_mnist):
    """grouping "filter_rms": the initial point is moved so that every filter has norm r = ||w0|| / sqrt(F),
    the total norm is unchanged, and every step ends there again, equal to a hand-written projected step."""
    torch.manual_seed(0)
    model = ConvNetSI(4, 3, 1, 10).double()
    si = list(si_parameters(model).values())
    radius, filters = float(joint_norm(si)), sum(p.shape[0] for p in si)
    r = radius / math.sqrt(filters)
    elr = 1e-2
    optimizer = SphereSGD(si, elr=elr, constraint="individual", grouping="filter_rms")
    for p in si:
        torch.testing.assert_close(p.detach().flatten(1).norm(dim=1), torch.full((p.shape[0],), r, dtype=p.dtype))
    assert float(joint_norm(si)) == pytest.approx(radius, rel=1e-12)
    assert optimizer.lr / r ** 2 == pytest.approx(filters * elr)  # each filter's ELR
    x, y = _real_batches(fashion_mnist, 1, dtype=torch.float64)[0]
    start = [p.detach().clone() for p in si]
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    grads = [p.grad.clone() for p in si]
    optimizer.step()
    for p, w, g in zip(si, start, grads):
        moved = (w - elr * radius ** 2 * g).flatten(1)
        expected = (moved * (r / moved.norm(dim=1, keepdim=True))).view_as(w)
        torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=1e-15)


def test_sphere_sgd_equals_naive_projected_gradient_reference(fashion_mnist):
    """Reference: w <- (w - lr g) * ||w_0|| / ||w - lr g|| with lr = elr ||w_0||^2, written out by hand."""
    batches = _real_batches(fashion_mnist, 3, dtype=torch.float64)
    torch.manual_seed(1)
    model = ConvNetSI(4, 3, 1, 10).double()
    reference = ConvNetSI(4, 3, 1, 10).double()
    reference.load_state_dict(model.state_dict())
    elr = 3e-3
    optimizer = SphereSGD(si_parameters(model), elr=elr)
    ref_params = list(si_parameters(reference).values())
    radius = math.sqrt(sum(float((p.detach() * p.detach()).sum()) for p in ref_params))
    lr = elr * radius ** 2
    for step in range(30):
        x, y = batches[step % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        grads = torch.autograd.grad(F.cross_entropy(reference(x), y), ref_params)
        with torch.no_grad():
            moved = [p - lr * g for p, g in zip(ref_params, grads)]
            norm = math.sqrt(sum(float((m * m).sum()) for m in moved))
            for p, m in zip(ref_params, moved):
                p.copy_(m * (radius / norm))
    for p, q in zip(si_parameters(model).values(), ref_params):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_trajectory_depends_on_the_elr_only(fashion_mnist):
    """Scaling w_0 by c and lr by c^2 (same ELR) gives the same trajectory, scaled by c."""
    batches = _real_batches(fashion_mnist, 3, dtype=torch.float64)
    torch.manual_seed(2)
    base = ConvNetSI(4, 3, 1, 10).double()
    _set_bn_eps(base, 1e-30)
    scaled = ConvNetSI(4, 3, 1, 10).double()
    scaled.load_state_dict(base.state_dict())
    _set_bn_eps(scaled, 1e-30)
    c = 7.0
    with torch.no_grad():
        for p in si_parameters(scaled).values():
            p.mul_(c)
    opt_base = SphereSGD(si_parameters(base), elr=1e-3)  # regime 1: no chaos to amplify rounding
    opt_scaled = SphereSGD(si_parameters(scaled), elr=1e-3)
    assert opt_scaled.lr == pytest.approx(c ** 2 * opt_base.lr)
    _train(base, opt_base, batches, 40)
    _train(scaled, opt_scaled, batches, 40)
    for p, q in zip(si_parameters(base).values(), si_parameters(scaled).values()):
        torch.testing.assert_close(q / c, p, rtol=1e-8, atol=1e-10)


def test_individual_elrs_satisfy_the_harmonic_identity(fashion_mnist):
    """eta_i = lr / ||w_i||^2 with sum_i 1/eta_i = 1/elr under the total constraint (paper §3)."""
    torch.manual_seed(3)
    model = ConvNetSI(4, 3, 1, 10)
    si = list(si_parameters(model).values())
    optimizer = SphereSGD(si, elr=2e-2)
    _train(model, optimizer, _real_batches(fashion_mnist, 2), steps=50)
    inverse_sum = sum(float(p.detach().norm()) ** 2 / optimizer.lr for p in si)
    assert inverse_sum == pytest.approx(1 / optimizer.elr, rel=1e-5)


def test_state_dict_round_trip_keeps_the_radius(fashion_mnist):
    torch.manual_seed(4)
    model = ConvNetSI(4, 3, 1, 10)
    optimizer = SphereSGD(si_parameters(model), elr=1e-2, constraint="individual")
    _train(model, optimizer, _real_batches(fashion_mnist, 2), steps=5)
    state = optimizer.state_dict()
    clone = ConvNetSI(4, 3, 1, 10)
    clone.load_state_dict(model.state_dict())
    with torch.no_grad():  # a different current norm must not change the restored radius
        for p in si_parameters(clone).values():
            p.mul_(2.0)
    restored = SphereSGD(si_parameters(clone), elr=1e-2, constraint="individual")
    restored.load_state_dict(state)
    assert restored.radius == optimizer.radius
    for p, q in zip(si_parameters(model).values(), si_parameters(clone).values()):
        torch.testing.assert_close(restored.state[q]["radius"], optimizer.state[p]["radius"])


@pytest.mark.parametrize("elr", [0.0, -1e-3, float("nan"), float("inf"), "0.1", None])
def test_bad_elr_is_rejected(elr):
    with pytest.raises(ValueError, match="elr"):
        SphereSGD([torch.ones(3, requires_grad=True)], elr=elr)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="at least one"):
        SphereSGD([], elr=1e-3)
    with pytest.raises(ValueError, match="constraint"):
        SphereSGD([torch.ones(3, requires_grad=True)], elr=1e-3, constraint="joint")
    with pytest.raises(ValueError, match="grouping"):
        SphereSGD([torch.ones(3, requires_grad=True)], elr=1e-3, constraint="individual", grouping="channel")
    with pytest.raises(ValueError, match="zero norm"):
        SphereSGD([torch.zeros(3, 2, requires_grad=True)], elr=1e-3)


def test_sphere_sgd_refuses_biases_and_batchnorm_affine_parameters_by_name():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match=r"got 2 0-d or 1-d tensor\(s\).*: tensor 1 \(4,\), tensor 2 \(4,\);") as error:
        SphereSGD(net.parameters(), elr=1e-2)
    assert "\n" not in str(error.value) and "si_parameters(model)" in str(error.value)
    with pytest.raises(ValueError, match=r": 1.weight \(4,\), 1.bias \(4,\);"):
        SphereSGD(dict(net.named_parameters()), elr=1e-2)


def test_si_parameters_keeps_a_bias_cancelled_by_batchnorm_and_names_the_layers_it_rejects():
    biased = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, affine=False), nn.ReLU(), nn.Flatten(),
                           nn.Linear(4 * 6 * 6, 2))
    assert list(si_parameters(biased)) == ["0.weight"]  # its bias is irrelevant: BatchNorm subtracts the mean
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    with pytest.raises(ValueError, match=r"0: its output feeds 1, not only BatchNorm; 3: its output feeds") as error:
        si_parameters(plain)
    assert "\n" not in str(error.value)
    frozen = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4)).requires_grad_(False)
    with pytest.raises(ValueError, match=r"0: its weight is frozen"):
        si_parameters(frozen)


def test_joint_norm_is_exported_and_a_plain_number_without_a_warning():
    import warnings

    from sphere_regimes import joint_norm as exported
    tensors = [torch.ones(2, 2, requires_grad=True), torch.ones(4, requires_grad=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(exported(tensors)) == pytest.approx(8 ** 0.5)
