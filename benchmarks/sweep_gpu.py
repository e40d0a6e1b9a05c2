"""Paper-scale ELR sweep: one model at a time against the batched engine, on a GPU (issue 9; prints
figures, asserts nothing).

ConvNetSI-``--width`` (32: the paper's) on synthetic CIFAR-shaped data (3x32x32 uint8 images and labels
drawn at random, normalised with the CIFAR-10 statistics: the speed does not depend on the pixel values),
batch 128, SphereSGD at ``--k`` ELRs from 1e-5 to 1e-1. One epoch is ``--steps`` training batches, then the
per-epoch metrics of the paper: the train-mode pass (train loss, error, mean effective gradient norm) over
the training images and the eval-mode test loss and error on a test set a fifth of that size (as CIFAR-10's
10k : 50k). Both sides use the same data, batches and metric definitions:

* **one at a time**: the K runs one after another, each a ConvNetSI with ``SphereSGD``,
  ``metrics.train_mode_pass`` and ``metrics.evaluate`` (the engine's loop without its result store);
* **batched**: ``sphere_regimes.batched.BatchedSweep``, the K runs fused into one network.

Printed: images per second (K x training images per second of wall time) for training alone, for the
metric pass alone and for both (metrics every epoch); peak memory per model above the resident data after the warm-up
epoch (``torch.cuda.max_memory_allocated``); a float64 check that the batched engine gives the same losses and
weights as one model at a time on this device; and the projected wall time of the paper's Figure 1
(8 ELRs x 1000 epochs x 50k images, with the metric passes of the ``paper`` preset's schedule and with
metrics every epoch) on this device.

Run on a GPU: ``python benchmarks/sweep_gpu.py --tf32`` (a few minutes). Dry run on a CPU:
``python benchmarks/sweep_gpu.py --device cpu --width 4 --steps 3``.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sphere_regimes import RunConfig, SphereSGD, si_parameters
from sphere_regimes.batched import BatchedConvNetSI, BatchedSphereSGD, BatchedSweep, per_model_cross_entropy
from sphere_regimes.data import DATASET_INFO, DeviceData, RawDataset
from sphere_regimes.engine import resolve_device
from sphere_regimes.factories import build_model
from sphere_regimes.metrics import evaluate, train_mode_pass

BATCH = 128
FIGURE1 = {"elrs": 8, "epochs": 1000, "train_images": 50_000}
MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


@dataclass
class Timing:
    """Seconds of training and of metric passes over all models and timed epochs; peak bytes per model."""

    train_s: float = 0.0
    metrics_s: float = 0.0
    peak_per_model: float = float("nan")


def synthetic_data(n_train: int, device: torch.device, memory_format: torch.memory_format) -> DeviceData:
    """CIFAR-shaped random images and labels (test set a fifth of the training set, whole batches)."""
    generator = torch.Generator().manual_seed(0)
    n_test = BATCH * max(1, round(n_train / 5 / BATCH))
    raw = RawDataset(DATASET_INFO["cifar10"],
                     torch.randint(0, 256, (n_train, 3, 32, 32), generator=generator, dtype=torch.uint8),
                     torch.randint(0, 10, (n_train,), generator=generator),
                     torch.randint(0, 256, (n_test, 3, 32, 32), generator=generator, dtype=torch.uint8),
                     torch.randint(0, 10, (n_test,), generator=generator))
    return DeviceData(raw, device, torch.float32, memory_format=memory_format)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _memory_baseline(device: torch.device) -> int:
    """Bytes allocated now (the resident data), to subtract from the peak."""
    if device.type != "cuda":
        return 0
    torch.cuda.synchronize(device)
    return torch.cuda.memory_allocated(device)


def _restart_peak(device: torch.device) -> None:
    """Forget the peak so far (the warm-up's cuDNN autotuning workspaces)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_above(device: torch.device, baseline: int) -> float:
    return float(torch.cuda.max_memory_allocated(device) - baseline) if device.type == "cuda" else float("nan")


def one_at_a_time(configs: list[RunConfig], data: DeviceData, epochs: int,
                  memory_format: torch.memory_format) -> Timing:
    """The runs one after another: one warm-up epoch each, then ``epochs`` timed epochs of training and metrics."""
    timing, peaks = Timing(), []
    for config in configs:
        baseline = _memory_baseline(data.device)
        model = build_model(config, 3, 10).to(data.device, memory_format=memory_format)
        si = list(si_parameters(model).values())
        optimizer = SphereSGD(si, config.elr)
        for epoch in range(epochs + 1):
            _sync(data.device)
            start = time.perf_counter()
            model.train()
            loss_sum = torch.zeros((), dtype=torch.float64, device=data.device)
            for x, y in data.train_batches(epoch, config.seed, BATCH):
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach().double() * len(y)
            float(loss_sum)  # the engine reads the running loss every epoch
            _sync(data.device)
            trained = time.perf_counter()
            train_mode_pass(model, data, si, BATCH)
            evaluate(model, data, "test", BATCH)
            _sync(data.device)
            if epoch > 0:  # epoch 0 warms up (cuDNN autotuning, allocator)
                timing.train_s += trained - start
                timing.metrics_s += time.perf_counter() - trained
            else:
                _restart_peak(data.device)
        peaks.append(_peak_above(data.device, baseline))
        del model, optimizer, si
    timing.peak_per_model = max(peaks)
    return timing


def batched(configs: list[RunConfig], data: DeviceData, epochs: int, memory_format: torch.memory_format) -> Timing:
    """All runs at once with :class:`BatchedSweep`: a warm-up epoch, then ``epochs`` timed epochs."""
    timing = Timing()
    baseline = _memory_baseline(data.device)
    sweep = BatchedSweep(configs, data, memory_format)
    for epoch in range(epochs + 1):
        _sync(data.device)
        start = time.perf_counter()
        step_stats = sweep.train_epoch(epoch)
        float(step_stats["loss_sum"].sum())
        _sync(data.device)
        trained = time.perf_counter()
        sweep.rows(epoch, step_stats)  # full metrics: every epoch is within dense_metric_epochs
        _sync(data.device)
        if epoch > 0:
            timing.train_s += trained - start
            timing.metrics_s += time.perf_counter() - trained
        else:
            _restart_peak(data.device)
    timing.peak_per_model = _peak_above(data.device, baseline) / len(configs)
    return timing


def equivalence_check(configs: list[RunConfig], data: DeviceData, steps: int = 3) -> tuple[float, float]:
    """Max relative difference of the losses and max absolute difference of the weights after ``steps``
    float64 steps of the fused model against the K models one at a time, on ``data.device``."""
    device = data.device
    singles = [build_model(c, 3, 10).to(device, torch.float64) for c in configs]
    fused = BatchedConvNetSI.from_models(singles).to(device, torch.float64)
    optimizers = [SphereSGD(si_parameters(m), c.elr) for m, c in zip(singles, configs)]
    names = fused.si_parameter_names()
    fused_optimizer = BatchedSphereSGD([p for n, p in fused.named_parameters() if n in names],
                                       [c.elr for c in configs])
    loss_gap = 0.0
    for step, (x, y) in enumerate(data.train_batches(0, 0, BATCH)):
        if step == steps:
            break
        x = x.double()
        single = torch.stack([F.cross_entropy(m(x), y) for m in singles])
        together = per_model_cross_entropy(fused(x), y)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        fused_optimizer.zero_grad(set_to_none=True)
        (single.sum() + together.sum()).backward()
        for optimizer in optimizers:
            optimizer.step()
        fused_optimizer.step()
        loss_gap = max(loss_gap, float(((single - together).abs() / single.abs()).max().detach()))
    weight_gap = max(float((state[key] - value).abs().max())
                     for model, state in zip(singles, fused.split()) for key, value in model.state_dict().items())
    return loss_gap, weight_gap


def metric_epochs(epochs: int) -> int:
    """Epochs with the full metric passes (epoch 0 included) under the ``paper`` preset's schedule."""
    config = RunConfig(elr=1e-3, epochs=epochs, metric_every=10)
    return sum(config.has_full_metrics(epoch) for epoch in range(epochs + 1))


def figure1_hours(timing: Timing, models_at_once: int, models_timed: int, n_train: int, epochs_timed: int,
                  passes: int) -> float:
    """Projected hours for Figure 1: ``ceil(8 / models_at_once)`` rounds of ``models_at_once`` runs, each
    1000 epochs of 50k images and ``passes`` metric passes, from the measured seconds per model-image."""
    per_image_train = timing.train_s / (models_timed * epochs_timed * n_train)
    per_image_metrics = timing.metrics_s / (models_timed * epochs_timed * n_train)
    rounds = math.ceil(FIGURE1["elrs"] / models_at_once) * models_at_once
    seconds = rounds * FIGURE1["train_images"] * (FIGURE1["epochs"] * per_image_train + passes * per_image_metrics)
    return seconds / 3600


def _set_precision(device: torch.device, tf32: bool) -> str:
    if device.type != "cuda":
        return "fp32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    return "TF32 compute, fp32 weights" if tf32 else "strict fp32"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} thread(s)"


def _mib(value: float) -> str:
    return "n/a (CPU)" if math.isnan(value) else f"{value / 2 ** 20:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:1, cpu")
    parser.add_argument("--width", type=int, default=32, help="channels of the first conv (paper: 32)")
    parser.add_argument("--k", type=int, default=8, help="ELRs of the sweep, log-spaced in [1e-5, 1e-1]")
    parser.add_argument("--steps", type=int, default=100, help="training batches of 128 per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    parser.add_argument("--tf32", action="store_true", help="TF32 convolutions and matmuls (fp32 weights)")
    parser.add_argument("--memory-format", choices=sorted(MEMORY_FORMATS), default="channels_last")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args()
    for name in ("width", "k", "steps", "epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except (ValueError, RuntimeError) as error:
        parser.error(str(error))
    precision = _set_precision(device, args.tf32)
    memory_format = MEMORY_FORMATS[args.memory_format]
    n_train = args.steps * BATCH
    data = synthetic_data(n_train, device, memory_format)
    elrs = [float(e) for e in np.geomspace(1e-5, 1e-1, args.k)]
    configs = [RunConfig(dataset="cifar10", width=args.width, elr=elr, epochs=args.epochs + 1,
                         dense_metric_epochs=args.epochs + 1, device=str(device)) for elr in elrs]

    print(f"ConvNetSI-{args.width} on synthetic 3x32x32 data, batch {BATCH}, K={args.k} ELRs "
          f"{elrs[0]:g}..{elrs[-1]:g}; an epoch = {args.steps} steps ({n_train} images) + metric pass "
          f"({n_train} train-mode, {len(data.test_y)} test images); {args.epochs} timed epochs after 1 warm-up")
    print(f"device: {_device_name(device)}; {precision}; {args.memory_format}; torch {torch.__version__}",
          flush=True)
    checked = min(3, args.steps)
    loss_gap, weight_gap = equivalence_check(configs, data, checked)
    print(f"equivalence on this device (float64, {checked} steps): max relative loss difference {loss_gap:.1e}, "
          f"max weight difference {weight_gap:.1e}", flush=True)

    single = one_at_a_time(configs, data, args.epochs, memory_format)
    fused = batched(configs, data, args.epochs, memory_format)
    images = args.k * args.epochs * n_train
    print(f"\n{'engine':<18} {'train img/s':>12} {'metrics img/s':>14} {'train+metrics img/s':>20} "
          f"{'peak MiB/model':>15}")
    for name, timing in (("one at a time", single), (f"batched (K={args.k})", fused)):
        print(f"{name:<18} {images / timing.train_s:>12.0f} {images / timing.metrics_s:>14.0f} "
              f"{images / (timing.train_s + timing.metrics_s):>20.0f} {_mib(timing.peak_per_model):>15}")
    total = (single.train_s + single.metrics_s) / (fused.train_s + fused.metrics_s)
    print(f"{'batched speed-up':<18} {single.train_s / fused.train_s:>11.2f}x "
          f"{single.metrics_s / fused.metrics_s:>13.2f}x {total:>19.2f}x")

    passes = metric_epochs(FIGURE1["epochs"])
    print(f"\nProjected Figure 1 on this device ({FIGURE1['elrs']} ELRs x {FIGURE1['epochs']} epochs x "
          f"{FIGURE1['train_images']} images; metric passes at {passes} epochs as the paper preset / at every epoch):")
    for name, timing, at_once in (("one at a time", single, 1), (f"batched (K={args.k})", fused, args.k)):
        sparse = figure1_hours(timing, at_once, args.k, n_train, args.epochs, passes)
        dense = figure1_hours(timing, at_once, args.k, n_train, args.epochs, FIGURE1["epochs"] + 1)
        print(f"  {name:<18} {sparse:8.2f} h / {dense:8.2f} h")


if __name__ == "__main__":
    main()
