"""vae_core/data.py: the digits split, IDX files (raw and .gz, any size), and every way they can be bad."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets

from vae_core import (
    DATASET_NAMES,
    CorruptDatasetError,
    DatasetError,
    DatasetNotFoundError,
    load_dataset,
)
from vae_core.data import BUNDLED_DATA_DIR, read_local_labels

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


def idx_images(images: torch.Tensor, magic: int = IMAGES_MAGIC) -> bytes:
    """(N, H, W) uint8 -> IDX3 bytes: big-endian magic, count, rows, columns, then the pixels."""
    n, h, w = images.shape
    return struct.pack(">IIII", magic, n, h, w) + images.to(torch.uint8).numpy().tobytes()


def idx_labels(labels: list[int], magic: int = LABELS_MAGIC) -> bytes:
    return struct.pack(">II", magic, len(labels)) + bytes(labels)


def write_split(folder: Path, split: str, images: bytes, labels: bytes, gz: bool = False, stem_sep: str = "-") -> None:
    prefix = "train" if split == "train" else "t10k"
    ext = ".gz" if gz else ""
    for kind, dims, data in (("images", "idx3", images), ("labels", "idx1", labels)):
        path = folder / f"{prefix}-{kind}{stem_sep}{dims}-ubyte{ext}"
        path.write_bytes(gzip.compress(data) if gz else data)


def tiny_images(n: int = 6, h: int = 5, w: int = 7) -> torch.Tensor:
    return (torch.arange(n * h * w) % 256).to(torch.uint8).reshape(n, h, w)


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every torchvision download fails as if offline; returns the calls so a test can see the attempt."""
    calls: list[tuple] = []

    def offline(cls: str):
        def download(root, train=True, download=False, **kwargs):
            calls.append((root, train, download))
            raw = Path(root) / cls / "raw"  # what torchvision does before its first request fails
            raw.mkdir(parents=True, exist_ok=True)
            (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b partial")
            raise OSError("network is disabled in the tests")

        return download

    for cls in ("MNIST", "FashionMNIST", "KMNIST"):
        monkeypatch.setattr(torchvision.datasets, cls, offline(cls))
    return calls


# --- the digits set ---------------------------------------------------------------------------------


def test_digits_split_is_fixed_and_disjoint(digits_train, digits_test):
    assert (len(digits_train), len(digits_test)) == (1438, 359)
    for ds, split in ((digits_train, "train"), (digits_test, "test")):
        assert ds.split == split and ds.name == "digits"
        assert ds.images.shape[1:] == (8, 8) and ds.image_shape == (8, 8)
        assert ds.images.dtype == torch.uint8 and ds.labels.dtype == torch.int64
        assert set(ds.labels.tolist()) == set(range(10))
        assert ds.class_names == [str(i) for i in range(10)]
    assert int(digits_train.images.max()) == 255  # scaled from 0-16 to the full byte range
    again = load_dataset("digits", "test")
    assert torch.equal(again.images, digits_test.images) and torch.equal(again.labels, digits_test.labels)


def test_as_float_is_n1hw_in_unit_range(digits_test):
    x = digits_test.as_float()
    assert x.shape == (len(digits_test), 1, 8, 8) and x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert digits_test.images.dtype == torch.uint8  # as_float does not touch the stored images


# --- bad names and missing files --------------------------------------------------------------------


def test_unknown_dataset_name_lists_the_valid_ones():
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10")
    for name in DATASET_NAMES:
        assert name in str(err.value)


@pytest.mark.parametrize("name", [None, 3, ["mnist"], {"mnist": 1}, b"mnist"], ids=repr)
def test_a_name_that_is_not_a_string_is_an_unknown_dataset(name):
    with pytest.raises(DatasetError, match="unknown dataset.*choose one of digits"):
        load_dataset(name)


@pytest.mark.parametrize("split", ["validation", None, ["train"]], ids=repr)
def test_unknown_split(split):
    with pytest.raises(DatasetError, match="split must be 'train' or 'test'"):
        load_dataset("digits", split)


def test_idx_without_data_dir():
    with pytest.raises(DatasetError, match="data_dir"):
        load_dataset("idx", "train")


@pytest.mark.parametrize(("name", "split"), [("mnist", "train"), ("fashion-mnist", "test"), ("kmnist", "train")])
def test_missing_files_and_no_network_name_the_files(tmp_path, no_download, name, split):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(name, split, data_dir=tmp_path)
    message = str(err.value)
    for prefix in ("train", "t10k"):  # the other split is needed too, so all four are named
        assert f"{prefix}-images-idx3-ubyte" in message and f"{prefix}-labels-idx1-ubyte" in message
    assert str(tmp_path) in message and "VAE_DATA_DIR" in message
    assert len(no_download) == 1 and no_download[0][2] is True  # it tried (and failed) to download
    assert list(tmp_path.iterdir()) == []  # the stub's raw/ folder and partial .gz are gone


def test_failed_download_into_a_new_folder_removes_every_folder_it_made(tmp_path, no_download):
    with pytest.raises(DatasetNotFoundError):
        load_dataset("mnist", "train", data_dir=tmp_path / "new" / "cache")
    assert list(tmp_path.iterdir()) == []


def test_failed_download_keeps_what_was_there_before(tmp_path, no_download):
    raw = tmp_path / "KMNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "notes.txt").write_text("mine")
    with pytest.raises(DatasetNotFoundError):
        load_dataset("kmnist", "train", data_dir=tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "KMNIST",
        "KMNIST/raw",
        "KMNIST/raw/notes.txt",
    ]


def test_interrupted_download_leaves_nothing_behind(tmp_path, monkeypatch):
    def interrupted(root, **kwargs):
        (Path(root) / "MNIST" / "raw").mkdir(parents=True)
        (Path(root) / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b")
        raise KeyboardInterrupt

    monkeypatch.setattr(torchvision.datasets, "MNIST", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_dataset("mnist", "train", data_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_idx_files_name_both(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("idx", "train", data_dir=tmp_path)
    assert "train-images-idx3-ubyte" in str(err.value) and "train-labels-idx1-ubyte" in str(err.value)


def test_missing_label_file_names_only_it(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_images(tiny_images()))
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("idx", "test", data_dir=tmp_path)
    assert "t10k-labels-idx1-ubyte" in str(err.value) and "t10k-images" not in str(err.value)


def test_mnist_test_split_is_bundled_for_offline_use(tmp_path, no_download):
    ds = load_dataset("mnist", "test", data_dir=tmp_path)
    assert len(ds) == 10_000 and ds.image_shape == (28, 28) and ds.name == "mnist"
    assert set(ds.labels.tolist()) == set(range(10))
    assert no_download == []
    assert (BUNDLED_DATA_DIR / "t10k-images-idx3-ubyte.gz").is_file()


# --- reading IDX files the test writes --------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_idx_round_trip_of_any_size(tmp_path, gz, split):
    images = tiny_images(n=6, h=5, w=7)
    labels = [3, 1, 4, 1, 5, 9]
    write_split(tmp_path, split, idx_images(images), idx_labels(labels), gz=gz)
    ds = load_dataset("idx", split, data_dir=tmp_path)
    assert torch.equal(ds.images, images) and ds.labels.tolist() == labels
    assert ds.labels.dtype == torch.int64 and ds.images.dtype == torch.uint8
    assert ds.image_shape == (5, 7) and len(ds) == 6
    assert (ds.name, ds.split) == ("idx", split)


def test_idx_dotted_file_names(tmp_path):
    """Some mirrors name the files t10k-images.idx3-ubyte; both spellings are read."""
    write_split(tmp_path, "test", idx_images(tiny_images(n=2)), idx_labels([0, 7]), stem_sep=".")
    assert load_dataset("idx", "test", data_dir=tmp_path).labels.tolist() == [0, 7]


def _good() -> tuple[bytes, bytes]:
    return idx_images(tiny_images(n=6)), idx_labels([0, 1, 2, 3, 4, 5])


CORRUPT = {
    "images wrong magic": lambda: (idx_images(tiny_images(n=6), magic=2049), _good()[1]),
    "labels wrong magic": lambda: (_good()[0], idx_labels([0, 1, 2, 3, 4, 5], magic=2051)),
    "images not IDX at all": lambda: (b"GIF89a" + bytes(100), _good()[1]),
    "images empty file": lambda: (b"", _good()[1]),
    "images header cut": lambda: (_good()[0][:10], _good()[1]),
    "images truncated": lambda: (_good()[0][:-3], _good()[1]),
    "images too long": lambda: (_good()[0] + b"\x00", _good()[1]),
    "labels truncated": lambda: (_good()[0], _good()[1][:-1]),
    "label count mismatch": lambda: (_good()[0], idx_labels([0, 1, 2, 3, 4])),
    "label out of range": lambda: (_good()[0], idx_labels([0, 1, 2, 3, 4, 10])),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_idx(tmp_path, case):
    images, labels = CORRUPT[case]()
    write_split(tmp_path, "train", images, labels)
    with pytest.raises(CorruptDatasetError) as err:
        load_dataset("idx", "train", data_dir=tmp_path)
    assert "idx" in str(err.value) and "ubyte" in str(err.value)  # names the file at fault


@pytest.mark.parametrize("damage", ["not gzip", "truncated gzip"])
def test_corrupt_gzip(tmp_path, damage):
    images, labels = _good()
    write_split(tmp_path, "train", images, labels, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    packed = path.read_bytes()
    path.write_bytes(images if damage == "not gzip" else packed[: len(packed) // 2])
    with pytest.raises(CorruptDatasetError, match="train-images-idx3-ubyte.gz"):
        load_dataset("idx", "train", data_dir=tmp_path)


# --- real MNIST -------------------------------------------------------------------------------------


def test_real_mnist_train_split(mnist_train):
    assert len(mnist_train) == 60_000 and mnist_train.images.shape == (60_000, 28, 28)
    counts = torch.bincount(mnist_train.labels, minlength=10)
    assert counts.shape == (10,) and int(counts.min()) > 5000  # every digit, roughly balanced


def test_real_mnist_test_split_matches_the_bundled_copy(mnist_test):
    bundled = load_dataset("idx", "test", data_dir=BUNDLED_DATA_DIR)
    assert torch.equal(mnist_test.images, bundled.images) and torch.equal(mnist_test.labels, bundled.labels)


def test_real_mnist_reads_as_torchvision_reads_it(mnist_dir, mnist_test, tmp_path):
    """The project's IDX reader (no torchvision import on the app's first page) gives torchvision's tensors."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    for kind, reader, ours in (
        ("images", read_image_file, mnist_test.images),
        ("labels", read_label_file, mnist_test.labels),
    ):
        path = next(
            p
            for p in (mnist_dir / f"t10k-{kind}-idx{3 if kind == 'images' else 1}-ubyte{e}" for e in ("", ".gz"))
            if p.is_file()
        )
        plain = tmp_path / kind
        plain.write_bytes(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes())
        theirs = reader(str(plain))
        assert theirs.dtype == ours.dtype and torch.equal(theirs, ours)


def test_local_labels_are_the_datasets_labels_read_without_torch(mnist_dir, monkeypatch):
    """What the app's first page reads instead of the whole test split (ui/cache.py), for the bundled
    copy and for a data folder; None where the split would be downloaded or is not an IDX set."""
    for folder in (mnist_dir, Path("/nonexistent")):  # VAE_DATA_DIR's files, then the bundled copy
        monkeypatch.setenv("VAE_DATA_DIR", str(folder))
        labels = read_local_labels("mnist", "test")
        assert labels.dtype == np.int64 and np.array_equal(labels, load_dataset("mnist", "test").labels.numpy())
    assert read_local_labels("mnist", "train") is None  # not on disk there: load_dataset would download it
    assert read_local_labels("fashion-mnist", "test") is None
    assert read_local_labels("digits", "test") is None and read_local_labels("idx", "test") is None


def test_idx_files_in_the_default_folder_are_mnist_not_the_other_sets(tmp_path, no_download, monkeypatch):
    """The three sets' files have the same names: bare files in VAE_DATA_DIR are MNIST's. Fashion-MNIST
    and KMNIST are read from a folder named for them, or from a data_dir the caller names."""
    write_split(tmp_path, "test", idx_images(tiny_images()), idx_labels([1, 2, 3, 4, 5, 6]))
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path))
    assert load_dataset("mnist", "test").labels.tolist() == [1, 2, 3, 4, 5, 6]
    for name in ("fashion-mnist", "kmnist"):
        with pytest.raises(DatasetNotFoundError):
            load_dataset(name, "test")  # not MNIST's files under its name: it tries to download
        assert read_local_labels(name) is None
        assert load_dataset(name, "test", data_dir=tmp_path).class_names[1] != "1"  # named: read as this set
        (tmp_path / name).mkdir()
        write_split(tmp_path / name, "test", idx_images(tiny_images()), idx_labels([0, 0, 0, 0, 0, 0]))
        assert load_dataset(name, "test").labels.tolist() == [0] * 6
    assert len(no_download) == 2
