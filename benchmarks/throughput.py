"""Throughput of sphere training with the paper's per-epoch metrics: this package against two references
written as the paper's code works, side by side in one process, with the arithmetic rate next to this
machine's measured matrix-multiply peak (issues 9 and 16; prints figures, asserts nothing).

Every side trains ConvNetSI on the first ``--train-size`` real Fashion-MNIST images at batch 128 with
SphereSGD and produces, for every epoch (and the initial point), the train-mode train loss and error,
the mean effective gradient norm and the test error, with the same definitions (``sphere_regimes.metrics``):

* **ours**: the training engine (device-resident normalised tensors, channels-last, one fused train-mode
  pass for loss, error and effective gradient), a sweep of ``--elrs`` as ``--workers`` processes of
  ``threads / workers`` threads each (the better of 1 and ``threads``), in each ``--compute-dtypes``;
* **ours fused**: the same sweep as one fused model per worker (:class:`sphere_regimes.batched.BatchedSweep`:
  the ELRs' networks concatenated channel-wise, grouped convolutions), float32 only;
* **official**: the passes of the official code (``tipt0p/three_regimes_on_the_sphere``): ``train.py``
  trains through a torchvision ``DataLoader`` with per-sample ``ToTensor`` + ``Normalize``, saves a
  checkpoint (weights and optimizer state) at the start and after every epoch and evaluates the test set at
  the first and the last epoch; then ``get_info.py`` runs three times, each building its loaders anew and
  reloading every checkpoint: the train-mode loss and accuracy without gradients (``train-tm``), the test
  set in eval mode (``test-em``) and the train-mode minibatch gradients of the SI weights, kept in a list
  and reduced to the mean norm afterwards (``train-tm-prebn``). The ELRs run one after another with all
  threads; the better of ``num_workers`` 0 and 2. The start-up of its four processes is not counted;
* **merged**: the reference of issue 9: as *official*, but the loss, error and gradient come from one
  train-mode pass (one reload per checkpoint) and the test set from a second.

GFLOP/s counts the convolution and matrix-multiply FLOPs of the passes (``torch.utils.flop_counter``): a
training step (forward and backward), the train-mode metric pass (forward, backward to the SI weights) and the
test forward, per image; the peak is ``torch.mm`` of two 2048 x 2048 matrices in float32 and bfloat16 with
the same threads, measured in the same run.

Run: ``.venv/bin/python benchmarks/throughput.py`` (about 15 minutes on 2 cores with the defaults;
``--widths 16 32 --train-size 2000`` for the wider nets).
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
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

from sphere_regimes import RunConfig, SphereSGD, si_parameters
from sphere_regimes.batched import BatchedSweep
from sphere_regimes.data import DATASET_INFO, load_raw
from sphere_regimes.engine import run
from sphere_regimes.factories import build_model
from sphere_regimes.optim import joint_norm
from sphere_regimes.store import RunStore

BATCH = 128
TEST_IMAGES = 10000


# --------------------------------------------------------------------------- arithmetic

def matmul_peak(dtype: torch.dtype, threads: int, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of ``torch.mm`` of two ``size`` x ``size`` matrices (best of ``repeats``)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _flops(work) -> int:
    with FlopCounterMode(display=False) as counter:
        work()
    return counter.get_total_flops()


def epoch_flops(width: int, train_size: int) -> float:
    """FLOPs of one epoch with full metrics: training steps and the train-mode metric pass over
    ``train_size`` images, the test forward over the test set (counted on one batch and scaled)."""
    model = build_model(RunConfig(width=width, elr=1e-3, device="cpu"), 1, 10)
    si = list(si_parameters(model).values())
    x, y = torch.randn(BATCH, 1, 28, 28), torch.randint(0, 10, (BATCH,))
    step = _flops(lambda: F.cross_entropy(model(x), y).backward())
    metric = _flops(lambda: torch.autograd.grad(F.cross_entropy(model(x), y), si))
    model.eval()
    with torch.no_grad():
        test = _flops(lambda: model(x))
    return (step + metric) / BATCH * train_size + test / BATCH * TEST_IMAGES


# --------------------------------------------------------------------------- ours

def _ours_one(args: tuple[RunConfig, str, int]) -> float:
    config, root, threads = args
    torch.set_num_threads(threads)
    run(config, RunStore(root), progress=False)
    return config.epochs * config.train_size


def _sweep_configs(elrs: list[float], width: int, train_size: int, epochs: int,
                   compute_dtype: str = "float32") -> list[RunConfig]:
    """The benchmark's runs: full metrics every epoch."""
    return [RunConfig(train_size=train_size, width=width, elr=elr, epochs=epochs, device="cpu",
                      dense_metric_epochs=epochs, compute_dtype=compute_dtype) for elr in elrs]


def _images_per_second(worker, jobs: list, workers: int) -> float:
    """Run ``worker`` (returning its images) on every job, in this process or a pool of ``workers``."""
    start = time.perf_counter()
    if workers == 1:
        images = sum(worker(job) for job in jobs)
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            images = sum(pool.map(worker, jobs))
    return images / (time.perf_counter() - start)


def ours(configs: list[RunConfig], threads: int, workers: int) -> float:
    """Images per second of the whole sweep (train + full metrics every epoch)."""
    with tempfile.TemporaryDirectory() as root:
        jobs = [(c, root, max(threads // workers, 1)) for c in configs]
        return _images_per_second(_ours_one, jobs, workers)


def _batched_one(args: tuple[list[RunConfig], int]) -> float:
    configs, threads = args
    torch.set_num_threads(threads)
    BatchedSweep(configs).run()
    return len(configs) * configs[0].epochs * configs[0].train_size


def batched(configs: list[RunConfig], threads: int, workers: int) -> float:
    """Images per second of the sweep trained as ``workers`` fused models (``sphere_regimes.batched``,
    grouped convolutions) of ``len(configs) / workers`` ELRs each, same metrics every epoch."""
    jobs = [(configs[i::workers], max(threads // workers, 1)) for i in range(workers)]
    return _images_per_second(_batched_one, jobs, workers)


# --------------------------------------------------------------------------- references (the paper's code's passes)

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


def _loader(root: Path, train: bool, train_size: int, num_workers: int, shuffle: bool = False) -> DataLoader:
    info = DATASET_INFO["fashion_mnist"]
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(info.mean, info.std)])
    dataset = torchvision.datasets.FashionMNIST(str(root), train=train, transform=transform)
    if train:
        dataset = Subset(dataset, range(train_size))
    return DataLoader(dataset, batch_size=BATCH, shuffle=shuffle, num_workers=num_workers)


def _mean_loss_error(model, loader: DataLoader) -> tuple[float, float]:
    """Mean cross-entropy and error over ``loader`` without gradients, in the model's current mode."""
    loss, wrong = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            wrong += int((logits.argmax(1) != y).sum())
    return loss / len(loader.dataset), wrong / len(loader.dataset)


def _train_with_checkpoints(elr: float, width: int, epochs: int, root: Path, train_size: int, num_workers: int,
                            workdir: Path):
    """``train.py``: train, saving the weights and optimizer state at the start and after every epoch;
    the test set is evaluated at the first and the last epoch. Returns the model and its SI tensors."""
    model = build_model(RunConfig(width=width, elr=elr, epochs=epochs, device="cpu"), 1, 10)
    si = si_parameters(model)
    optimizer = SphereSGD(si, elr)
    train, test = _loader(root, True, train_size, num_workers, shuffle=True), _loader(root, False, 0, num_workers)

    def save(epoch: int) -> None:
        torch.save({"state_dict": model.state_dict(), "optimizer": optimizer.state_dict()},
                   workdir / f"checkpoint-{epoch}.pt")

    save(0)
    for epoch in range(1, epochs + 1):
        model.train()
        for x, y in train:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        if epoch in (1, epochs):
            model.eval()
            _mean_loss_error(model, test)
        save(epoch)
    return model, list(si.values())


def _checkpoints(model, workdir: Path, epochs: int):
    """Each saved checkpoint, loaded into ``model`` (as ``get_info.py`` does for every report epoch)."""
    for epoch in range(epochs + 1):
        model.load_state_dict(torch.load(workdir / f"checkpoint-{epoch}.pt")["state_dict"])
        yield epoch


def _official_run(elr: float, width: int, epochs: int, root: Path, train_size: int, num_workers: int,
                  workdir: Path) -> None:
    model, si = _train_with_checkpoints(elr, width, epochs, root, train_size, num_workers, workdir)
    ordered = _loader(root, True, train_size, num_workers)  # get_info.py train-tm
    for _ in _checkpoints(model, workdir, epochs):
        model.train()
        _mean_loss_error(model, ordered)
    test = _loader(root, False, 0, num_workers)  # get_info.py test-em
    for _ in _checkpoints(model, workdir, epochs):
        model.eval()
        _mean_loss_error(model, test)
    ordered = _loader(root, True, train_size, num_workers)  # get_info.py train-tm-prebn
    for _ in _checkpoints(model, workdir, epochs):
        model.train()
        grads = [torch.autograd.grad(F.cross_entropy(model(x), y), si) for x, y in ordered]
        assert np.isfinite(np.mean([float(joint_norm(g)) for g in grads]))


def _merged_run(elr: float, width: int, epochs: int, root: Path, train_size: int, num_workers: int,
                workdir: Path) -> None:
    model, si = _train_with_checkpoints(elr, width, epochs, root, train_size, num_workers, workdir)
    ordered, test = _loader(root, True, train_size, num_workers), _loader(root, False, 0, num_workers)
    for _ in _checkpoints(model, workdir, epochs):
        model.train()
        losses, grad_norms = [], []
        for x, y in ordered:
            loss = F.cross_entropy(model(x), y)
            grad_norms.append(float(joint_norm(torch.autograd.grad(loss, si)) * joint_norm([w.detach() for w in si])))
            losses.append(float(loss.detach()))
        model.eval()
        _mean_loss_error(model, test)
        assert np.isfinite(np.mean(losses) + np.mean(grad_norms))


def reference(kind: str, elrs: list[float], width: int, train_size: int, epochs: int, threads: int,
              loader_workers: tuple[int, ...] = (0, 2)) -> tuple[float, int]:
    """Images per second of the reference ``kind`` ("official" or "merged") run one ELR at a time, and
    the better ``num_workers`` of ``loader_workers``."""
    torch.set_num_threads(threads)
    one_run = {"official": _official_run, "merged": _merged_run}[kind]
    best = (0.0, 0)
    with tempfile.TemporaryDirectory() as scratch:
        root = _torchvision_root(Path(scratch) / "data")
        for num_workers in loader_workers:
            start = time.perf_counter()
            for index, elr in enumerate(elrs):
                workdir = Path(scratch) / f"{kind}-w{num_workers}-{index}"
                workdir.mkdir()
                one_run(elr, width, epochs, root, train_size, num_workers, workdir)
            best = max(best, (len(elrs) * epochs * train_size / (time.perf_counter() - start), num_workers))
    return best


# --------------------------------------------------------------------------- the table

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[8])
    parser.add_argument("--elrs", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2, 1e-1])
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--compute-dtypes", nargs="+", default=["float32", "bfloat16"],
                        choices=["float32", "bfloat16"])
    parser.add_argument("--no-fused", action="store_true", help="skip the fused (batched) engine")
    parser.add_argument("--loader-workers", type=int, nargs="+", default=[0, 2],
                        help="DataLoader num_workers the references try (the better one counts)")
    args = parser.parse_args()
    peaks = {name: matmul_peak(getattr(torch, name), args.threads) for name in ("float32", "bfloat16")}
    print(f"ConvNetSI on {args.train_size} Fashion-MNIST images (+ {TEST_IMAGES} test), batch {BATCH}, "
          f"{args.epochs} epochs, {len(args.elrs)} ELRs, {args.threads} threads in all, torch {torch.__version__}; "
          "images per second of the sweep (train + full metrics every epoch)")
    print(f"matrix-multiply peak (2048^2, {args.threads} threads): float32 {peaks['float32']:.0f} GFLOP/s, "
          f"bfloat16 {peaks['bfloat16']:.0f} GFLOP/s")
    print(f"{'width':>5} {'official':>9} {'merged':>7} {'engine':>9} {'ours':>7} {'workers':>7} "
          f"{'vs official':>11} {'vs merged':>9} {'GFLOP/s':>8} {'of f32 peak':>11} {'of bf16 peak':>12}")
    workers = sorted({1, args.threads})
    for width in args.widths:
        official, _ = reference("official", args.elrs, width, args.train_size, args.epochs, args.threads,
                                tuple(args.loader_workers))
        merged, _ = reference("merged", args.elrs, width, args.train_size, args.epochs, args.threads,
                              tuple(args.loader_workers))
        flops_per_image = epoch_flops(width, args.train_size) / args.train_size
        engines = {}
        for dtype in args.compute_dtypes:
            configs = _sweep_configs(args.elrs, width, args.train_size, args.epochs, dtype)
            engines[dtype] = max((ours(configs, args.threads, w), w) for w in workers)
        if not args.no_fused:
            configs = _sweep_configs(args.elrs, width, args.train_size, args.epochs)
            engines["fused"] = max((batched(configs, args.threads, w), w) for w in workers)
        for name, (speed, used) in engines.items():
            rate = speed * flops_per_image / 1e9
            print(f"{width:>5} {official:>9.0f} {merged:>7.0f} {name:>9} {speed:>7.0f} {used:>7} "
                  f"{speed / official:>10.2f}x {speed / merged:>8.2f}x {rate:>8.1f} "
                  f"{rate / peaks['float32']:>11.1%} {rate / peaks['bfloat16']:>12.1%}", flush=True)


if __name__ == "__main__":
    main()
