# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tutorial: SphereSGD on your own model
#
# **What this page shows.** How to train *your* network on the sphere at a fixed effective learning rate
# (ELR) with `sphere_regimes.SphereSGD`: make the network scale-invariant, find its scale-invariant (SI)
# tensors, check them numerically, and train. Everything here is plain PyTorch plus three names from the
# package; copy the cells into your own code.
#
# **Runtime.** A few seconds on one CPU core (a few hundred steps of a tiny network on real Fashion-MNIST).

# %% tags=["parameters", "remove-cell"]
preset = "cpu"  # name of the preset that set these values
elr = 0.001  # effective learning rate on the sphere, lr / ||w||^2
steps = 300  # optimizer steps
batch_size = 128  # images per step
train_size = 4096  # first N Fashion-MNIST training images
seed = 0  # init and batch-order seed

# %% [markdown]
# ## 1. A scale-invariant network
#
# A weight tensor $w$ is scale-invariant (SI) when the loss does not change if $w$ is multiplied by any
# $c>0$: $L(cw) = L(w)$. A convolution without bias whose output goes straight into BatchNorm is SI,
# because BatchNorm divides out any scale. Two consequences drive everything else:
# the gradient is orthogonal to $w$, $\langle \nabla L(w), w\rangle = 0$, and it shrinks with the norm,
# $\nabla L(cw) = \nabla L(w)/c$. A step of size $\mathrm{lr}$ at norm $\|w\|$ therefore turns $w$ as much
# as a step of size $\mathrm{lr}/\|w\|^2$ at unit norm: that ratio is the **effective learning rate**.
#
# To make a whole network SI, as the paper does, drop the biases and affine terms before BatchNorm, and
# **freeze the last layer** (the paper rescales it to Frobenius norm 10 first).

# %%
import torch
import torch.nn.functional as F
from torch import nn

from sphere_regimes import SphereSGD, si_parameters
from sphere_regimes.data import DeviceData, load_raw
from sphere_regimes.metrics import scale_invariance_gap
from sphere_regimes.optim import joint_norm

torch.manual_seed(seed)
model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8, affine=False), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16, affine=False), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
)
last = model[-1]
with torch.no_grad():
    last.weight.mul_(10 / last.weight.norm())  # the paper's fixed last-layer norm
last.requires_grad_(False)  # frozen: the trainable part of the net is now fully SI

# %% [markdown]
# ## 2. Find the SI tensors and check them
#
# `si_parameters` traces the model with `torch.fx` and returns the weights of bias-free convolutions and
# linear layers whose output goes *only* into BatchNorm. `scale_invariance_gap` measures
# $|L(cw)-L(w)|/|L(w)|$ in train mode on a real batch: it is zero up to BatchNorm's $\epsilon$.

# %%
data = DeviceData(load_raw("fashion_mnist"), torch.device("cpu"), train_size=train_size)
x, y = next(data.eval_batches("train", batch_size))
si = si_parameters(model)
gap = scale_invariance_gap(model, list(si.values()), x, y, scale=5.0)
print("SI tensors:", list(si))
print(f"relative loss change when all SI tensors are scaled by 5: {gap:.1e}")

# %% [markdown]
# ## 3. Train on the sphere
#
# `SphereSGD(si, elr)` sets $\mathrm{lr} = \mathrm{ELR}\cdot\|w_0\|^2$ and, after every step, rescales all
# SI tensors *jointly* back to the initial total norm $\|w_0\|$ (the paper's total constraint). The
# individual layers' norms, and so their own ELRs $\eta_i = \mathrm{lr}/\|w_i\|^2$, are free to move with
# $\sum_i 1/\eta_i = 1/\mathrm{ELR}$. `constraint="individual"` would freeze each layer's norm instead.

# %%
optimizer = SphereSGD(si, elr=elr)
radius = optimizer.radius
losses = []
model.train()
for step in range(steps):
    epoch, index = divmod(step * batch_size, data.num_train)
    if index == 0:
        batches = data.train_batches(epoch, seed, batch_size)
    xb, yb = next(batches)
    loss = F.cross_entropy(model(xb), yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

# %% tags=["remove-cell"]
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    drift = abs(float(joint_norm(list(si.values()))) / radius - 1)
first, last_loss = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
print(f"total SI norm kept to 1e-6: {drift < 1e-6}")
print(f"loss fell: {last_loss < first}")

# %%
print(f"mean loss over the first 20 steps {first:.3f}, over the last 20 steps {last_loss:.3f}")
print(f"individual ELRs after training: " + ", ".join(
    f"{name}: {optimizer.lr / float(w.detach().norm()) ** 2:.2e}" for name, w in si.items()))

# %% [markdown]
# ## What to watch for in your own model
#
# - A tensor that is *not* SI (a bias, a BN affine weight, a trainable last layer) breaks the geometry:
#   give it its own optimizer or freeze it. `scale_invariance_gap` tells you quickly.
# - Keep momentum and weight decay out of `SphereSGD`: on the sphere the ELR is the only knob.
# - Which regime you get depends on the ELR: see the chapters of this book for where the boundaries lie.
