"""Batched sphere training: the K runs of an ELR sweep trained at once as one fused ConvNetSI.

Fusion as in HFTA (Wang et al., MLSys 2021): the K models' channels are concatenated. The first
convolution maps the shared input to ``K * width`` channels; every later one is a grouped
convolution (``groups=K``), so model k only ever sees its own channels. One BatchNorm over the
``K * C`` channels (no affine terms) keeps per-channel, hence per-model, batch and running
statistics; ReLU and the max-pools act per channel; each model's frozen last layer is applied to
its own block. The models share no parameter and the training loss is the *sum* of the K models'
losses, so the gradient on model k's block is model k's own gradient: one step of the fused model
is K independent steps on the same batch.

:class:`BatchedSphereSGD` then does each model's own :class:`~sphere_regimes.optim.SphereSGD` step
(paper §4, total constraint): ``w_k <- w_k - lr_k grad L_k(w_k)`` with ``lr_k = elr_k ||w_0,k||^2``,
then model k's SI blocks are rescaled jointly back to ``||w_0,k||``.

:class:`BatchedSweep` trains the :class:`~sphere_regimes.config.RunConfig` s of a sweep that differ
only in ``elr`` (same data, batches and initial point) and records the paper's per-epoch metrics of
each run with the definitions of :mod:`sphere_regimes.metrics`. It does not write the result store
and leaves out the engine's step-angle and sharpness metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .config import RunConfig
from .data import DeviceData, load_raw
from .engine import resolve_device
from .metrics import EvalPass, TrainModePass, preserved_batchnorm_state
from .factories import build_model
from .models import ConvNetSI


class _BatchedHead(nn.Module):
    """K frozen linear layers, one per model: ``logits_k = h_k W_k^T + b_k``."""

    def __init__(self, models: int, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(models, num_classes, in_features), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(models, num_classes), requires_grad=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` of shape (K, B, C) to logits of shape (K, B, classes)."""
        return torch.baddbmm(self.bias.unsqueeze(1), h, self.weight.transpose(1, 2))


class BatchedConvNetSI(nn.Module):
    """K :class:`~sphere_regimes.models.ConvNetSI` of one architecture fused into one network.

    Its state dict has the keys of a ConvNetSI: conv weights and BN statistics are the K models'
    tensors concatenated along dim 0, the head's weight and bias are stacked (leading dim K).
    ``forward`` returns logits of shape (K, B, classes).
    """

    def __init__(self, models: int, width: int = 32, depth: int = 3, in_channels: int = 3,
                 num_classes: int = 10) -> None:
        super().__init__()
        self.models = models
        layers: list[nn.Module] = [nn.Conv2d(in_channels, models * width, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(models * width, affine=False), nn.ReLU()]
        channels = width
        for _ in range(depth):
            layers += [nn.Conv2d(models * channels, models * 2 * channels, 3, padding=1, bias=False, groups=models),
                       nn.BatchNorm2d(models * 2 * channels, affine=False), nn.ReLU(), nn.MaxPool2d(2)]
            channels *= 2
        self.features = nn.Sequential(*layers)
        self.head = _BatchedHead(models, channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.amax(self.features(x), dim=(2, 3))  # (B, K * C)
        return self.head(h.unflatten(1, (self.models, -1)).transpose(0, 1))

    def si_parameter_names(self) -> list[str]:
        """The fused conv weights; block k of each is one of model k's SI tensors."""
        return [n for n, p in self.named_parameters() if n.startswith("features.") and p.dim() == 4]

    @classmethod
    def from_models(cls, models: Sequence[nn.Module]) -> BatchedConvNetSI:
        """The fused network of ``models`` (ConvNetSI without affine BN, one architecture), with
        their weights and BN statistics, on the device and in the dtype of the first model."""
        shapes = _architecture(models)
        first = models[0].features[0].weight
        fused = cls(len(models), *shapes).to(first.device, first.dtype)
        fused.load_state_dict(fuse_state_dicts([m.state_dict() for m in models]))
        return fused

    def split(self) -> list[dict[str, torch.Tensor]]:
        """The K models' state dicts, loadable into ordinary ConvNetSI."""
        return split_state_dict(self.state_dict(), self.models)


def _architecture(models: Sequence[nn.Module]) -> tuple[int, int, int, int]:
    """``(width, depth, in_channels, num_classes)`` shared by ``models``; ValueError otherwise."""
    if not models:
        raise ValueError("a batched model needs at least one ConvNetSI")
    for index, model in enumerate(models):
        if not isinstance(model, ConvNetSI) or model.head.weight.requires_grad \
                or any(m.affine for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            raise ValueError(f"model {index} is not a scale-invariant ConvNetSI (affine=False); "
                             "only those can be batched")
    reference = {k: v.shape for k, v in models[0].state_dict().items()}
    for index, model in enumerate(models[1:], start=1):
        if {k: v.shape for k, v in model.state_dict().items()} != reference:
            raise ValueError(f"model {index} has another architecture than model 0 (width, depth, channels or "
                             "classes); a batched model fuses copies of one architecture")
    first = models[0].features[0].weight
    depth = sum(1 for m in models[0].features if isinstance(m, nn.Conv2d)) - 1
    return first.shape[0], depth, first.shape[1], models[0].head.weight.shape[0]


def fuse_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """ConvNetSI state dicts to one :class:`BatchedConvNetSI` state dict (see its docstring)."""
    fused = {}
    for key, first in states[0].items():
        tensors = [state[key] for state in states]
        if key.startswith("head."):
            fused[key] = torch.stack(tensors)
        elif key.endswith("num_batches_tracked"):
            fused[key] = first.clone()  # one counter per BN layer; unused at BN's fixed momentum
        else:
            fused[key] = torch.cat(tensors)
    return fused


def split_state_dict(state: dict[str, torch.Tensor], models: int) -> list[dict[str, torch.Tensor]]:
    """Inverse of :func:`fuse_state_dicts`: K ConvNetSI state dicts (contiguous copies)."""
    result: list[dict[str, torch.Tensor]] = [{} for _ in range(models)]
    for key, tensor in state.items():
        if key.startswith("head."):
            parts = tensor.unbind(0)
        elif key.endswith("num_batches_tracked"):
            parts = [tensor] * models
        else:
            parts = tensor.chunk(models, dim=0)
        for single, part in zip(result, parts):
            single[key] = part.detach().clone(memory_format=torch.contiguous_format)
    return result


# -- optimizer --------------------------------------------------------------------------

def _blocks(tensor: torch.Tensor, models: int) -> torch.Tensor:
    """View of a fused tensor as (K, ...): block k along dim 0 is model k's (any memory format)."""
    return tensor.unflatten(0, (models, -1))


def per_model_norms(tensors: Sequence[torch.Tensor], models: int) -> torch.Tensor:
    """``||w_k||`` over the fused ``tensors`` jointly, for each model k: shape (K,)."""
    layer_norms = torch.stack([torch.linalg.vector_norm(_blocks(t, models), dim=tuple(range(1, t.dim() + 1)))
                               for t in tensors])  # (layers, K)
    return torch.linalg.vector_norm(layer_norms, dim=0)


class BatchedSphereSGD(torch.optim.Optimizer):
    """K :class:`~sphere_regimes.optim.SphereSGD` (total constraint) on the blocks of fused SI tensors.

    Model k steps with ``lr_k = elr_k * ||w_0,k||^2``, then its blocks of all tensors are rescaled
    jointly to ``||w_0,k||`` (paper §4). No momentum, no weight decay.
    """

    def __init__(self, si_params: Sequence[torch.Tensor], elrs: Sequence[float]) -> None:
        params = list(si_params)
        if not params:
            raise ValueError("BatchedSphereSGD needs at least one scale-invariant tensor")
        elrs = [float(e) for e in elrs]
        if not elrs or not all(0 < e < float("inf") for e in elrs):
            raise ValueError(f"elrs must be finite numbers > 0, one per model, got {elrs!r}")
        models = len(elrs)
        if any(p.shape[0] % models for p in params):
            raise ValueError(f"the fused tensors' first dimension must split into {models} model blocks")
        super().__init__(params, {"elrs": tuple(elrs)})
        with torch.no_grad():
            self.radius = per_model_norms(params, models)  # (K,) in the parameters' dtype
        if not bool((self.radius > 0).all()):
            raise ValueError("a model's SI tensors have zero norm: the sphere of radius ||w_0|| is a point")
        elr_tensor = torch.tensor(elrs, dtype=torch.float64, device=self.radius.device)
        self.lrs = (elr_tensor * self.radius.double() ** 2).to(self.radius.dtype)  # (K,)

    @property
    def models(self) -> int:
        return len(self.param_groups[0]["elrs"])

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = self.param_groups[0]["params"]
        k = self.models
        for p in params:
            if p.grad is not None:
                _blocks(p, k).addcmul_(_blocks(p.grad, k), _expand(-self.lrs, p.dim()))
        scale = self.radius / per_model_norms(params, k)
        for p in params:
            _blocks(p, k).mul_(_expand(scale, p.dim()))
        return loss


def _expand(values: torch.Tensor, dim: int) -> torch.Tensor:
    """(K,) to (K, 1, ..., 1) broadcasting against a (K, ...) block view of a ``dim``-d tensor."""
    return values.view(-1, *([1] * dim))


# -- metrics ----------------------------------------------------------------------------

def per_model_cross_entropy(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of each model's logits (K, B, classes) against ``y``: shape (K,)."""
    models, batch, _ = logits.shape
    losses = F.cross_entropy(logits.flatten(0, 1), y.repeat(models), reduction="none").view(models, batch)
    return losses.mean(1) if reduction == "mean" else losses.sum(1)


def batched_train_mode_pass(model: BatchedConvNetSI, data: DeviceData, si_params: Sequence[torch.Tensor],
                            batch_size: int) -> list[TrainModePass]:
    """:func:`sphere_regimes.metrics.train_mode_pass` of every model in one pass: train loss and
    error over the un-augmented training set in train mode, and the mean over minibatches of
    ``||grad_w L_B|| * ||w||`` per model. BN running statistics are restored, ``.grad`` untouched."""
    was_training = model.training
    model.train()
    si_params = list(si_params)
    k = model.models
    total_loss = torch.zeros(k, dtype=torch.float64, device=data.device)
    wrong = torch.zeros(k, dtype=torch.int64, device=data.device)
    grad_norm_sum = torch.zeros(k, dtype=torch.float64, device=data.device)
    batches = count = 0
    with preserved_batchnorm_state(model):
        for x, y in data.eval_batches("train", batch_size):
            logits = model(x)
            losses = per_model_cross_entropy(logits, y)
            grads = torch.autograd.grad(losses.sum(), si_params)
            grad_norm_sum += per_model_norms(grads, k).double()
            total_loss += losses.detach().double() * len(y)
            wrong += (logits.argmax(2) != y).sum(1)
            batches += 1
            count += len(y)
    model.train(was_training)
    with torch.no_grad():
        w_norms = per_model_norms(si_params, k).double()
    effective = grad_norm_sum / batches * w_norms
    return [TrainModePass(float(loss) / count, int(w) / count, float(g))
            for loss, w, g in zip(total_loss.cpu(), wrong.cpu(), effective.cpu())]


@torch.no_grad()
def batched_evaluate(model: BatchedConvNetSI, data: DeviceData, split: str, batch_size: int) -> list[EvalPass]:
    """:func:`sphere_regimes.metrics.evaluate` of every model: eval-mode loss and error on ``split``."""
    was_training = model.training
    model.eval()
    k = model.models
    total_loss = torch.zeros(k, dtype=torch.float64, device=data.device)
    wrong = torch.zeros(k, dtype=torch.int64, device=data.device)
    count = 0
    for x, y in data.eval_batches(split, batch_size):
        logits = model(x)
        total_loss += per_model_cross_entropy(logits, y, reduction="sum").double()
        wrong += (logits.argmax(2) != y).sum(1)
        count += len(y)
    model.train(was_training)
    return [EvalPass(float(loss) / count, int(w) / count) for loss, w in zip(total_loss.cpu(), wrong.cpu())]


# -- a sweep --------------------------------------------------------------------------------

_FULL_METRICS = ("train_loss", "train_error", "effective_grad_norm", "test_loss", "test_error")
_NOT_BATCHABLE = {
    "model": ("convnet_si", "only ConvNetSI (model 'convnet_si') can be batched"),
    "optimizer": ("sphere", "the batched engine trains on the sphere (optimizer 'sphere')"),
    "constraint": ("total", "the batched engine implements the total norm constraint only"),
    "init_from": (None, "the batched engine starts from the configs' own initial point (no init_from)"),
    "sharpness_every": (0, "the batched engine does not compute sharpness (sharpness_every 0)"),
    "compute_dtype": ("float32", "the batched engine computes in float32 only (compute_dtype 'float32')"),
}


def check_sweep(configs: Sequence[RunConfig]) -> None:
    """ValueError unless ``configs`` are sphere ConvNetSI runs that differ only in ``elr``."""
    if not configs:
        raise ValueError("a batched sweep needs at least one RunConfig")
    for field, (allowed, message) in _NOT_BATCHABLE.items():
        if any(getattr(c, field) != allowed for c in configs):
            raise ValueError(message)
    first = configs[0]
    for config in configs[1:]:
        different = sorted(f for f, v in config.replace(elr=first.elr).to_dict().items()
                           if v != getattr(first, f))
        if different:
            raise ValueError(f"the runs of a batched sweep may differ only in elr; {', '.join(different)} differ")


class BatchedSweep:
    """The runs ``configs`` (sphere ConvNetSI, differing only in ``elr``) trained at once.

    Batches, augmentation and the initial point are the configs' own (``seed``), as in
    :func:`sphere_regimes.engine.run`; ``data`` replaces the dataset of the configs when given.
    :meth:`run` returns, per config, one metric row per epoch with the engine's column names for
    the running and full train metrics, test metrics, ``si_norm`` and ``elr``.
    """

    def __init__(self, configs: Sequence[RunConfig], data: DeviceData | None = None,
                 memory_format: torch.memory_format = torch.channels_last) -> None:
        check_sweep(configs)
        self.configs = list(configs)
        config = self.configs[0]
        self.device = resolve_device(config.device)
        dtype = getattr(torch, config.dtype)
        if data is None:
            raw = load_raw(config.dataset)
            data = DeviceData(raw, self.device, dtype, config.train_size, config.augment,
                              drop_last_batch=config.drop_last_batch)
        if data.drop_last_batch != config.drop_last_batch:
            raise ValueError(f"the data's drop_last_batch ({data.drop_last_batch}) differs from the configs' "
                             f"({config.drop_last_batch}); build the DeviceData with the configs' value")
        self.data = data
        in_channels, num_classes = data.info.in_channels, data.info.num_classes
        singles = [build_model(c, in_channels, num_classes) for c in self.configs]
        self.model = BatchedConvNetSI.from_models(singles).to(self.device, dtype, memory_format=memory_format)
        self.si = [p for n, p in self.model.named_parameters() if n in self.model.si_parameter_names()]
        self.optimizer = BatchedSphereSGD(self.si, [c.elr for c in self.configs])

    def train_epoch(self, epoch: int) -> dict[str, torch.Tensor]:
        """One epoch of all models; per-model running ``loss_sum`` and ``wrong`` (shape (K,)) over its ``images``."""
        config = self.configs[0]
        self.model.train()
        k = self.model.models
        loss_sum = torch.zeros(k, dtype=torch.float64, device=self.device)
        wrong = torch.zeros(k, dtype=torch.int64, device=self.device)
        images = 0
        for x, y in self.data.train_batches(epoch, config.seed, config.batch_size):
            logits = self.model(x)
            losses = per_model_cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            self.optimizer.step()
            loss_sum += losses.detach().double() * len(y)
            wrong += (logits.argmax(2) != y).sum(1)
            images += len(y)
        return {"loss_sum": loss_sum, "wrong": wrong, "images": images}

    def rows(self, epoch: int, step_stats: dict[str, torch.Tensor] | None) -> list[dict[str, float]]:
        """The metric row of every model at ``epoch`` (full passes on the configs' schedule)."""
        config, nan, k = self.configs[0], float("nan"), self.model.models
        n = step_stats["images"] if step_stats else 0
        with torch.no_grad():
            si_norms = per_model_norms(self.si, k).double().cpu()
        lrs = self.optimizer.lrs.double().cpu()
        rows = [{"epoch": epoch,
                 "train_loss_running": float(step_stats["loss_sum"][i]) / n if step_stats else nan,
                 "train_error_running": int(step_stats["wrong"][i]) / n if step_stats else nan,
                 "si_norm": float(si_norms[i]),
                 "elr": float(lrs[i] / si_norms[i] ** 2)} for i in range(k)]
        if config.has_full_metrics(epoch):
            train = batched_train_mode_pass(self.model, self.data, self.si, config.batch_size)
            test = batched_evaluate(self.model, self.data, "test", config.batch_size)
            for row, t, e in zip(rows, train, test):
                row.update({"train_loss": t.train_loss, "train_error": t.train_error,
                            "effective_grad_norm": t.effective_grad_norm, "test_loss": e.loss, "test_error": e.error})
        else:
            for row in rows:
                row.update(dict.fromkeys(_FULL_METRICS, nan))
        return rows

    def run(self) -> list[pd.DataFrame]:
        """Train the configs' ``epochs``; per config its metric rows of epochs 0..epochs, indexed by epoch."""
        history = [self.rows(0, None)]
        for epoch in range(1, self.configs[0].epochs + 1):
            history.append(self.rows(epoch, self.train_epoch(epoch)))
        return [pd.DataFrame([rows[i] for rows in history]).set_index("epoch") for i in range(self.model.models)]

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """Every model's ConvNetSI state dict (weights and BN statistics), in the order of ``configs``."""
        return self.model.split()
