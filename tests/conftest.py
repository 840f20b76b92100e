"""Shared fixtures: real MNIST from $VAE_DATA_DIR, the scikit-learn digits, small models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import torch

from vae_core import VAE, Dataset, VAEConfig, load_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("LATENT_LAB_WARMUP", "0")  # no background UMAP compile competing with tests
    config.addinivalue_line("markers", "slow: takes more than a few seconds (training, subprocesses, UMAP)")


@pytest.fixture
def open_train_page():
    """A factory: each call is a fresh visitor's AppTest, run through app.py onto the train page."""
    from streamlit.testing.v1 import AppTest

    def open_() -> AppTest:
        at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
        at.run()
        at.switch_page("pages/train.py")
        return at.run()

    return open_


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing_mnist_files(folder: Path) -> list[str]:
    return [name for name in MNIST_FILES if not any((folder / (name + ext)).is_file() for ext in ("", ".gz"))]


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder $VAE_DATA_DIR names, holding MNIST's four IDX files (raw or .gz).

    Missing data skips the test on a laptop; in CI it fails, so a broken data step cannot hide.
    """
    env = os.environ.get("VAE_DATA_DIR")
    if not env:
        reason = "VAE_DATA_DIR is not set; point it at a folder with MNIST's four IDX files"
    else:
        folder = Path(env).expanduser()
        missing = _missing_mnist_files(folder)
        if not missing:
            return folder
        reason = f"VAE_DATA_DIR={env} lacks {', '.join(missing)} (raw or .gz)"
    if in_ci():
        pytest.fail(f"{reason} (CI must run the real-data tests)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mnist_test(mnist_dir: Path) -> Dataset:
    return load_dataset("mnist", "test", data_dir=mnist_dir)


@pytest.fixture(scope="session")
def mnist_train(mnist_dir: Path) -> Dataset:
    """60 000 images, about 4 s to read: loaded once per session."""
    return load_dataset("mnist", "train", data_dir=mnist_dir)


@pytest.fixture(scope="session")
def digits_train() -> Dataset:
    return load_dataset("digits", "train")


@pytest.fixture(scope="session")
def digits_test() -> Dataset:
    return load_dataset("digits", "test")


@pytest.fixture
def small_model() -> VAE:
    """An untrained 8x8 VAE, small enough to train for a few epochs in a second."""
    torch.manual_seed(0)
    return VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(32,), latent_dim=3))


def shown_scatter(at) -> tuple[dict, pd.DataFrame, str]:
    """The latent page's plain scatter (every ready projection in one chart): its spec, its points with
    x and y of the projection it opens on, and that projection."""
    chart = at.get("vega_lite_chart")[0]
    spec = json.loads(chart.proto.spec)
    data = pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()
    method = next(p for p in spec["params"] if p["name"] == "proj")["value"][0]["projection"]
    return spec, data.rename(columns={f"x_{method}": "x", f"y_{method}": "y"}), method
