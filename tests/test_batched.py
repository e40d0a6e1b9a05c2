"""Batched engine: K fused ConvNetSI trained at once equal K one-at-a-time SphereSGD runs."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from sphere_regimes import RunConfig, SphereSGD, engine, run, si_parameters
from sphere_regimes.batched import (BatchedConvNetSI, BatchedSphereSGD, BatchedSweep, per_model_cross_entropy,
                                    per_model_norms)
from sphere_regimes.data import DeviceData
from sphere_regimes.factories import build_model
from sphere_regimes.models import ConvNetSI
from sphere_regimes.optim import joint_norm

ELRS = (1e-3, 1e-2, 1e-1)  # regimes 1-3 of a width-4 net: from tiny steps to the largest ones


def _fused_si(model: BatchedConvNetSI) -> list[torch.Tensor]:
    names = model.si_parameter_names()
    return [p for n, p in model.named_parameters() if n in names]


def _train_both(fashion_mnist, elrs, dtype, steps: int, seeds=(0, 0, 0), batch_size: int = 128):
    """Per-step losses and final models of K single SphereSGD runs and of the fused model, same batches."""
    data = DeviceData(fashion_mnist, torch.device("cpu"), dtype, train_size=512)
    configs = [RunConfig(train_size=512, width=4, batch_size=batch_size, elr=e, seed=s, dtype=str(dtype).removeprefix("torch."),
                         device="cpu") for e, s in zip(elrs, seeds)]
    singles = [build_model(c, 1, 10).to(dtype=dtype, memory_format=torch.channels_last) for c in configs]
    fused = BatchedConvNetSI.from_models(singles).to(dtype=dtype, memory_format=torch.channels_last)
    optimizers = [SphereSGD(si_parameters(m), e) for m, e in zip(singles, elrs)]
    fused_optimizer = BatchedSphereSGD(_fused_si(fused), elrs)
    single_losses, fused_losses = [], []
    batches = list(data.train_batches(1, 0, batch_size))
    for step in range(steps):
        x, y = batches[step % len(batches)]
        losses = []
        for model, optimizer in zip(singles, optimizers):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        single_losses.append(torch.stack(losses))
        loss = per_model_cross_entropy(fused(x), y)
        fused_optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        fused_optimizer.step()
        fused_losses.append(loss.detach())
    return singles, optimizers, fused, fused_optimizer, torch.stack(single_losses), torch.stack(fused_losses)


@pytest.mark.parametrize(("dtype", "elrs", "steps", "batch_size", "tolerance"), [
    (torch.float64, ELRS, 4, 64, 1e-9),  # the same arithmetic: equal up to rounding
    (torch.float32, (1e-4, 1e-3, 1e-2), 2, 128, 1e-4),  # float32 rounding grows fast in the first steps
])
def test_batched_steps_equal_one_model_at_a_time(fashion_mnist, dtype, elrs, steps, batch_size, tolerance):
    torch.set_num_threads(1)
    singles, optimizers, fused, fused_optimizer, single_losses, fused_losses = _train_both(
        fashion_mnist, elrs, dtype, steps, batch_size=batch_size)
    torch.testing.assert_close(fused_losses, single_losses, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(fused_optimizer.lrs.double(), torch.tensor([o.lr for o in optimizers],
                                                                         dtype=torch.float64), rtol=1e-6, atol=0)
    for k, (model, state) in enumerate(zip(singles, fused.split())):
        reference = model.state_dict()
        assert state.keys() == reference.keys()
        for key, value in reference.items():  # conv weights, BN running mean/var and counters, frozen head
            torch.testing.assert_close(state[key], value, rtol=tolerance, atol=tolerance, msg=f"model {k} {key}")
    norms = per_model_norms(_fused_si(fused), len(elrs))
    torch.testing.assert_close(norms, fused_optimizer.radius, rtol=1e-6 if dtype == torch.float32 else 1e-12, atol=0)
    for k, optimizer in enumerate(optimizers):
        assert float(norms[k].detach()) == pytest.approx(optimizer.radius, rel=1e-6)
    assert single_losses[-1].unique().numel() == len(elrs)  # the ELRs did lead apart


def test_each_model_stays_on_its_own_sphere(fashion_mnist):
    """Different initial points (seeds) give different radii; each is kept to 1e-6 relative at large ELRs."""
    torch.set_num_threads(1)
    _, optimizers, fused, fused_optimizer, _, _ = _train_both(
        fashion_mnist, (0.02, 0.05, 0.1), torch.float32, steps=60, seeds=(0, 1, 2), batch_size=32)
    radii = fused_optimizer.radius
    assert radii.unique().numel() == 3
    torch.testing.assert_close(radii, torch.tensor([o.radius for o in optimizers]), rtol=1e-6, atol=0)
    torch.testing.assert_close(per_model_norms(_fused_si(fused), 3), radii, rtol=1e-6, atol=0)
    for k, state in enumerate(fused.split()):
        layers = [state[n] for n in ConvNetSI(4, 3, 1, 10).si_parameter_names()]
        assert float(joint_norm(layers)) == pytest.approx(float(radii[k]), rel=1e-6)


@pytest.mark.parametrize("changes", [{}, {"drop_last_batch": True, "batch_size": 96}], ids=["all", "whole-batches"])
def test_batched_sweep_equals_the_engine_run_by_run(tiny_config, store, fashion_mnist, monkeypatch, changes):
    """Metric rows and final weights of :class:`BatchedSweep` equal :func:`run` of each config (float64;
    the store keeps 9 significant digits of the metrics), with the last partial batch or without it."""
    torch.set_num_threads(1)
    small = dataclasses.replace(fashion_mnist, test_images=fashion_mnist.test_images[:128],
                                test_labels=fashion_mnist.test_labels[:128])
    monkeypatch.setattr(engine, "load_raw", lambda name: small)
    configs = [tiny_config.replace(elr=e, dtype="float64", train_size=256, **changes) for e in ELRS]
    drop_last_batch = changes.get("drop_last_batch", False)
    sweep = BatchedSweep(configs, DeviceData(small, torch.device("cpu"), torch.float64, train_size=256,
                                             drop_last_batch=drop_last_batch))
    frames = sweep.run()
    columns = ["train_loss_running", "train_error_running", "train_loss", "train_error", "effective_grad_norm",
               "test_loss", "test_error", "si_norm", "elr"]
    for config, frame, state in zip(configs, frames, sweep.state_dicts()):
        expected = run(config, store).metrics
        assert list(frame.index) == list(expected.index) == [0, 1, 2]
        torch.testing.assert_close(torch.tensor(frame[columns].to_numpy()),
                                   torch.tensor(expected[columns].to_numpy()), rtol=1e-8, atol=0, equal_nan=True)
        for key, value in store.load_checkpoint(config)["model"].items():
            torch.testing.assert_close(state[key], value, rtol=1e-9, atol=1e-12)


def test_fusing_and_splitting_round_trip_and_the_forward_pass_is_per_model(fashion_mnist):
    models = [ConvNetSI(4, 3, 1, 10, head_seed=s).double() for s in range(3)]  # different heads too
    for seed, model in enumerate(models):
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in si_parameters(model).values():
                p.normal_()
    fused = BatchedConvNetSI.from_models(models)
    assert fused.features[0].weight.dtype == torch.float64
    for state, model in zip(fused.split(), models):
        for key, value in model.state_dict().items():
            assert torch.equal(state[key], value), key
    x = (fashion_mnist.train_images[:16].double() / 255 - 0.286) / 0.353
    fused.eval()
    logits = fused(x)
    for k, model in enumerate(models):
        torch.testing.assert_close(logits[k], model.eval()(x), rtol=1e-12, atol=1e-12)


def test_what_cannot_be_batched_is_refused_in_one_line(tiny_config):
    with pytest.raises(ValueError, match="another architecture"):
        BatchedConvNetSI.from_models([ConvNetSI(4, 3, 1, 10), ConvNetSI(8, 3, 1, 10)])
    with pytest.raises(ValueError, match="not a scale-invariant ConvNetSI"):
        BatchedConvNetSI.from_models([ConvNetSI(4, 3, 1, 10, affine=True)])
    with pytest.raises(ValueError, match="differ only in elr; seed, width differ"):
        BatchedSweep([tiny_config, tiny_config.replace(elr=0.1, seed=1, width=8)])
    with pytest.raises(ValueError, match="only ConvNetSI"):
        BatchedSweep([tiny_config.replace(model="resnet18_si")])
    with pytest.raises(ValueError, match="total norm constraint"):
        BatchedSweep([tiny_config.replace(constraint="individual")])
    with pytest.raises(ValueError, match="elrs must be finite"):
        BatchedSphereSGD([torch.ones(6, 2)], [1e-3, 0.0])
