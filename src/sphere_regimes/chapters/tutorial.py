"""Chapter 90, the tutorial: ``SphereSGD`` on your own model. It trains a few hundred steps in the
notebook itself (the one chapter that does: it teaches the loop) and reads no store."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Params as _Params

NOTEBOOK = "90_sphere_sgd_on_your_model"


@dataclass(frozen=True)
class Params(_Params):
    notebook = NOTEBOOK
    elr: float = 0.001  # effective learning rate on the sphere, lr / ||w||^2
    steps: int = 300  # optimizer steps
    batch_size: int = 128  # images per step
    train_size: int = 4096  # first N Fashion-MNIST training images
    seed: int = 0  # init and batch-order seed
