"""Metrics with the paper's definitions (§4, Figure 1).

* Train loss and error: un-augmented training data in **train mode** (BatchNorm uses batch
  statistics, as during training); the pass restores the BN running statistics exactly.
* Test loss and error: eval mode (BN running statistics).
* Mean effective gradient norm: the mean over minibatches of ``||grad_w L_B(w)|| * ||w||``,
  at a fixed point w (the end of an epoch), over the SI tensors w jointly. It is the gradient
  norm the same network would have at unit SI norm.
* Geometry of the SI weights: total norm ``||w||``, per-layer norms, per-layer effective LRs
  ``eta_i = lr / ||w_i||^2`` (for the total constraint ``sum_i 1/eta_i = 1/elr``), cosine to
  the initial point, angle turned since the previous epoch and the mean and RMS angular update per step.
* Sharpness on the unit sphere (paper §5, regimes 1 and 2): ``||w||^2 tr(H(w))``, the trace of
  the Hessian of the train-mode loss in the SI weights, taken at the point rescaled to unit
  norm (``H(cw) = H(w)/c^2`` for SI weights). Hutchinson estimate, also per layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data import DeviceData
from .optim import joint_norm


@dataclass(frozen=True)
class TrainModePass:
    train_loss: float
    train_error: float
    effective_grad_norm: float


@dataclass(frozen=True)
class EvalPass:
    loss: float
    error: float


def forward(model: nn.Module, x: torch.Tensor, compute_dtype: torch.dtype | None = None) -> torch.Tensor:
    """``model(x)``; with ``compute_dtype`` under ``torch.autocast`` (convolutions and linear layers in
    that dtype, weights untouched), the logits then cast to float32 so that the loss and every reduction
    taken from them are float32. The backward of the result runs in the forward's precision."""
    if compute_dtype is None:
        return model(x)
    with torch.autocast(x.device.type, dtype=compute_dtype):
        logits = model(x)
    return logits.float()


def _batchnorm_buffers(model: nn.Module) -> list[torch.Tensor]:
    return [b for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for b in m.buffers()]


class preserved_batchnorm_state:  # noqa: N801 - used as a context manager
    """Context manager that restores every BatchNorm buffer (running mean/var, counter) on exit."""

    def __init__(self, model: nn.Module) -> None:
        self.buffers = _batchnorm_buffers(model)

    def __enter__(self) -> None:
        self.saved = [b.clone() for b in self.buffers]

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for buffer, saved in zip(self.buffers, self.saved):
                buffer.copy_(saved)


def train_mode_pass(model: nn.Module, data: DeviceData, si_params: Sequence[torch.Tensor],
                    batch_size: int, compute_dtype: torch.dtype | None = None) -> TrainModePass:
    """Train loss, train error and mean effective gradient norm at the current weights.

    One fused pass over the un-augmented training set in train mode (whole batches only when
    ``data.drop_last_batch``): for each minibatch B the
    loss L_B and ``g_B = ||grad_w L_B|| * ||w||``. Loss and error are means over samples;
    the effective gradient norm is the mean of g_B over minibatches (paper's definition).
    Parameter ``.grad`` fields and BN running statistics are left untouched.
    """
    was_training = model.training
    model.train()
    si_params = list(si_params)
    total_loss = torch.zeros((), dtype=torch.float64, device=data.device)
    wrong = torch.zeros((), dtype=torch.int64, device=data.device)
    grad_norm_sum = torch.zeros((), dtype=torch.float64, device=data.device)
    batches = count = 0
    with preserved_batchnorm_state(model):
        for x, y in data.eval_batches("train", batch_size):
            logits = forward(model, x, compute_dtype)
            loss = F.cross_entropy(logits, y)
            grads = torch.autograd.grad(loss, si_params)
            grad_norm_sum += joint_norm(grads).double()
            total_loss += loss.detach().double() * len(y)
            wrong += (logits.argmax(1) != y).sum()
            batches += 1
            count += len(y)
    model.train(was_training)
    with torch.no_grad():
        w_norm = float(joint_norm(si_params))
    return TrainModePass(float(total_loss) / count, int(wrong) / count, float(grad_norm_sum) / batches * w_norm)


@dataclass(frozen=True)
class Sharpness:
    total: float  # ||w||^2 tr(H), all SI weights jointly
    per_layer: dict[str, float]  # ||w_i||^2 tr(H_ii) for each SI tensor w_i


def hutchinson_sharpness(model: nn.Module, data: DeviceData, si_params: Mapping[str, torch.Tensor],
                         batch_size: int, n_images: int, probes: int, generator: torch.Generator,
                         compute_dtype: torch.dtype | None = None) -> Sharpness:
    """Hutchinson estimate of the trace of the Hessian on the unit sphere, total and per layer.

    For each train-mode minibatch of the first ``n_images`` un-augmented training images and
    each of ``probes`` Rademacher vectors v: ``v^T H_B v`` with ``H_B v`` by double backward.
    ``E[v^T H v] = tr(H)`` and ``E[v_i^T (H v)_i] = tr(H_ii)``. The radial direction adds
    nothing: differentiating ``<grad L(w), w> = 0`` gives ``H w = -grad L``, so ``w^T H w = 0``
    and the trace over the tangent space of the sphere equals ``tr(H)``. Results are scaled by
    ``||w||^2`` (resp. ``||w_i||^2``) to the unit sphere. BN running statistics and ``.grad``
    are left untouched; the probes come from ``generator`` only.
    """
    names, tensors = list(si_params), list(si_params.values())
    sums = torch.zeros(len(tensors), dtype=torch.float64, device=data.device)
    samples = 0
    was_training = model.training
    model.train()
    with preserved_batchnorm_state(model):
        for x, y in data.eval_batches("train", batch_size, limit=n_images):
            grads = torch.autograd.grad(F.cross_entropy(forward(model, x, compute_dtype), y), tensors,
                                        create_graph=True)
            for probe in range(probes):
                vs = [(torch.randint(0, 2, t.shape, generator=generator) * 2 - 1).to(t) for t in tensors]
                hvs = torch.autograd.grad(grads, tensors, grad_outputs=vs, retain_graph=probe < probes - 1)
                sums += torch.stack([(v * hv).sum().double() for v, hv in zip(vs, hvs)])
                samples += 1
    model.train(was_training)
    with torch.no_grad():
        squared_norms = torch.stack([t.detach().double().pow(2).sum() for t in tensors])
    traces = sums / samples
    per_layer = {name: float(trace * norm2) for name, trace, norm2 in zip(names, traces, squared_norms)}
    return Sharpness(float(traces.sum() * squared_norms.sum()), per_layer)


@torch.no_grad()
def evaluate(model: nn.Module, data: DeviceData, split: str, batch_size: int,
             compute_dtype: torch.dtype | None = None) -> EvalPass:
    """Mean cross-entropy and error on ``split`` in eval mode (BN running statistics)."""
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=data.device)
    wrong = torch.zeros((), dtype=torch.int64, device=data.device)
    count = 0
    for x, y in data.eval_batches(split, batch_size):
        logits = forward(model, x, compute_dtype)
        total_loss += F.cross_entropy(logits, y, reduction="sum").double()
        wrong += (logits.argmax(1) != y).sum()
        count += len(y)
    model.train(was_training)
    return EvalPass(float(total_loss) / count, int(wrong) / count)


def unit_distance(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    """``|| a/||a|| - b/||b|| ||`` over the tensors jointly (0-dim tensor)."""
    a_unit = torch._foreach_div(list(a), joint_norm(a))
    b_unit = torch._foreach_div(list(b), joint_norm(b))
    return joint_norm(torch._foreach_sub(a_unit, b_unit))


def angle(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    """Angle between two points in radians, ``2 * asin(d/2)`` with d the distance of the unit
    vectors: accurate for tiny angles, where ``acos`` of the cosine loses all digits."""
    return 2 * torch.asin(torch.clamp(unit_distance(a, b) / 2, max=1.0))


def cosine(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """Cosine of the angle between two points of the SI weight space."""
    return float(torch.cos(angle(a, b)))


def layer_norms(si_params: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """``||w_i||`` for each SI tensor, by name."""
    norms = torch._foreach_norm(list(si_params.values()))
    return {name: float(n) for name, n in zip(si_params, norms)}


class StepAngleTracker:
    """Accumulates the angular update ``theta_t = angle(w_t, w_{t+1})`` of each optimizer step on the
    device (no host synchronisation per step): its mean and its root mean square over the epoch's
    steps. With weight decay the theory fixes the mean *square* at equilibrium,
    ``E[theta^2] = 2 * lr * wd / (1 + momentum)`` (paper §6; Wan et al. 2021), so the RMS is the
    statistic to compare with ``sqrt(2 * lr * wd / (1 + momentum))``; the mean is at most the RMS."""

    def __init__(self, si_params: Sequence[torch.Tensor]) -> None:
        self.si_params = list(si_params)
        self.reset()

    def reset(self) -> None:
        self.total = torch.zeros((), dtype=torch.float64, device=self.si_params[0].device)
        self.total_squares = torch.zeros((), dtype=torch.float64, device=self.si_params[0].device)
        self.steps = 0

    def before_step(self) -> None:
        self._previous = [p.detach().clone() for p in self.si_params]

    @torch.no_grad()
    def after_step(self) -> None:
        step = angle(self._previous, self.si_params).double()
        self.total += step
        self.total_squares += step * step
        self.steps += 1

    def mean(self) -> float:
        return float(self.total) / max(self.steps, 1)

    def rms(self) -> float:
        """``sqrt(mean_t theta_t^2)`` over the epoch's steps."""
        return (float(self.total_squares) / max(self.steps, 1)) ** 0.5


def scale_invariance_gap(model: nn.Module, si_params: Sequence[torch.Tensor], x: torch.Tensor,
                         y: torch.Tensor, scale: float = 3.0) -> float:
    """``|L(c w) - L(w)| / |L(w)|`` in train mode: ~1e-6 or less (BatchNorm's eps) for SI ``w``.

    Use it to check that the tensors you hand to :class:`~sphere_regimes.optim.SphereSGD`
    really are scale-invariant. The weights and BN statistics are restored afterwards.
    """
    was_training = model.training
    model.train()
    si_params = list(si_params)
    saved = [p.detach().clone() for p in si_params]
    with torch.no_grad(), preserved_batchnorm_state(model):
        base = float(F.cross_entropy(model(x), y))
        torch._foreach_mul_(si_params, scale)
        scaled = float(F.cross_entropy(model(x), y))
        torch._foreach_copy_(si_params, saved)
    model.train(was_training)
    return abs(scaled - base) / max(abs(base), 1e-12)

