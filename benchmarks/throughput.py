"""Throughput of sphere training with the paper's per-epoch metrics: this package against an
official-style loop, side by side in one process (issue 9; prints figures, asserts nothing).

Both sides train ConvNetSI on the first ``--train-size`` real Fashion-MNIST images at batch 128 with
SphereSGD and produce, for every epoch, the train-mode train loss and error, the mean effective
gradient norm and the test error, with the same definitions (``sphere_regimes.metrics``):

* **ours**: the training engine (device-resident normalised tensors, channels-last, one fused
  train-mode pass for loss, error and effective gradient), a sweep of ``--elrs`` as
  ``--workers`` processes of ``threads / workers`` threads each;
* **ours fused**: the same sweep as one fused model per worker (:class:`sphere_regimes.batched.BatchedSweep`:
  the ELRs' networks concatenated channel-wise, grouped convolutions), with the same metrics;
* **official-style**: ``torchvision.datasets.FashionMNIST`` with per-sample ``ToTensor`` and
  ``Normalize`` through a ``DataLoader`` (the better of ``num_workers`` 0 and 2), a checkpoint saved
  every epoch, and the metrics computed afterwards by reloading each checkpoint (as the paper's code
  does), the ELRs one after another with all threads.

Run: ``.venv/bin/python benchmarks/throughput.py`` (about 10 minutes on 2 cores with the defaults).
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

from sphere_regimes import RunConfig, SphereSGD, si_parameters
from sphere_regimes.batched import BatchedSweep
from sphere_regimes.data import DATASET_INFO, load_raw
from sphere_regimes.engine import run
from sphere_regimes.factories import build_model
from sphere_regimes.optim import joint_norm
from sphere_regimes.store import RunStore

BATCH = 128


# --------------------------------------------------------------------------- ours

def _ours_one(args: tuple[RunConfig, str, int]) -> float:
    config, root, threads = args
    torch.set_num_threads(threads)
    run(config, RunStore(root), progress=False)
    return config.epochs * config.train_size


def _sweep_configs(elrs: list[float], width: int, train_size: int, epochs: int) -> list[RunConfig]:
    """The benchmark's runs: full metrics every epoch."""
    return [RunConfig(train_size=train_size, width=width, elr=elr, epochs=epochs, device="cpu",
                      dense_metric_epochs=epochs) for elr in elrs]


def _images_per_second(worker, jobs: list, workers: int) -> float:
    """Run ``worker`` (returning its images) on every job, in this process or a pool of ``workers``."""
    start = time.perf_counter()
    if workers == 1:
        images = sum(worker(job) for job in jobs)
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            images = sum(pool.map(worker, jobs))
    return images / (time.perf_counter() - start)


def ours(elrs: list[float], width: int, train_size: int, epochs: int, threads: int, workers: int) -> float:
    """Images per second of the whole sweep (train + full metrics every epoch)."""
    with tempfile.TemporaryDirectory() as root:
        jobs = [(c, root, max(threads // workers, 1)) for c in _sweep_configs(elrs, width, train_size, epochs)]
        return _images_per_second(_ours_one, jobs, workers)


def _batched_one(args: tuple[list[RunConfig], int]) -> float:
    configs, threads = args
    torch.set_num_threads(threads)
    BatchedSweep(configs).run()
    return len(configs) * configs[0].epochs * configs[0].train_size


def batched(elrs: list[float], width: int, train_size: int, epochs: int, threads: int, workers: int) -> float:
    """Images per second of the sweep trained as ``workers`` fused models (``sphere_regimes.batched``,
    grouped convolutions) of ``len(elrs) / workers`` ELRs each, same metrics every epoch."""
    configs = _sweep_configs(elrs, width, train_size, epochs)
    jobs = [(configs[i::workers], max(threads // workers, 1)) for i in range(workers)]
    return _images_per_second(_batched_one, jobs, workers)


# --------------------------------------------------------------------------- official-style reference

def _torchvision_root(directory: Path) -> Path:
    """Fashion-MNIST in torchvision's layout (uncompressed idx files in FashionMNIST/raw)."""
    raw = directory / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    data = load_raw("fashion_mnist")
    for split, images, labels in (("train", data.train_images, data.train_labels),
                                  ("t10k", data.test_images, data.test_labels)):
        count = len(labels)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(
            b"\x00\x00\x08\x03" + np.array([count, 28, 28], ">i4").tobytes() + images.numpy().tobytes())
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(
            b"\x00\x00\x08\x01" + np.array([count], ">i4").tobytes() + labels.numpy().astype(np.uint8).tobytes())
    return directory


def _loaders(root: Path, train_size: int, num_workers: int) -> tuple[DataLoader, DataLoader, DataLoader]:
    info = DATASET_INFO["fashion_mnist"]
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(info.mean, info.std)])
    train = Subset(torchvision.datasets.FashionMNIST(str(root), train=True, transform=transform),
                   range(train_size))
    test = torchvision.datasets.FashionMNIST(str(root), train=False, transform=transform)
    shuffled = DataLoader(train, batch_size=BATCH, shuffle=True, num_workers=num_workers)
    ordered = DataLoader(train, batch_size=BATCH, shuffle=False, num_workers=num_workers)
    return shuffled, ordered, DataLoader(test, batch_size=BATCH, shuffle=False, num_workers=num_workers)


def _official_run(elr: float, width: int, epochs: int, loaders, workdir: Path) -> None:
    shuffled, ordered, test = loaders
    config = RunConfig(width=width, elr=elr, epochs=epochs, device="cpu")
    model = build_model(config, 1, 10)
    si = si_parameters(model)
    optimizer = SphereSGD(si, elr)
    for epoch in range(1, epochs + 1):
        model.train()
        for x, y in shuffled:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        torch.save(model.state_dict(), workdir / f"epoch{epoch}.pt")
    for epoch in range(1, epochs + 1):  # the paper's code evaluates saved checkpoints afterwards
        model.load_state_dict(torch.load(workdir / f"epoch{epoch}.pt"))
        model.train()
        losses, grad_norms = [], []
        for x, y in ordered:
            loss = F.cross_entropy(model(x), y)
            grads = torch.autograd.grad(loss, list(si.values()))
            grad_norms.append(float(joint_norm(grads) * joint_norm([w.detach() for w in si.values()])))
            losses.append(float(loss.detach()))
        model.eval()
        with torch.no_grad():
            errors = [float((model(x).argmax(1) != y).float().mean()) for x, y in test]
        assert np.isfinite(np.mean(losses) + np.mean(grad_norms) + np.mean(errors))


def official(elrs: list[float], width: int, train_size: int, epochs: int, threads: int) -> tuple[float, int]:
    """Images per second of the sweep run one ELR at a time, and the better ``num_workers``."""
    torch.set_num_threads(threads)
    best = (0.0, 0)
    with tempfile.TemporaryDirectory() as scratch:
        root = _torchvision_root(Path(scratch) / "data")
        for num_workers in (0, 2):
            loaders = _loaders(root, train_size, num_workers)
            start = time.perf_counter()
            for index, elr in enumerate(elrs):
                workdir = Path(scratch) / f"w{num_workers}-{index}"
                workdir.mkdir()
                _official_run(elr, width, epochs, loaders, workdir)
            speed = len(elrs) * epochs * train_size / (time.perf_counter() - start)
            best = max(best, (speed, num_workers))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--elrs", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2, 1e-1])
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    print(f"ConvNetSI on {args.train_size} Fashion-MNIST images, batch {BATCH}, {args.epochs} epochs, "
          f"{len(args.elrs)} ELRs, {args.threads} threads in all; images per second (train + per-epoch metrics)")
    print(f"{'width':>5} {'official (1 run)':>17} {'official sweep':>15} {'ours (1 run)':>13} "
          f"{'ours sweep':>11} {'ours fused':>11} {'single ratio':>13} {'sweep ratio':>12}")
    for width in args.widths:
        single_official, _ = official(args.elrs[:1], width, args.train_size, args.epochs, args.threads)
        sweep_official, num_workers = official(args.elrs, width, args.train_size, args.epochs, args.threads)
        single_ours = ours(args.elrs[:1], width, args.train_size, args.epochs, args.threads, workers=1)
        workers = sorted({1, args.threads})
        sweep_ours = max(ours(args.elrs, width, args.train_size, args.epochs, args.threads, workers=w) for w in workers)
        fused = max(batched(args.elrs, width, args.train_size, args.epochs, args.threads, workers=w) for w in workers)
        print(f"{width:>5} {single_official:>17.0f} {sweep_official:>15.0f} {single_ours:>13.0f} "
              f"{sweep_ours:>11.0f} {fused:>11.0f} {single_ours / single_official:>12.2f}x "
              f"{max(sweep_ours, fused) / sweep_official:>11.2f}x   (official num_workers={num_workers})", flush=True)


if __name__ == "__main__":
    main()
