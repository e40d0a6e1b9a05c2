"""Datasets as device-resident tensors: read once, normalised once, batches sliced on the device.

* Fashion-MNIST from the gzip'd (or plain) idx files, as Debian's ``dataset-fashion-mnist``
  package installs them or as torchvision lays them out under ``ROOT/FashionMNIST/raw``.
* CIFAR-10 and CIFAR-100 from torchvision's python-format batches
  (``ROOT/cifar-10-batches-py``, ``ROOT/cifar-100-python``).

Batch order and augmentation are drawn from a CPU generator seeded by ``(seed, epoch)``, so
the data seen at any epoch is known without replaying earlier ones (exact resume) and is the
same on every device. No per-sample Python transforms.
"""

from __future__ import annotations

import functools
import gzip
import pickle
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import paths


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message says where we looked and how to get them."""


class CorruptDataError(ValueError):
    """A dataset file exists but is not what its name promises."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    in_channels: int
    num_classes: int
    mean: tuple[float, ...]  # per-channel mean of the training images in [0, 1]
    std: tuple[float, ...]  # per-channel std used for normalisation
    title: str = ""  # the name to print: Fashion-MNIST, CIFAR-10, CIFAR-100


DATASET_INFO = {
    "fashion_mnist": DatasetInfo("fashion_mnist", 1, 10, (0.2860,), (0.3530,), "Fashion-MNIST"),
    # CIFAR statistics as in the official code (its std values are the commonly used ones).
    "cifar10": DatasetInfo("cifar10", 3, 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), "CIFAR-10"),
    "cifar100": DatasetInfo("cifar100", 3, 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "CIFAR-100"),
}


@dataclass(frozen=True)
class RawDataset:
    """uint8 images (N, C, H, W) and int64 labels, on the CPU."""

    info: DatasetInfo
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


# -- locating files -------------------------------------------------------------------

_FMNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_CIFAR_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_GET_DATA_HINT = {
    "fashion_mnist": ("run `make data` (on Debian as root it runs `apt-get install dataset-fashion-mnist`; "
                      "elsewhere it downloads with torchvision), or point SPHERE_REGIMES_DATA at a folder "
                      "holding FashionMNIST/raw/"),
    "cifar10": ("on a machine with internet run `python -c \"import torchvision; "
                "torchvision.datasets.CIFAR10('DATA', download=True)\"` and copy DATA/cifar-10-batches-py "
                "into the data folder, or set SPHERE_REGIMES_DATA to the folder that holds it"),
    "cifar100": ("on a machine with internet run `python -c \"import torchvision; "
                 "torchvision.datasets.CIFAR100('DATA', download=True)\"` and copy DATA/cifar-100-python "
                 "into the data folder, or set SPHERE_REGIMES_DATA to the folder that holds it"),
}


def _candidate_dirs(name: str, root: Path) -> list[Path]:
    if name == "fashion_mnist":
        return [root / "FashionMNIST" / "raw", root / "fashion-mnist", root, paths.DEBIAN_FASHION_MNIST_DIR]
    return [root / _CIFAR_DIRS[name], root]


def _find_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing(name: str, looked: list[Path]) -> DataNotFoundError:
    where = ", ".join(str(p) for p in looked)
    return DataNotFoundError(f"{name} data not found (looked in: {where}). To get it: {_GET_DATA_HINT[name]}.")


# -- readers ----------------------------------------------------------------------------

def _read_idx(path: Path, expected_dims: int) -> np.ndarray:
    """Read an idx file (magic 0x0000 08 NDIM, big-endian sizes, uint8 payload)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            blob = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise CorruptDataError(f"cannot read {path}: {error}; delete it and fetch the data again") from None
    header = 4 + 4 * expected_dims
    if len(blob) < header or blob[:3] != b"\x00\x00\x08" or blob[3] != expected_dims:
        raise CorruptDataError(f"{path} is not an idx file with {expected_dims} dimension(s) of uint8")
    shape = tuple(int.from_bytes(blob[4 + 4 * i: 8 + 4 * i], "big") for i in range(expected_dims))
    payload = np.frombuffer(blob, dtype=np.uint8, offset=header)
    if payload.size != int(np.prod(shape)):
        raise CorruptDataError(f"{path} is truncated: header says {shape}, found {payload.size} bytes")
    return payload.reshape(shape)


def _load_fashion_mnist(root: Path) -> RawDataset:
    looked = _candidate_dirs("fashion_mnist", root)
    for directory in looked:
        found = {key: _find_file(directory, stem) for key, stem in _FMNIST_FILES.items()}
        if all(found.values()):
            arrays = {key: _read_idx(path, 3 if key.endswith("images") else 1) for key, path in found.items()}
            for split in ("train", "test"):
                images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
                if len(images) != len(labels):
                    raise CorruptDataError(f"{found[f'{split}_images']} has {len(images)} images but "
                                           f"{found[f'{split}_labels']} has {len(labels)} labels")
            return RawDataset(
                DATASET_INFO["fashion_mnist"],
                torch.from_numpy(arrays["train_images"].copy()).unsqueeze(1),
                torch.from_numpy(arrays["train_labels"].astype(np.int64)),
                torch.from_numpy(arrays["test_images"].copy()).unsqueeze(1),
                torch.from_numpy(arrays["test_labels"].astype(np.int64)),
            )
    raise _missing("fashion_mnist", looked)


def _read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[label_key.encode()], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, ValueError, TypeError, OverflowError) as error:
        raise CorruptDataError(f"{path} is not a CIFAR python-format batch ({type(error).__name__}: {error})") \
            from None
    if len(images) != len(labels):
        raise CorruptDataError(f"{path}: {len(images)} images but {len(labels)} labels")
    return images, labels


def _load_cifar(name: str, root: Path) -> RawDataset:
    if name == "cifar10":
        train_files, test_files, label_key = [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels"
    else:
        train_files, test_files, label_key = ["train"], ["test"], "fine_labels"
    looked = _candidate_dirs(name, root)
    for directory in looked:
        if all((directory / f).is_file() for f in train_files + test_files):
            train = [_read_cifar_batch(directory / f, label_key) for f in train_files]
            test = [_read_cifar_batch(directory / f, label_key) for f in test_files]
            return RawDataset(
                DATASET_INFO[name],
                torch.from_numpy(np.concatenate([b[0] for b in train])),
                torch.from_numpy(np.concatenate([b[1] for b in train])),
                torch.from_numpy(np.concatenate([b[0] for b in test])),
                torch.from_numpy(np.concatenate([b[1] for b in test])),
            )
    raise _missing(name, looked)


@functools.lru_cache(maxsize=4)
def load_raw(name: str, root: Path | None = None) -> RawDataset:
    """Read a dataset from disk (cached per process). ``root`` defaults to ``paths.DATA_DIR``."""
    if name not in DATASET_INFO:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASET_INFO)}")
    root = Path(root) if root is not None else paths.DATA_DIR
    if name == "fashion_mnist":
        return _load_fashion_mnist(root)
    return _load_cifar(name, root)


def download_fashion_mnist(root: Path | None = None) -> Path:
    """Fetch Fashion-MNIST with torchvision into ``ROOT/FashionMNIST/raw`` (needs internet)."""
    import torchvision  # optional dependency, only needed off Debian

    root = Path(root) if root is not None else paths.DATA_DIR
    torchvision.datasets.FashionMNIST(str(root), train=True, download=True)
    torchvision.datasets.FashionMNIST(str(root), train=False, download=True)
    return root / "FashionMNIST" / "raw"


# -- device-resident data -----------------------------------------------------------

def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """CPU generator for the random draws of one epoch, independent of every other epoch."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 8 + stream)


class DeviceData:
    """Normalised train/test tensors on ``device``; batches are slices or index gathers there.

    ``train_size`` keeps the first N training images. Augmentation (``augment=True``) is a
    random crop of the zero-padded image (pad 4, as torchvision's ``RandomCrop(32, padding=4)``)
    and a horizontal flip with probability 1/2, drawn per sample on the device.
    Images are stored channels-last (NHWC in memory), which makes the small convolutions of
    ConvNetSI about 1.5x faster on the CPU; the values are the same.
    ``drop_last_batch=True`` leaves the last partial batch out of every pass over the training images
    (training and train-mode metrics: whole batches only); the test images are always all used.
    """

    def __init__(self, raw: RawDataset, device: torch.device, dtype: torch.dtype = torch.float32,
                 train_size: int | None = None, augment: bool = False,
                 memory_format: torch.memory_format = torch.channels_last, drop_last_batch: bool = False) -> None:
        available = len(raw.train_labels)
        if train_size is not None and train_size > available:
            raise ValueError(f"train_size {train_size} exceeds the {available} training images of {raw.info.name}")
        n = available if train_size is None else train_size
        self.info = raw.info
        self.device = device
        self.augment = augment
        self.drop_last_batch = drop_last_batch
        self.memory_format = memory_format
        mean = torch.tensor(raw.info.mean, dtype=dtype).view(1, -1, 1, 1)
        std = torch.tensor(raw.info.std, dtype=dtype).view(1, -1, 1, 1)
        self._black = (-mean / std).to(device)  # the normalised value of a zero pixel
        self.train_x = self._normalised(raw.train_images[:n], mean, std)
        self.train_y = raw.train_labels[:n].to(device)
        self.test_x = self._normalised(raw.test_images, mean, std)
        self.test_y = raw.test_labels.to(device)

    def _normalised(self, images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """``(x / 255 - mean) / std`` on the device, in ``self.memory_format``."""
        x = (images.to(mean.dtype) / 255 - mean) / std
        return x.to(self.device).contiguous(memory_format=self.memory_format)

    @property
    def num_train(self) -> int:
        return len(self.train_y)

    def batch_starts(self, images: int, batch_size: int, split: str = "train") -> range:
        """First index of each minibatch of ``images`` images: every image (the last batch may be
        smaller), or with ``drop_last_batch`` on the training split whole batches only."""
        if split != "train" or not self.drop_last_batch:
            return range(0, images, batch_size)
        if images < batch_size:
            raise ValueError(f"drop_last_batch with batch_size {batch_size} leaves no whole batch of the {images} "
                             "training images; use a smaller batch_size or more images")
        return range(0, images - batch_size + 1, batch_size)

    def train_batches(self, epoch: int, seed: int, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled minibatches of epoch ``epoch`` (the last one may be smaller, unless ``drop_last_batch``),
        augmented if enabled."""
        order = torch.randperm(self.num_train, generator=epoch_generator(seed, epoch)).to(self.device)
        augment_generator = epoch_generator(seed, epoch, stream=1) if self.augment else None
        for start in self.batch_starts(self.num_train, batch_size):
            index = order[start:start + batch_size]
            x = self.train_x[index]
            if augment_generator is not None:
                x = self._augment(x, augment_generator)
            yield x, self.train_y[index]

    def eval_batches(self, split: str, batch_size: int,
                     limit: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Un-augmented minibatches of ``split`` ("train" or "test") in a fixed order; the first
        ``limit`` images only when given; whole batches only for "train" with ``drop_last_batch``."""
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
        x_all, y_all = (self.train_x, self.train_y) if split == "train" else (self.test_x, self.test_y)
        if limit is not None:
            x_all, y_all = x_all[:limit], y_all[:limit]
        for start in self.batch_starts(len(y_all), batch_size, split):
            yield x_all[start:start + batch_size], y_all[start:start + batch_size]

    def _augment(self, x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
        batch, _, height, width = x.shape
        shifts = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator).to(self.device)
        flips = (torch.rand(batch, generator=generator) < 0.5).to(self.device)
        padded = F.pad(x - self._black, (pad, pad, pad, pad))
        rows = shifts[0, :, None] + torch.arange(height, device=self.device)
        cols = shifts[1, :, None] + torch.arange(width, device=self.device)
        cols = torch.where(flips[:, None], cols.flip(1), cols)
        samples = torch.arange(batch, device=self.device)[:, None, None]
        cropped = padded.permute(0, 2, 3, 1)[samples, rows[:, :, None], cols[:, None, :]]
        return (cropped.permute(0, 3, 1, 2) + self._black).contiguous(memory_format=self.memory_format)
