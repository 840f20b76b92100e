"""Data sets as whole uint8 tensors: scikit-learn digits, MNIST-like IDX files, torchvision downloads."""

from __future__ import annotations

import contextlib
import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import CorruptDatasetError, DatasetError, DatasetNotFoundError

if TYPE_CHECKING:
    import torch

__all__ = [
    "Dataset",
    "DATASET_NAMES",
    "BUNDLED_DATA_DIR",
    "load_dataset",
    "read_idx_folder",
    "read_local_labels",
    "default_data_dir",
]

DIGIT_NAMES = [str(i) for i in range(10)]
FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
KMNIST_NAMES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]

# name -> (torchvision class name, class names)
_TORCHVISION_SETS = {
    "mnist": ("MNIST", DIGIT_NAMES),
    "fashion-mnist": ("FashionMNIST", FASHION_NAMES),
    "kmnist": ("KMNIST", KMNIST_NAMES),
}
DATASET_NAMES = ("digits", *_TORCHVISION_SETS, "idx")

# MNIST's test split ships with the repo so a fresh offline install shows real digits.
BUNDLED_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"

DIGITS_TEST_FRACTION = 0.2  # 1797 images -> 1438 train / 359 test
DIGITS_SPLIT_SEED = 0  # fixed, so every run sees the same split
MAX_IDX_BYTES = 200 * 2**20  # an uncompressed IDX file larger than this is refused
IDX_MAGIC = {"images": 2051, "labels": 2049}
_PREFIX = {"train": "train", "test": "t10k"}


@dataclass(frozen=True)
class Dataset:
    """A labelled image set held in memory."""

    name: str
    images: torch.Tensor  # (N, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    class_names: list[str]
    split: str = "train"

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_shape(self) -> tuple[int, int]:
        return (int(self.images.shape[1]), int(self.images.shape[2]))

    def as_float(self) -> torch.Tensor:
        """(N, 1, H, W) float32 in [0, 1]."""
        return self.images.unsqueeze(1).float().div_(255.0)


def default_data_dir() -> Path:
    """`VAE_DATA_DIR` if set, else a per-user cache folder."""
    env = os.environ.get("VAE_DATA_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "latent-lab"


def load_dataset(name: str, split: str = "train", data_dir: str | Path | None = None) -> Dataset:
    """Load a data set by name; see DATASET_NAMES. `split` is "train" or "test"."""
    if not isinstance(split, str) or split not in _PREFIX:  # `in` on an unhashable would raise TypeError
        raise DatasetError(f"split must be 'train' or 'test', not {split!r}")
    if not isinstance(name, str) or name not in DATASET_NAMES:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    if name == "digits":
        return _load_digits(split)
    if name == "idx":
        if data_dir is None:
            raise DatasetError("dataset 'idx' needs data_dir: a folder holding the four IDX files")
        return read_idx_folder(data_dir, split, name="idx", class_names=DIGIT_NAMES)
    return _load_torchvision_set(name, split, Path(data_dir) if data_dir else default_data_dir(), bool(data_dir))


def _load_digits(split: str) -> Dataset:
    import torch
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images * (255.0 / 16.0)).round().to(torch.uint8)
    labels = torch.from_numpy(bunch.target).long()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    n_test = int(round(len(labels) * DIGITS_TEST_FRACTION))
    idx = order[:n_test] if split == "test" else order[n_test:]
    return Dataset("digits", images[idx].contiguous(), labels[idx].contiguous(), DIGIT_NAMES, split)


def _load_torchvision_set(name: str, split: str, data_dir: Path, named: bool) -> Dataset:
    """named: data_dir is the caller's (--data-dir, the IDX folder box), not VAE_DATA_DIR or the cache."""
    tv_name, class_names = _TORCHVISION_SETS[name]
    folder = _local_folder(name, split, data_dir, named)
    if folder is not None:
        return read_idx_folder(folder, split, name=name, class_names=class_names)
    _download(tv_name, data_dir, split, place=data_dir if _bare(name, named) else data_dir / name)
    return read_idx_folder(data_dir / tv_name / "raw", split, name=name, class_names=class_names)


def _bare(name: str, named: bool) -> bool:
    """Whether IDX files right inside data_dir are this set's. The three sets' files have the same names,
    so they are only in a folder the caller named for this set, or for MNIST: otherwise a VAE_DATA_DIR
    holding MNIST's files would pass them off as Fashion-MNIST or KMNIST."""
    return named or name == "mnist"


def _local_folder(name: str, split: str, data_dir: Path, named: bool = False) -> Path | None:
    """The folder load_dataset reads a torchvision set's split from when it is already on disk."""
    tv_name = _TORCHVISION_SETS[name][0]
    candidates = ([data_dir] if _bare(name, named) else []) + [data_dir / name, data_dir / tv_name / "raw"]
    if name == "mnist" and split == "test":
        candidates.append(BUNDLED_DATA_DIR)
    for folder in candidates:
        if _find_idx(folder, split, "images") and _find_idx(folder, split, "labels"):
            return folder
    return None


def read_local_labels(name: str, split: str = "test") -> np.ndarray | None:
    """The labels load_dataset(name, split) would give (int64), read without PyTorch, or None when the
    split is not on disk as IDX files (it would be downloaded) or is not an IDX set (digits, idx).

    For the app's first page of a bundled model, which needs the classes of the test digits and
    nothing else of the data set (ui/cache.py)."""
    if name not in _TORCHVISION_SETS or split not in _PREFIX:
        return None
    folder = _local_folder(name, split, default_data_dir())
    if folder is None:
        return None
    path = _find_idx(folder, split, "labels")
    labels = _read_idx_array(path, "labels")
    _check_labels(labels, _TORCHVISION_SETS[name][1], path)
    return labels


def _download(tv_name: str, data_dir: Path, split: str, place: Path) -> None:
    """torchvision's download into data_dir; offline, the error says to put the files in `place`."""
    import torchvision.datasets as tvd

    tree = data_dir / tv_name  # torchvision writes only under root/<ClassName>/raw
    before = _existing_paths(tree)
    try:
        getattr(tvd, tv_name)(str(data_dir), train=(split == "train"), download=True)
    except BaseException as exc:  # also Ctrl-C: a half-fetched .gz must not look like data next time
        _remove_new_paths(tree, before)
        if isinstance(exc, (OSError, RuntimeError)):  # URLError is an OSError
            raise DatasetNotFoundError(
                _offline_message(tv_name, place, exc), f"{tv_name} is not on disk here and could not be downloaded"
            ) from exc
        raise


def _offline_message(tv_name: str, data_dir: Path, exc: BaseException) -> str:
    files = [_idx_names(split, kind)[0] for split in _PREFIX for kind in ("images", "labels")]
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # torchvision's text runs to many lines
    return (
        f"{tv_name} is not on disk and could not be downloaded ({reason}). Put the four IDX files "
        f"{', '.join(files)} (raw or .gz) in {data_dir}, or name the folder that holds them with --data-dir"
        + (" or VAE_DATA_DIR." if tv_name == "MNIST" else " (VAE_DATA_DIR's own files count as MNIST's).")
    )


def _existing_paths(tree: Path) -> set[Path]:
    """What exists now on the way to `tree` and inside it."""
    existing = {p for p in (tree, *tree.parents) if p.exists()}
    if tree.is_dir():
        existing.update(tree.rglob("*"))
    return existing


def _remove_new_paths(tree: Path, before: set[Path]) -> None:
    """Delete what appeared since `before` (partial downloads, empty raw/ folders), deepest first."""
    now = _existing_paths(tree)
    for path in sorted(now - before, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # a folder someone else filled meanwhile stays
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()


def _idx_names(split: str, kind: str) -> list[str]:
    prefix, dims = _PREFIX[split], ("idx3" if kind == "images" else "idx1")
    stems = [f"{prefix}-{kind}-{dims}-ubyte", f"{prefix}-{kind}.{dims}-ubyte"]
    return [s + ext for s in stems for ext in ("", ".gz")]


def _find_idx(folder: Path, split: str, kind: str) -> Path | None:
    for candidate in _idx_names(split, kind):
        path = Path(folder) / candidate
        if path.is_file():
            return path
    return None


def read_idx_folder(folder: str | Path, split: str, name: str = "idx", class_names: list[str] | None = None) -> Dataset:
    """Read one split's image and label IDX files (raw or .gz) from `folder`."""
    folder = Path(folder)
    paths = {kind: _find_idx(folder, split, kind) for kind in ("images", "labels")}
    missing = [_idx_names(split, k)[0] for k, p in paths.items() if p is None]
    if missing:
        lacks = f"lacks {' and '.join(missing)} (raw or .gz)"
        raise DatasetNotFoundError(f"{folder} {lacks}", f"the folder {lacks}")
    images = _read_idx(paths["images"], "images")
    labels = _read_idx(paths["labels"], "labels")
    if len(images) != len(labels):
        raise CorruptDatasetError(
            f"{paths['images'].name} holds {len(images)} images but {paths['labels'].name} "
            f"holds {len(labels)} labels; re-copy both files"
        )
    names = class_names or DIGIT_NAMES
    _check_labels(labels, names, paths["labels"])
    return Dataset(name, images, labels, list(names), split)


def _check_labels(labels, names: list[str], path: Path) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
        raise CorruptDatasetError(f"{path.name} has labels outside 0-{len(names) - 1}")


def _read_idx(path: Path, kind: str) -> torch.Tensor:
    import torch

    return torch.from_numpy(_read_idx_array(path, kind))


def _read_idx_array(path: Path, kind: str) -> np.ndarray:
    """An IDX file of unsigned bytes: magic number, one big-endian uint32 per dimension, the data.

    Read here rather than with torchvision's reader: importing torchvision costs about 2.4 s of CPU
    (it pulls in torch._dynamo), which the app's first page would otherwise pay just to read 8 MB.
    """
    raw = _read_bytes(path)
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != IDX_MAGIC[kind]:
        what = f"is not an IDX {kind} file (magic number {magic}, expected {IDX_MAGIC[kind]})"
        raise CorruptDatasetError(f"{path} {what}", f"{path.name} {what}")
    n_dims = magic & 0xFF
    header = 4 + 4 * n_dims
    dims = [int.from_bytes(raw[i : i + 4], "big") for i in range(4, header, 4)]
    expected = header + math.prod(dims)
    if len(raw) != expected:
        what = f"is truncated or corrupt ({len(raw)} bytes where its header {dims} means {expected}); re-copy it"
        raise CorruptDatasetError(f"{path} {what}", f"{path.name} {what}")
    values = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    return values.copy() if kind == "images" else values.astype(np.int64)  # labels: int64, as in torchvision


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix != ".gz":
            if path.stat().st_size > MAX_IDX_BYTES:
                raise CorruptDatasetError(f"{path} is larger than {MAX_IDX_BYTES} bytes", f"{path.name} is too large")
            return path.read_bytes()
        with gzip.open(path, "rb") as f:
            raw = f.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise CorruptDatasetError(f"{path} cannot be read ({exc}); re-copy it", f"{path.name} cannot be read") from exc
    if len(raw) > MAX_IDX_BYTES:
        raise CorruptDatasetError(f"{path} unpacks to more than {MAX_IDX_BYTES} bytes", f"{path.name} is too large")
    return raw
