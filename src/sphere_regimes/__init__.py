"""sphere_regimes: training scale-invariant networks on the sphere at a fixed effective
learning rate, after Kodryan, Lobacheva, Nakhodnov & Vetrov (NeurIPS 2022, arXiv 2209.03695).

The public API is small::

    from sphere_regimes import ConvNetSI, ResNet18SI, SphereSGD, si_parameters
    model = ConvNetSI(width=32, in_channels=3, num_classes=10)
    optimizer = SphereSGD(si_parameters(model), elr=1e-3)   # total norm constraint

and, for reproducing the paper, :class:`RunConfig` with :func:`run` (training through the
crash-safe result store).
"""

from ._version import __version__
from .config import RunConfig
from .engine import run
from .models import ConvNetSI, ResNet18SI, si_parameters
from .optim import SphereSGD, joint_norm
from .store import RunResult

__all__ = ["ConvNetSI", "ResNet18SI", "RunConfig", "RunResult", "SphereSGD", "__version__", "joint_norm", "run", "si_parameters"]
