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
# package; copy the cells into your own code. The last section maps the regimes of this network over a range
# of ELRs with `sphere_regimes.regime_map.map_regimes` (the shell's `sphere-regimes map`).
#
# **Runtime.** A few seconds on one CPU core (a few hundred steps of a tiny network on real Fashion-MNIST);
# the regime map is read from the result store, where `make runs` computed it (preset {glue:md}`preset_md`).

# %% tags=["parameters", "remove-cell"]
preset = "cpu"  # name of the preset that set these values
elr = 0.001  # effective learning rate on the sphere, lr / ||w||^2
steps = 300  # optimizer steps
batch_size = 128  # images per step
train_size = 4096  # first N Fashion-MNIST training images
seed = 0  # init and batch-order seed
map_elr_range = [0.001, 1.0]  # regime map: first and last ELR of its log grid
map_points_per_decade = 2  # regime map: grid ELRs per factor 10
map_factor = 1.5  # regime map: bisect each boundary until its bracket's high / low is at most this
map_epochs = 25  # regime map: epochs per run (the regimes are labelled at this budget)
map_seeds = 1  # regime map: init seeds per ELR
map_train_size = 2000  # regime map: first N Fashion-MNIST training images

# %% [markdown]
# ## A scale-invariant network
#
# A weight tensor $w$ is scale-invariant (SI) when the loss does not change if $w$ is multiplied by any
# $c>0$: $L(cw) = L(w)$. A convolution without bias whose output goes straight into BatchNorm is SI,
# because BatchNorm divides out any scale. Two consequences drive everything else:
# the gradient is orthogonal to $w$, $\langle \nabla L(w), w\rangle = 0$, and it shrinks with the norm,
# $\nabla L(cw) = \nabla L(w)/c$. A step of size $\mathrm{lr}$ at norm $\|w\|$ therefore turns $w$ as much
# as a step of size $\mathrm{lr}/\|w\|^2$ at unit norm: that ratio is the **effective learning rate**.
#
# To make a whole network SI, as the paper does, drop the biases and affine terms before BatchNorm, and
# **freeze the last layer** (the paper rescales it to Frobenius norm 10 first). The network of this page is
# `sphere_regimes.examples.small_convnet`, printed here; copy it, or write your own in the same way (the
# regime-map section below maps its regimes from that function).

# %%
import inspect

import torch
import torch.nn.functional as F

from sphere_regimes import SphereSGD, examples, si_parameters
from sphere_regimes.data import DeviceData, load_raw
from sphere_regimes.metrics import scale_invariance_gap
from sphere_regimes.optim import joint_norm

print(inspect.getsource(examples.small_convnet))
torch.manual_seed(seed)
model = examples.small_convnet()  # two bias-free conv -> BN (no affine) blocks, a frozen head of norm 10

# %% [markdown]
# ## Find the SI tensors and check them
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
# ## Train on the sphere
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
# ## The regime map of your network
#
# Which regime does a fixed ELR give *this* network? `map_regimes(factory, dataset, elr_range, epochs, seeds)`
# trains a coarse log grid of ELRs on the sphere, labels every run with the book's regime rule
# (`sphere_regimes.regimes.RegimeRule`, whose defaults were set on ConvNetSI-8 / Fashion-MNIST: pass your own
# `rule=` to change them), and bisects each bracket where the regime changes until it is at most `factor`
# wide. The factory is a module-level function that returns the network, here {glue:md}`map_factory_md`, the
# network of the first section; the runs are kept in a result store under ids that cover the factory's import path
# and its module's source, so a second call trains nothing and an edited network is a new map:
#
# ```python
# from sphere_regimes import examples
# from sphere_regimes.regime_map import map_regimes
# found = map_regimes(examples.small_convnet, "fashion_mnist", elr_range=(1e-3, 1.0), epochs=25, seeds=1)
# print(found.report()); found.write("regime-map")   # boundaries.csv, runs.csv, regime_map.png
# ```
#
# or, from the shell, `sphere-regimes map --model sphere_regimes.examples:small_convnet --elr-range 1e-3 1
# --epochs 25`. This book's map has {glue:text}`map_n_grid` grid ELRs from {glue:text}`map_low:g` to
# {glue:text}`map_high:g`, bisected to a factor {glue:text}`map_factor:g`, {glue:text}`map_seeds` seed each,
# {glue:text}`map_epochs` epochs on the first {glue:text}`map_train_size` training images: {glue:text}`map_n_runs`
# runs, {glue:text}`map_core_minutes:.1f` core-minutes of training, planned by the preset and computed by
# `make runs` like every chapter's runs.

# %% tags=["remove-cell"]
from sphere_regimes import book, chapters, plotting

findings = chapters.tutorial.analyse(chapters.tutorial.Params.from_namespace(globals()))
book.glue_all(findings, plotting.regime_map.figures)

# %% tags=["remove-cell"]
# NBVAL_CHECK_OUTPUT
print(findings.report())

# %% [markdown]
# ```{glue:figure} fig_regime_map
# :name: fig-regime-map
# :alt: Two panels against the effective learning rate for the tutorial's network: each run's final train loss and its late angle per epoch, coloured by its regime, on shaded spans of the three regimes.
# :width: 100%
#
# The regime map of the tutorial's network: each run's final train loss (left) and the median angle it
# turned per epoch over the last quarter of its epochs (right, the rule's statistic for regime 2) against
# the ELR, in its regime's colour (1 convergence, 2 chaotic equilibrium, 3 divergence), on the spans of the
# majority regimes, cut at the geometric midpoints of the brackets.
# ```
#
# The regimes found are {glue:md}`map_regimes_md`; the boundaries, with their brackets:
# {glue:md}`map_boundaries_md` (boundaries the range misses: {glue:md}`map_missing_md`).

# %% tags=["remove-input", "full-width"]
findings.tables["map_boundaries"]

# %% [markdown]
# Every run of the map, with the figures the rule reads. The labels are at a budget of {glue:text}`map_epochs`
# epochs: a run still moving at the end is regime 2, and regime 1 here means that the point has nearly
# stopped on the sphere (its angle per epoch is below the rule's threshold), not that its loss has reached
# zero in so few epochs. Longer runs, more seeds or a rule of your own (`rule=`) can move the boundaries.

# %% tags=["remove-input", "full-width"]
findings.tables["map_runs"]

# %% [markdown]
# ## What to watch for in your own model
#
# - A tensor that is *not* SI (a bias, a BN affine weight, a trainable last layer) breaks the geometry:
#   give it its own optimizer or freeze it. `scale_invariance_gap` tells you quickly.
# - Keep momentum and weight decay out of `SphereSGD`: on the sphere the ELR is the only knob.
# - Which regime you get depends on the ELR: map it for your network (the regime-map section); the chapters of this book
#   show what each regime looks like.
