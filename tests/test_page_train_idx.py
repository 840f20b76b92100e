"""A model trained here on an IDX folder keeps that folder's test split for the other pages."""

from __future__ import annotations

import struct
from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

from vae_core import load_dataset

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def write_idx(folder: Path, prefix: str, images: torch.Tensor, labels: torch.Tensor) -> None:
    """MNIST's own file layout: big-endian magic and sizes, then uint8 pixels or labels."""
    n, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">4i", 2051, n, h, w) + images.to(torch.uint8).numpy().tobytes()
    )
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">2i", 2049, n) + labels.to(torch.uint8).numpy().tobytes()
    )


def test_a_model_trained_on_an_idx_folder_shows_its_own_test_split(tmp_path) -> None:
    mnist = load_dataset("mnist", "test")  # bundled: real digits, offline
    write_idx(tmp_path, "train", mnist.images[:600], mnist.labels[:600])
    write_idx(tmp_path, "t10k", mnist.images[600:900], mnist.labels[600:900])
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    at.selectbox(key="train_dataset").set_value("idx")
    at.text_input(key="train_dir").set_value(str(tmp_path))
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_hidden").set_value(32)
    at.button[0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (entry,) = at.session_state["user_models"].values()
    assert entry.test_data is not None and len(entry.test_data) == 300
    at.switch_page("pages/latent.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="model").value == entry.id
