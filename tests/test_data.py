"""Datasets: exact round trips of the on-disk formats, clear errors, the real Fashion-MNIST's
statistics, and device batches (permutation per epoch, exact resume, augmentation equal to a
naive per-sample reference)."""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from sphere_regimes import paths
from sphere_regimes.data import (
    DATASET_INFO,
    CorruptDataError,
    DataNotFoundError,
    DeviceData,
    RawDataset,
    epoch_generator,
    load_raw,
)

CPU = torch.device("cpu")
CIFAR10_BATCH_SIZES = (3, 4, 5, 6, 7)  # distinct sizes, so a wrong batch order also changes the layout
PAD = 4  # the augmentation's padding, as in torchvision's RandomCrop(32, padding=4)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """``load_raw`` is cached per process: every test reads its own files."""
    load_raw.cache_clear()
    yield
    load_raw.cache_clear()


@pytest.fixture
def no_debian_fmnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hide the Debian Fashion-MNIST installed on this machine, so that only ``tmp_path`` counts."""
    missing = tmp_path / "no-debian-fashion-mnist"
    monkeypatch.setattr(paths, "DEBIAN_FASHION_MNIST_DIR", missing)
    return missing


# -- writers for the real on-disk formats ----------------------------------------------------

def _write_idx(path: Path, array: np.ndarray, magic: bytes | None = None, payload: bytes | None = None) -> Path:
    """An idx file: ``00 00 08 NDIM``, big-endian uint32 sizes, uint8 payload; gzip'd if ``.gz``."""
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    blob = header + (payload if payload is not None else np.ascontiguousarray(array, dtype=np.uint8).tobytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(blob) if path.suffix == ".gz" else blob)
    return path


def _write_fashion_mnist(directory: Path, n_train: int = 12, n_test: int = 5, gz: bool = True,
                         seed: int = 0) -> dict[str, np.ndarray]:
    """Random Fashion-MNIST-shaped idx files in ``directory``; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, array in arrays.items():
        _write_idx(directory / (f"{stem}.gz" if gz else stem), array)
    return arrays


def _write_pickle(path: Path, obj: object) -> Path:
    """Pickle with protocol 2, as the original CIFAR batches are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)
    return path


def _cifar_batch(rng: np.random.Generator, n: int, label_keys: dict[bytes, int]) -> dict[bytes, object]:
    """One python-format batch: ``b"data"`` (n, 3072) uint8 in C,H,W order, labels as Python lists."""
    batch: dict[bytes, object] = {
        b"batch_label": b"synthetic batch",
        b"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
        b"filenames": [f"image_{i}.png".encode() for i in range(n)],
    }
    for key, classes in label_keys.items():
        batch[key] = rng.integers(0, classes, n).tolist()
    return batch


def _write_cifar10(root: Path, n_test: int = 5, seed: int = 0) -> tuple[list[dict], dict]:
    """``root/cifar-10-batches-py/data_batch_1..5`` and ``test_batch``; returns the batches written."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    train = [_cifar_batch(rng, n, {b"labels": 10}) for n in CIFAR10_BATCH_SIZES]
    for i, batch in enumerate(train, start=1):
        _write_pickle(folder / f"data_batch_{i}", batch)
    test = _cifar_batch(rng, n_test, {b"labels": 10})
    _write_pickle(folder / "test_batch", test)
    _write_pickle(folder / "batches.meta", {b"label_names": [b"airplane"] * 10})
    return train, test


def _write_cifar100(root: Path, n_train: int = 9, n_test: int = 4, seed: int = 0) -> tuple[dict, dict]:
    """``root/cifar-100-python/train`` and ``test`` with fine and coarse labels."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    train = _cifar_batch(rng, n_train, {b"fine_labels": 100, b"coarse_labels": 20})
    test = _cifar_batch(rng, n_test, {b"fine_labels": 100, b"coarse_labels": 20})
    _write_pickle(folder / "train", train)
    _write_pickle(folder / "test", test)
    return train, test


def _indexed_raw(n_train: int = 103, n_test: int = 21, channels: int = 3, size: int = 32,
                 seed: int = 0) -> RawDataset:
    """Random uint8 images whose label is their index, so that every batch says where it came from."""
    rng = np.random.default_rng(seed)
    info = DATASET_INFO["cifar10" if channels == 3 else "fashion_mnist"]
    return RawDataset(
        info,
        torch.from_numpy(rng.integers(0, 256, (n_train, channels, size, size), dtype=np.uint8)),
        torch.arange(n_train),
        torch.from_numpy(rng.integers(0, 256, (n_test, channels, size, size), dtype=np.uint8)),
        torch.arange(n_test),
    )


def _naive_normalise(images: np.ndarray, info) -> np.ndarray:
    """``(x / 255 - mean) / std`` per channel, in float64."""
    mean = np.asarray(info.mean).reshape(1, -1, 1, 1)
    std = np.asarray(info.std).reshape(1, -1, 1, 1)
    return (images.astype(np.float64) / 255 - mean) / std


# -- CIFAR round trips -------------------------------------------------------------------------

def test_cifar10_round_trip_is_exact_with_batches_in_order_1_to_5(tmp_path: Path):
    """Pixels come back as (N, 3, 32, 32) in C,H,W order; train batches are concatenated 1..5."""
    train, test = _write_cifar10(tmp_path)
    raw = load_raw("cifar10", tmp_path)
    n_train = sum(CIFAR10_BATCH_SIZES)
    assert raw.train_images.shape == (n_train, 3, 32, 32) and raw.train_images.dtype == torch.uint8
    assert raw.train_labels.dtype == torch.int64 and raw.test_labels.dtype == torch.int64
    expected_train = np.concatenate([b[b"data"] for b in train]).reshape(n_train, 3, 32, 32)
    np.testing.assert_array_equal(raw.train_images.numpy(), expected_train)
    np.testing.assert_array_equal(raw.train_labels.numpy(), np.concatenate([b[b"labels"] for b in train]))
    np.testing.assert_array_equal(raw.test_images.numpy(), test[b"data"].reshape(-1, 3, 32, 32))
    np.testing.assert_array_equal(raw.test_labels.numpy(), test[b"labels"])
    # Image 3 of data_batch_2 is training image 3 + 3 (after the 3 images of data_batch_1).
    flat = train[1][b"data"][3]
    channel, row, col = 2, 5, 9
    assert raw.train_images[CIFAR10_BATCH_SIZES[0] + 3, channel, row, col] == flat[channel * 1024 + row * 32 + col]


def test_cifar10_single_pixel_lands_at_its_channel_row_and_column(tmp_path: Path):
    """A lone non-zero byte at flat index c*1024 + r*32 + w is pixel (c, r, w): no transposition."""
    train, _ = _write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    batch = train[0]
    batch[b"data"][:] = 0
    batch[b"data"][1, 1 * 1024 + 7 * 32 + 30] = 201  # green channel, row 7, column 30 of image 1
    _write_pickle(folder / "data_batch_1", batch)
    images = load_raw("cifar10", tmp_path).train_images[: CIFAR10_BATCH_SIZES[0]]
    assert torch.nonzero(images).tolist() == [[1, 1, 7, 30]]
    assert images[1, 1, 7, 30] == 201


def test_cifar100_uses_the_fine_labels(tmp_path: Path):
    """CIFAR-100 reads ``train``/``test`` and its 100 fine labels, not the 20 coarse ones."""
    train, test = _write_cifar100(tmp_path)
    raw = load_raw("cifar100", tmp_path)
    assert raw.info.num_classes == 100
    np.testing.assert_array_equal(raw.train_images.numpy(), train[b"data"].reshape(-1, 3, 32, 32))
    np.testing.assert_array_equal(raw.train_labels.numpy(), train[b"fine_labels"])
    np.testing.assert_array_equal(raw.test_images.numpy(), test[b"data"].reshape(-1, 3, 32, 32))
    np.testing.assert_array_equal(raw.test_labels.numpy(), test[b"fine_labels"])
    assert not np.array_equal(train[b"fine_labels"], train[b"coarse_labels"])  # the check can tell them apart


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@pytest.mark.parametrize("as_string", [False, True])
def test_cifar_root_may_be_the_parent_or_the_folder_itself(tmp_path: Path, name: str, as_string: bool):
    """``root`` may hold ``cifar-10-batches-py`` or be it; a ``str`` root works like a ``Path``."""
    writer = _write_cifar10 if name == "cifar10" else _write_cifar100
    writer(tmp_path)
    folder = tmp_path / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    from_parent = load_raw(name, str(tmp_path) if as_string else tmp_path)
    from_folder = load_raw(name, str(folder) if as_string else folder)
    assert torch.equal(from_parent.train_images, from_folder.train_images)
    assert torch.equal(from_parent.test_labels, from_folder.test_labels)


def test_load_raw_reads_the_disk_once(tmp_path: Path):
    """Cached per process: the same object comes back even after the files are gone."""
    _write_cifar100(tmp_path)
    first = load_raw("cifar100", tmp_path)
    for path in (tmp_path / "cifar-100-python").iterdir():
        path.unlink()
    assert load_raw("cifar100", tmp_path) is first
    load_raw.cache_clear()
    with pytest.raises(DataNotFoundError):
        load_raw("cifar100", tmp_path)


# -- Fashion-MNIST round trips -------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("subdir", ["FashionMNIST/raw", "fashion-mnist", "."])
def test_fashion_mnist_idx_round_trip_is_exact(tmp_path: Path, no_debian_fmnist: Path, gz: bool, subdir: str):
    """gzip'd or plain idx files, torchvision's layout or a bare folder, come back byte for byte."""
    arrays = _write_fashion_mnist(tmp_path / subdir, gz=gz)
    raw = load_raw("fashion_mnist", tmp_path)
    assert raw.train_images.shape == (12, 1, 28, 28) and raw.train_images.dtype == torch.uint8
    assert raw.train_labels.dtype == torch.int64
    np.testing.assert_array_equal(raw.train_images[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(raw.train_labels.numpy(), arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(raw.test_images[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(raw.test_labels.numpy(), arrays["t10k-labels-idx1-ubyte"])


def test_fashion_mnist_pixel_order_is_row_major(tmp_path: Path, no_debian_fmnist: Path):
    """Payload byte r*28 + c of image i is pixel (row r, column c)."""
    arrays = _write_fashion_mnist(tmp_path / "FashionMNIST" / "raw", gz=False)
    images = arrays["train-images-idx3-ubyte"]
    images[:] = 0
    images.reshape(len(images), -1)[4, 3 * 28 + 20] = 77
    _write_idx(tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte", images)
    raw = load_raw("fashion_mnist", tmp_path)
    assert torch.nonzero(raw.train_images).tolist() == [[4, 0, 3, 20]]


# -- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, torchvision_class, folder", [
    ("cifar10", "torchvision.datasets.CIFAR10", "cifar-10-batches-py"),
    ("cifar100", "torchvision.datasets.CIFAR100", "cifar-100-python"),
])
def test_missing_cifar_says_where_it_looked_and_how_to_get_it(tmp_path: Path, name: str,
                                                              torchvision_class: str, folder: str):
    """One line naming every folder looked in, the torchvision download and SPHERE_REGIMES_DATA."""
    root = tmp_path / "empty"
    # A partial download (one batch missing) is "not found", not a crash.
    if name == "cifar10":
        _write_cifar10(root)
        (root / folder / "data_batch_5").unlink()
    with pytest.raises(DataNotFoundError) as caught:
        load_raw(name, root)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert "\n" not in message
    for looked in (root / folder, root):  # root is a prefix of root/folder: match it with its delimiter
        assert f"{looked}," in message or f"{looked})" in message
    assert torchvision_class in message and "SPHERE_REGIMES_DATA" in message


def test_missing_fashion_mnist_says_where_it_looked_and_how_to_get_it(tmp_path: Path, no_debian_fmnist: Path):
    """One line naming the torchvision, bare and Debian folders, and ``make data``."""
    root = tmp_path / "empty"
    _write_fashion_mnist(root / "FashionMNIST" / "raw")
    (root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()  # three files of four: not found
    with pytest.raises(DataNotFoundError) as caught:
        load_raw("fashion_mnist", root)
    message = str(caught.value)
    assert "\n" not in message
    for looked in (root / "FashionMNIST" / "raw", root / "fashion-mnist", root, no_debian_fmnist):
        assert str(looked) in message
    assert "make data" in message and "SPHERE_REGIMES_DATA" in message


def test_unknown_dataset_name_lists_the_choices(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown dataset 'mnist'") as caught:
        load_raw("mnist", tmp_path)
    assert not isinstance(caught.value, DataNotFoundError)
    for name in DATASET_INFO:
        assert repr(name) in str(caught.value)


def _fmnist_with_bad_train_images(tmp_path: Path, gz: bool, **idx_kwargs) -> Path:
    """Valid Fashion-MNIST files, except ``train-images`` written with ``idx_kwargs``; returns its path."""
    directory = tmp_path / "FashionMNIST" / "raw"
    arrays = _write_fashion_mnist(directory, gz=gz)
    stem = "train-images-idx3-ubyte"
    return _write_idx(directory / (f"{stem}.gz" if gz else stem), arrays[stem], **idx_kwargs)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_truncated_idx_is_corrupt_and_named(tmp_path: Path, no_debian_fmnist: Path, gz: bool):
    """A payload shorter than the header's N*28*28 bytes: CorruptDataError naming the file."""
    payload = bytes(12 * 28 * 28 - 100)
    bad = _fmnist_with_bad_train_images(tmp_path, gz, payload=payload)
    with pytest.raises(CorruptDataError, match="truncated") as caught:
        load_raw("fashion_mnist", tmp_path)
    assert str(bad) in str(caught.value)


@pytest.mark.parametrize("magic", [
    bytes([0, 0, 0x08, 0x01]),  # a labels header on an images file
    bytes([0, 0, 0x0D, 0x03]),  # float32 payload type
    bytes([1, 0, 0x08, 0x03]),  # non-zero leading bytes
], ids=["ndim", "dtype", "leading"])
def test_wrong_idx_magic_is_corrupt_and_named(tmp_path: Path, no_debian_fmnist: Path, magic: bytes):
    bad = _fmnist_with_bad_train_images(tmp_path, gz=False, magic=magic)
    with pytest.raises(CorruptDataError, match="not an idx file") as caught:
        load_raw("fashion_mnist", tmp_path)
    assert str(bad) in str(caught.value)


@pytest.mark.parametrize("content", [b"<html>404 Not Found</html>\n", gzip.compress(b"x" * 5000)[:30]],
                         ids=["not-gzip", "cut-short"])
def test_bad_gzip_is_corrupt_and_named(tmp_path: Path, no_debian_fmnist: Path, content: bytes):
    """A ``.gz`` that is not gzip, or whose stream ends early: CorruptDataError naming the file."""
    directory = tmp_path / "FashionMNIST" / "raw"
    _write_fashion_mnist(directory, gz=True)
    bad = directory / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(content)
    with pytest.raises(CorruptDataError) as caught:
        load_raw("fashion_mnist", tmp_path)
    assert str(bad) in str(caught.value)


def test_gzip_with_damaged_deflate_stream_is_corrupt(tmp_path: Path, no_debian_fmnist: Path):
    """Valid gzip header, garbled compressed bytes (a damaged copy): CorruptDataError naming the file."""
    directory = tmp_path / "FashionMNIST" / "raw"
    _write_fashion_mnist(directory, gz=True)
    bad = directory / "train-labels-idx1-ubyte.gz"
    blob = bytearray(bad.read_bytes())
    blob[10] ^= 0xFF  # first byte of the deflate stream: "invalid block type / stored block lengths"
    bad.write_bytes(bytes(blob))
    with pytest.raises(CorruptDataError) as caught:
        load_raw("fashion_mnist", tmp_path)
    assert str(bad) in str(caught.value)


def test_fashion_mnist_image_label_count_mismatch_is_corrupt(tmp_path: Path, no_debian_fmnist: Path):
    """11 labels for 12 images would silently misalign; it must be a CorruptDataError."""
    directory = tmp_path / "FashionMNIST" / "raw"
    arrays = _write_fashion_mnist(directory, gz=False)
    _write_idx(directory / "train-labels-idx1-ubyte", arrays["train-labels-idx1-ubyte"][:-1])
    with pytest.raises(CorruptDataError, match="12 images but .* 11 labels"):
        load_raw("fashion_mnist", tmp_path)


@pytest.mark.parametrize("content", [
    b"<!DOCTYPE html><html><body>Forbidden</body></html>",  # an error page saved as the batch
    b"",  # an empty file
    pickle.dumps({b"labels": [1, 2]}, protocol=2),  # no b"data"
    pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 2]}, protocol=2),  # str keys
    pickle.dumps({b"data": np.zeros((2, 1000), np.uint8), b"labels": [1, 2]}, protocol=2),  # not 3x32x32
    pickle.dumps([1, 2, 3], protocol=2),  # not a dict
    pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2, 3]}, protocol=2),  # 2 images, 3 labels
], ids=["html", "empty", "no-data", "str-keys", "wrong-size", "list", "count-mismatch"])
def test_bad_cifar_batch_is_corrupt_and_named(tmp_path: Path, content: bytes):
    _write_cifar10(tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(content)
    with pytest.raises(CorruptDataError) as caught:
        load_raw("cifar10", tmp_path)
    assert str(bad) in str(caught.value)
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)  # one traceback


# -- the real Fashion-MNIST --------------------------------------------------------------------------

def test_real_fashion_mnist_shapes_and_balanced_classes(fashion_mnist: RawDataset):
    """60000/10000 uint8 1x28x28 images; each of the 10 classes has 6000 train and 1000 test images."""
    assert fashion_mnist.train_images.shape == (60000, 1, 28, 28)
    assert fashion_mnist.test_images.shape == (10000, 1, 28, 28)
    assert fashion_mnist.train_images.dtype == torch.uint8
    assert torch.equal(torch.bincount(fashion_mnist.train_labels, minlength=10), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(fashion_mnist.test_labels, minlength=10), torch.full((10,), 1000))
    assert int(fashion_mnist.train_labels.max()) == 9


def test_real_fashion_mnist_statistics_match_dataset_info(fashion_mnist: RawDataset):
    """Mean and std of the training pixels / 255 are DATASET_INFO's (0.2860, 0.3530) to 1e-3."""
    counts = np.bincount(fashion_mnist.train_images.numpy().ravel(), minlength=256).astype(np.float64)
    values = np.arange(256) / 255
    mean = (counts * values).sum() / counts.sum()
    std = np.sqrt((counts * (values - mean) ** 2).sum() / counts.sum())
    info = DATASET_INFO["fashion_mnist"]
    assert mean == pytest.approx(info.mean[0], abs=1e-3)
    assert std == pytest.approx(info.std[0], abs=1e-3)


# -- DeviceData -------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels, size", [(3, 32), (1, 28)])
def test_normalisation_matches_naive_numpy(channels: int, size: int):
    """train_x and test_x are (x/255 - mean)/std per channel, stored channels-last."""
    raw = _indexed_raw(n_train=20, n_test=7, channels=channels, size=size)
    data = DeviceData(raw, CPU)
    for stored, images in ((data.train_x, raw.train_images), (data.test_x, raw.test_images)):
        assert stored.dtype == torch.float32
        np.testing.assert_allclose(stored.numpy(), _naive_normalise(images.numpy(), raw.info), rtol=0, atol=1e-6)
    assert data.train_x.is_contiguous(memory_format=torch.channels_last)
    plain = DeviceData(raw, CPU, dtype=torch.float64, memory_format=torch.contiguous_format)
    assert plain.train_x.is_contiguous()
    np.testing.assert_allclose(plain.train_x.numpy(), _naive_normalise(raw.train_images.numpy(), raw.info),
                               rtol=1e-14, atol=0)
    black = data._black.flatten().numpy()
    np.testing.assert_allclose(black, _naive_normalise(np.zeros((1, channels, 1, 1)), raw.info).ravel(), atol=1e-6)


def test_train_size_keeps_the_first_images():
    raw = _indexed_raw()
    data = DeviceData(raw, CPU, train_size=40)
    assert data.num_train == 40
    assert torch.equal(data.train_y, torch.arange(40))
    torch.testing.assert_close(data.train_x, DeviceData(raw, CPU).train_x[:40], rtol=0, atol=0)
    assert len(data.test_y) == len(raw.test_labels)  # the test set is never cut


def test_train_size_beyond_the_data_is_an_error():
    with pytest.raises(ValueError, match="train_size 104 exceeds the 103"):
        DeviceData(_indexed_raw(n_train=103), CPU, train_size=104)


def _epoch(data: DeviceData, epoch: int, seed: int, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(data.train_batches(epoch, seed, batch_size))


def test_one_epoch_visits_every_training_image_exactly_once():
    """The batches of an epoch are a permutation of the train set; only the last one is smaller."""
    data = DeviceData(_indexed_raw(n_train=103), CPU)
    batches = _epoch(data, epoch=0, seed=1, batch_size=16)
    assert [len(y) for _, y in batches] == [16] * 6 + [103 % 16]
    labels = torch.cat([y for _, y in batches])
    assert sorted(labels.tolist()) == list(range(103))
    assert not torch.equal(labels, torch.arange(103))  # shuffled
    for x, y in batches:
        assert torch.equal(x, data.train_x[y])  # each image travels with its own label


def test_drop_last_batch_trains_and_measures_on_whole_batches_and_tests_on_every_image():
    """An epoch takes floor(N/B) steps of B distinct images, reshuffled every epoch so that every image is
    used over epochs; the train-mode pass takes the whole batches of its fixed order; the test pass all."""
    data = DeviceData(_indexed_raw(n_train=103, n_test=21), CPU, drop_last_batch=True)
    seen = set()
    for epoch in range(12):
        batches = _epoch(data, epoch=epoch, seed=1, batch_size=16)
        assert [len(y) for _, y in batches] == [16] * (103 // 16)
        labels = torch.cat([y for _, y in batches]).tolist()
        assert len(set(labels)) == len(labels)
        seen |= set(labels)
    assert seen == set(range(103))
    train = list(data.eval_batches("train", 16))
    assert [len(y) for _, y in train] == [16] * 6
    assert torch.equal(torch.cat([y for _, y in train]), torch.arange(96))
    assert [len(y) for _, y in data.eval_batches("test", 16)] == [16, 5]
    with pytest.raises(ValueError, match="drop_last_batch with batch_size 128 leaves no whole batch of the 103"):
        next(data.train_batches(0, 0, 128))


def test_batch_order_is_a_function_of_epoch_and_seed_only():
    """Same (epoch, seed): identical batches, even from another DeviceData; other epoch or seed: other order."""
    raw = _indexed_raw(n_train=64)

    def order(data: DeviceData, epoch: int, seed: int) -> torch.Tensor:
        return torch.cat([y for _, y in data.train_batches(epoch, seed, 10)])

    first, second = DeviceData(raw, CPU), DeviceData(raw, CPU)
    torch.manual_seed(123)  # the global generator plays no part
    reference = order(first, 2, 7)
    torch.manual_seed(456)
    assert torch.equal(order(second, 2, 7), reference)
    assert not torch.equal(order(first, 3, 7), reference)
    assert not torch.equal(order(first, 2, 8), reference)


@pytest.mark.parametrize("augment", [False, True])
def test_resume_at_epoch_3_is_exact(augment: bool):
    """Epoch 3's batches (order and augmentation) do not depend on whether epochs 0..2 were drawn."""
    raw = _indexed_raw(n_train=50)
    fresh = _epoch(DeviceData(raw, CPU, augment=augment), epoch=3, seed=5, batch_size=8)
    replayed_data = DeviceData(raw, CPU, augment=augment)
    for epoch in range(3):
        _epoch(replayed_data, epoch, seed=5, batch_size=8)
    replayed = _epoch(replayed_data, epoch=3, seed=5, batch_size=8)
    assert len(fresh) == len(replayed)
    for (x_fresh, y_fresh), (x_replayed, y_replayed) in zip(fresh, replayed):
        assert torch.equal(y_fresh, y_replayed) and torch.equal(x_fresh, x_replayed)


def test_epoch_generators_are_distinct_streams():
    """Different (seed, epoch, stream) give different draws; the same triple the same draws."""
    draws = {(s, e, k): torch.rand(4, generator=epoch_generator(s, e, k)) for s in (0, 1) for e in (0, 1)
             for k in (0, 1)}
    keys = list(draws)
    for i, a in enumerate(keys):
        assert torch.equal(draws[a], torch.rand(4, generator=epoch_generator(*a)))
        for b in keys[i + 1:]:
            assert not torch.equal(draws[a], draws[b]), (a, b)


def test_eval_batches_cover_the_split_in_order():
    raw = _indexed_raw(n_train=30, n_test=21)
    data = DeviceData(raw, CPU, augment=True)  # evaluation is never augmented
    test = list(data.eval_batches("test", 8))
    assert [len(y) for _, y in test] == [8, 8, 5]
    assert torch.equal(torch.cat([y for _, y in test]), torch.arange(21))
    assert torch.equal(torch.cat([x for x, _ in test]), data.test_x)
    train = list(data.eval_batches("train", 7, limit=20))
    assert torch.equal(torch.cat([y for _, y in train]), torch.arange(20))
    assert torch.equal(torch.cat([x for x, _ in train]), data.train_x[:20])


def test_without_augmentation_batches_are_the_stored_images():
    data = DeviceData(_indexed_raw(n_train=40), CPU, augment=False)
    for x, y in data.train_batches(0, 0, 16):
        assert torch.equal(x, data.train_x[y])


def _naive_augment(image: np.ndarray, row: int, col: int, flip: bool) -> np.ndarray:
    """One uint8 (C, H, W) image: zero-pad by PAD (black), crop at (row, col), flip left-right if asked."""
    channels, height, width = image.shape
    padded = np.zeros((channels, height + 2 * PAD, width + 2 * PAD), dtype=image.dtype)
    padded[:, PAD:PAD + height, PAD:PAD + width] = image
    crop = padded[:, row:row + height, col:col + width]
    return crop[:, :, ::-1] if flip else crop


@pytest.mark.parametrize("channels, size", [(3, 32), (1, 28)])
def test_augmentation_equals_a_naive_per_sample_reference(channels: int, size: int):
    """Every batch of an epoch equals pad-crop-flip done image by image with the same random draws."""
    raw = _indexed_raw(n_train=37, channels=channels, size=size)
    data = DeviceData(raw, CPU, augment=True)
    seed, epoch, batch_size = 11, 2, 16
    generator = epoch_generator(seed, epoch, stream=1)
    mean = torch.tensor(raw.info.mean).view(1, -1, 1, 1)
    std = torch.tensor(raw.info.std).view(1, -1, 1, 1)
    flipped = shifted = 0
    for x, y in data.train_batches(epoch, seed, batch_size):
        batch = len(y)
        shifts = torch.randint(0, 2 * PAD + 1, (2, batch), generator=generator)
        flips = torch.rand(batch, generator=generator) < 0.5
        expected = np.stack([
            _naive_augment(raw.train_images[int(y[i])].numpy(), int(shifts[0, i]), int(shifts[1, i]), bool(flips[i]))
            for i in range(batch)
        ])
        expected_x = (torch.from_numpy(expected.copy()).float() / 255 - mean) / std
        torch.testing.assert_close(x, expected_x, rtol=0, atol=1e-6)
        flipped += int(flips.sum())
        shifted += int((shifts != PAD).any(dim=0).sum())
    assert 0 < flipped < 37 and shifted > 0  # both transformations were exercised


def test_augmentation_pads_with_black_not_with_normalised_zero():
    """A white image: after augmentation each pixel is white or `_black`, with the border the shift implies."""
    raw = _indexed_raw(n_train=24)
    raw.train_images.fill_(255)
    data = DeviceData(raw, CPU, augment=True)
    white = data.train_x[0, :, 0, 0].view(1, -1, 1, 1)
    black = data._black
    generator = epoch_generator(3, 0, stream=1)
    (x, _), = data.train_batches(0, 3, 24)
    shifts = torch.randint(0, 2 * PAD + 1, (2, 24), generator=generator)
    is_black = torch.isclose(x, black.expand_as(x), atol=1e-6, rtol=0)
    is_white = torch.isclose(x, white.expand_as(x), atol=1e-6, rtol=0)
    assert bool((is_black | is_white).all())
    rows, cols = (shifts - PAD).abs()
    border = rows * 32 + cols * 32 - rows * cols  # pixels outside the original image, per channel
    assert torch.equal(is_black.sum(dim=(2, 3)), border[:, None].expand(24, 3))
    assert int(border.max()) > 0


def test_a_black_image_stays_black_under_augmentation():
    """Zero pixels and the zero padding are the same value, so a black image is unchanged."""
    raw = _indexed_raw(n_train=10)
    raw.train_images.zero_()
    data = DeviceData(raw, CPU, augment=True)
    for x, _ in data.train_batches(1, 0, 4):
        torch.testing.assert_close(x, data._black.expand_as(x), rtol=0, atol=1e-6)
        assert float(x.abs().min()) > 1  # normalised black is about -2.4, far from 0


def test_unknown_split_is_an_error(fashion_mnist):
    data = DeviceData(fashion_mnist, torch.device("cpu"), train_size=16)
    with pytest.raises(ValueError, match="unknown split 'val'"):
        next(data.eval_batches("val", 8))
