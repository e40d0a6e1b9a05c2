"""Optimizers: projected SGD on the sphere at a fixed effective learning rate (paper §4), and
the step size of either kind (SphereSGD or conventional SGD with weight decay, paper §6).

Notation: w are the scale-invariant (SI) weights, ``elr = lr / ||w||^2`` is the effective
learning rate (ELR). For SI weights the gradient is orthogonal to w and scales as 1/||w||,
so a step of size lr at norm ||w|| turns w by the same angle as a step of ``elr`` at unit
norm: the ELR alone sets the dynamics on the sphere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

CONSTRAINTS = ("total", "individual")  # the norm constraint: joint (the paper's) or per group
INDIVIDUAL_GROUPINGS = ("layer", "filter", "filter_rms")  # the groups of the individual constraint


def joint_norm(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """``||w|| = sqrt(sum_i ||w_i||^2)`` over all tensors, as a 0-dim tensor outside autograd (the tensors
    are detached, so ``float(joint_norm(model.parameters()))`` is a plain number, without a warning)."""
    tensors = [t.detach() for t in tensors]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))


def _filter_norms(weight: torch.Tensor) -> torch.Tensor:
    """Norm of each output filter (row of the weight flattened from dim 1)."""
    return torch.linalg.vector_norm(weight.flatten(1), dim=1)


def _refuse_non_si(tensors: Mapping[object, torch.Tensor]) -> None:
    """A ``ValueError`` naming the 0-d and 1-d tensors (by name, or position and shape): biases and
    BatchNorm affine parameters, which no BatchNorm makes scale-invariant."""
    small = [f"{key if isinstance(key, str) else f'tensor {key}'} {tuple(t.shape)}"
             for key, t in tensors.items() if t.dim() < 2]
    if small:
        raise ValueError(f"SphereSGD takes scale-invariant weights (conv/linear weights feeding BatchNorm), but got "
                         f"{len(small)} 0-d or 1-d tensor(s), such as biases or BatchNorm affine parameters: "
                         f"{', '.join(small[:5])}{', ...' if len(small) > 5 else ''}; pass "
                         "sphere_regimes.si_parameters(model) and freeze the others or give them their own optimizer")


class SphereSGD(torch.optim.Optimizer):
    """Projected SGD at a fixed effective learning rate (paper §4, eq. for the sphere).

    Each step is ``w <- w - lr * grad L(w)`` with ``lr = elr * ||w_0||^2`` followed by a
    retraction back onto the constraint set:

    * ``constraint="total"`` (the paper's setting): all SI tensors are rescaled *jointly* so
      that the total norm ``sqrt(sum_i ||w_i||^2)`` stays at its initial value ``||w_0||``.
      The individual ELRs ``eta_i = lr / ||w_i||^2`` then float, with
      ``sum_i 1/eta_i = 1/elr`` (paper §3).
    * ``constraint="individual"``: every group keeps its own initial norm, so every
      ``eta_i = elr * ||w_0||^2 / ||w_i0||^2`` is frozen. ``grouping="layer"`` makes each
      tensor a group, ``grouping="filter"`` each output filter (row of the flattened weight).
      ``grouping="filter_rms"`` is the official code's individual constraint (its ``fix_all_elr``):
      every output filter of every tensor at one common norm, the RMS filter norm
      ``r = ||w_0|| / sqrt(F)`` over the F filters, so that the total norm stays ``||w_0||`` and every filter
      has the ELR ``lr / r^2 = F * elr`` (``sum_f 1/eta_f = 1/elr``). The constructor moves the initial
      point onto this set: it rescales each filter of the tensors it is given to norm ``r`` (in place).

    No momentum and no weight decay (they would change the ELR). Pass only SI tensors: a
    model's non-SI parameters need an optimizer of their own (or are frozen, as here).
    """

    def __init__(self, si_params: Iterable[torch.Tensor] | Mapping[str, torch.Tensor], elr: float,
                 constraint: str = "total", grouping: str = "layer") -> None:
        params = list(si_params.values()) if isinstance(si_params, Mapping) else list(si_params)
        if not params:
            raise ValueError("SphereSGD needs at least one scale-invariant tensor")
        if not isinstance(elr, (int, float)) or not elr > 0 or elr == float("inf"):
            raise ValueError(f"elr must be a finite number > 0, got {elr!r}")
        if constraint not in CONSTRAINTS:
            raise ValueError(f"unknown constraint {constraint!r}; choose one of {list(CONSTRAINTS)}")
        if grouping not in INDIVIDUAL_GROUPINGS:
            raise ValueError(f"unknown grouping {grouping!r}; choose one of {list(INDIVIDUAL_GROUPINGS)}")
        _refuse_non_si(si_params if isinstance(si_params, Mapping) else dict(enumerate(params)))
        with torch.no_grad():
            radius = float(joint_norm(params))
        if not radius > 0:
            raise ValueError("the SI tensors have zero norm: the sphere of radius ||w_0|| is a point")
        defaults = {"elr": float(elr), "constraint": constraint, "grouping": grouping, "radius": radius}
        super().__init__(params, defaults)
        if constraint == "individual":
            filters = sum(p.shape[0] for p in params)
            for p in params:
                with torch.no_grad():
                    if grouping == "filter_rms":
                        norms = torch.full((p.shape[0],), radius / filters ** 0.5, dtype=p.dtype, device=p.device)
                        p.mul_((norms / _filter_norms(p)).view(-1, *([1] * (p.dim() - 1))))
                    else:
                        norms = _filter_norms(p) if grouping == "filter" else torch.linalg.vector_norm(p)
                self.state[p]["radius"] = norms.clone()

    @property
    def elr(self) -> float:
        return self.param_groups[0]["elr"]

    @property
    def radius(self) -> float:
        """The initial total norm ``||w_0||``."""
        return self.param_groups[0]["radius"]

    @property
    def lr(self) -> float:
        """The Euclidean step size ``lr = elr * ||w_0||^2``."""
        return self.elr * self.radius ** 2

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["elr"] * group["radius"] ** 2
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            torch._foreach_add_(params, [p.grad for p in params], alpha=-lr)
            if group["constraint"] == "total":
                scale = group["radius"] / joint_norm(group["params"])
                torch._foreach_mul_(group["params"], scale)
            else:
                for p in params:
                    self._retract_individual(p, group["grouping"])
        return loss

    def _retract_individual(self, p: torch.Tensor, grouping: str) -> None:
        radius = self.state[p]["radius"]
        if grouping in ("filter", "filter_rms"):
            p.mul_((radius / _filter_norms(p)).view(-1, *([1] * (p.dim() - 1))))
        else:
            p.mul_(radius / torch.linalg.vector_norm(p))


def euclidean_lr(optimizer: torch.optim.Optimizer) -> float:
    """The plain step size of either optimizer (``elr * ||w_0||^2`` for SphereSGD)."""
    if isinstance(optimizer, SphereSGD):
        return optimizer.lr
    return optimizer.param_groups[0]["lr"]
