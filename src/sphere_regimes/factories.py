"""The model and optimizer of one run, built from its :class:`RunConfig` (used by the engines).

The science modules (:mod:`.models`, :mod:`.optim`) know networks and optimizers, not runs; these
factories translate a run's configuration into them: the body drawn from ``config.seed``, the frozen
head from ``config.head_seed`` (paper §4), and :class:`SphereSGD` at ``config.elr`` (sphere mode,
paper §4) or SGD with ``lr``, ``weight_decay`` and ``momentum`` (sgd mode, paper §6).

Model ``factory`` is your own network: ``config.factory`` names a module-level callable as
``module:name`` that takes no arguments and returns it; ``config.factory_sha256`` is the sha256 of
that module's source when the run was planned, so an edited module is refused here (plan it again:
it is then a new run). See :func:`factory_model` for what the network must be.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from collections.abc import Callable

import torch
from torch import nn

from .config import FACTORY_MODEL, RunConfig
from .models import ConvNetSI, ResNet18SI, si_parameters
from .optim import SphereSGD

_BUILDERS: dict[str, Callable[[RunConfig, int, int], nn.Module]] = {
    "convnet_si": lambda c, i, k: ConvNetSI(c.width, c.depth, i, k, affine=False,
                                            head_norm=c.head_norm, head_seed=c.head_seed),
    "convnet_af": lambda c, i, k: ConvNetSI(c.width, c.depth, i, k, affine=True,
                                            head_norm=c.head_norm, head_seed=c.head_seed),
    "resnet18_si": lambda c, i, k: ResNet18SI(c.width, i, k, affine=False,
                                              head_norm=c.head_norm, head_seed=c.head_seed),
    "resnet18_af": lambda c, i, k: ResNet18SI(c.width, i, k, affine=True,
                                              head_norm=c.head_norm, head_seed=c.head_seed),
}


def build_model(config: RunConfig, in_channels: int, num_classes: int) -> nn.Module:
    """The model of ``config``: body drawn from ``config.seed``, head from ``config.head_seed``.

    The global RNG is left untouched, so building a model has no side effects.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.model == FACTORY_MODEL:
            return _planned_factory_model(config)
        model = _BUILDERS[config.model](config, in_channels, num_classes)
    return model


def _planned_factory_model(config: RunConfig) -> nn.Module:
    factory = import_factory(config.factory)
    if factory_sha256(config.factory) != config.factory_sha256:
        raise ValueError(f"the source of {config.factory.split(':')[0]} has changed since run {config.run_id} was "
                         "planned: plan the map again (the edited model is a new run)")
    return factory_model(factory, config.factory_head_norm)


def import_factory(path: str) -> Callable[[], nn.Module]:
    """The callable named ``module:name`` (a ``ValueError`` in one line if it is not importable or not callable)."""
    module_name, _, name = path.partition(":")
    if not module_name or not name:
        raise ValueError(f"--model {path!r}: give it as MODULE:CALLABLE, such as sphere_regimes.examples:small_convnet")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - any import error is the user's module
        raise ValueError(f"--model {path!r}: cannot import {module_name} ({type(error).__name__}: {error}); run from "
                         "the folder that holds it or put it on PYTHONPATH") from None
    target: object = module
    for part in name.split("."):
        if not hasattr(target, part):
            raise ValueError(f"--model {path!r}: module {module_name} has no {name}") from None
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"--model {path!r}: {name} is a {type(target).__name__}, not a callable that returns a model")
    return target


def factory_path(factory: Callable[[], nn.Module]) -> str:
    """``module:name`` of ``factory``, which must be reachable under that name (a module-level function or
    class, not a lambda, a closure or a ``functools.partial``), as every run rebuilds the model from it."""
    module, name = getattr(factory, "__module__", None), getattr(factory, "__qualname__", None)
    path = f"{module}:{name}"
    if module is None or name is None or "<" in name or module == "__main__":
        raise ValueError(f"the factory {factory!r} must be a function defined at module level in an importable "
                         "module (not a lambda, closure, partial or a function of __main__): the runs rebuild it by name")
    if import_factory(path) is not factory:
        raise ValueError(f"the factory {factory!r} is not what {path} names; define it at module level")
    return path


def factory_sha256(path: str) -> str:
    """sha256 of the source of the module that holds the factory ``module:name`` (text, newlines normalised)."""
    import_factory(path)
    module = sys.modules[path.partition(":")[0]]
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError) as error:
        raise ValueError(f"cannot read the source of {module.__name__} to name its runs ({error})") from None
    return hashlib.sha256("\n".join(source.splitlines()).encode()).hexdigest()


def factory_model(factory: Callable[[], nn.Module], head_norm: float | None = None) -> nn.Module:
    """``factory()``, checked to train on the sphere: an ``nn.Module`` with scale-invariant tensors
    (:func:`sphere_regimes.si_parameters`) and no other trainable tensor than those and the biases of their
    layers (which BatchNorm cancels). With ``head_norm`` the head, the last linear or conv layer that is
    not scale-invariant, has its weight rescaled to that Frobenius norm and is frozen (paper §4); without
    it the head stays as the factory built it. A ``ValueError`` in one line names what is wrong."""
    model = factory()
    if not isinstance(model, nn.Module):
        raise ValueError(f"the factory {getattr(factory, '__name__', factory)} returned a {type(model).__name__}, "
                         "not a torch.nn.Module")
    si = si_parameters(model)
    if head_norm is not None:
        _rescale_head(model, set(si), head_norm)
    layers = {name.rpartition(".")[0] for name in si}
    others = [name for name, p in model.named_parameters()
              if p.requires_grad and name not in si and not (name.endswith(".bias") and name[:-5] in layers)]
    if others:
        raise ValueError(f"{type(model).__name__} has trainable tensors that are not scale-invariant: "
                         f"{', '.join(others[:6])}{', ...' if len(others) > 6 else ''}; freeze them "
                         "(requires_grad_(False)), drop BatchNorm's affine terms, or ask for a head norm to freeze "
                         "the last layer")
    return model


def _rescale_head(model: nn.Module, si_names: set[str], norm: float) -> None:
    heads = [(name, m) for name, m in model.named_modules()
             if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and f"{name}.weight" not in si_names]
    if not heads:
        raise ValueError(f"{type(model).__name__} has no linear or conv layer outside its scale-invariant ones to "
                         "rescale as the head")
    head = heads[-1][1]
    with torch.no_grad():
        head.weight.mul_(norm / head.weight.norm())
    head.requires_grad_(False)


def make_optimizer(config: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer of a run: :class:`SphereSGD` on the SI tensors (sphere mode), or
    ``torch.optim.SGD(lr, weight_decay, momentum)`` on every trainable parameter (sgd mode)."""
    if config.is_sphere:
        return SphereSGD(si_parameters(model), config.elr, config.constraint, config.grouping)
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(trainable, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)
