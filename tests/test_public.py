"""A model whose test digits cannot be had, and who may see the server's folders and paths."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

import ui.access
from ui.state import ModelEntry
from vae_core import VAE, VAEConfig, checkpoint_bytes
from vae_core.data import read_idx_folder
from vae_core.errors import DatasetNotFoundError, LatentLabError
from vae_core.precompute import fingerprint

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


def folderless_entry() -> ModelEntry:
    """A model trained on an IDX folder whose test split did not come with it: no page can show its digits."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=2)).eval()
    meta = {"dataset": "idx", "class_names": [str(i) for i in range(10)], "history": []}
    return ModelEntry("trained-idx-0", model, meta, "trained", fingerprint(model))


def open_page(page: str, entry: ModelEntry | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    if entry is not None:
        at.session_state["user_models"] = {entry.id: entry}
        at.session_state["pending_model"] = entry.id
    at.run()
    at.switch_page(page)
    return at.run()


def assert_stopped_cleanly(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert any("needs the test split" in e.value and "other pages keep working" in e.value for e in at.error)


@pytest.mark.parametrize("page", ["pages/dimensions.py", "pages/latent.py", "pages/interpolate.py"])
def test_a_page_that_needs_the_test_digits_says_so_instead_of_failing(page: str) -> None:
    assert_stopped_cleanly(open_page(page, folderless_entry()))


def test_your_own_digit_says_so_too_once_a_digit_is_given() -> None:
    at = open_page("pages/digit.py", folderless_entry())
    img = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(img).line((50, 10, 50, 90), fill=0, width=8)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    at.file_uploader(key="digit_upload").set_value(("d.png", buf.getvalue(), "image/png")).run()
    assert_stopped_cleanly(at)


def test_the_nearest_image_check_says_there_is_nothing_to_compare_with() -> None:
    at = open_page("pages/samples.py", folderless_entry())
    assert not at.exception and len(at.get("image")) >= 1  # the grid itself needs no data set
    images = len(at.get("image"))
    at.toggle(key="nearest").set_value(True).run()
    assert not at.exception, [e.message for e in at.exception]
    assert "nothing to compare the samples with" in at.warning[0].value
    assert len(at.get("image")) == images  # the grid is still there, no pairs


def mnist_sized_checkpoint(dataset: str) -> bytes:
    torch.manual_seed(0)
    model = VAE(VAEConfig(image_shape=(28, 28), hidden_sizes=(16,), latent_dim=2))
    return checkpoint_bytes(model, {"dataset": dataset})


def upload(at: AppTest, data: bytes) -> AppTest:
    return at.file_uploader[0].set_value(("m.safetensors", data, "application/octet-stream")).run()


def test_a_checkpoint_of_an_idx_folder_loads_with_a_word_on_what_cannot_be_shown() -> None:
    data = mnist_sized_checkpoint("idx")
    at = upload(open_page("pages/train.py"), data)
    assert not at.exception and len(at.session_state["user_models"]) == 1
    assert "Loaded m.safetensors" in at.success[0].value
    assert "test digits are not available here (a checkpoint does not say which folder" in at.warning[0].value
    at.switch_page("pages/samples.py").run()
    assert not at.exception and not at.error and at.get("image")


def test_a_checkpoint_whose_test_split_cannot_be_had_says_why_without_paths_in_public(monkeypatch) -> None:
    def no_test_split(dataset: str):
        raise DatasetNotFoundError(f"/srv/secret/{dataset} lacks its files", f"{dataset} is not here")

    monkeypatch.setattr("ui.cache.test_set", no_test_split)
    data = mnist_sized_checkpoint("kmnist")
    at = upload(open_page("pages/train.py"), data)
    assert not at.exception and len(at.session_state["user_models"]) == 1
    assert "test digits are not available here (/srv/secret/kmnist lacks its files)" in at.warning[0].value
    monkeypatch.setenv(ui.access.PUBLIC_ENV, "1")
    at = upload(open_page("pages/train.py"), data)
    assert "(kmnist is not here)" in at.warning[0].value and "/srv" not in at.warning[0].value
    assert all("/srv" not in e.value for e in at.error)  # the model card's own message too


def test_errors_about_files_carry_a_text_without_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "private-folder"
    folder.mkdir()
    empty = b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (0, 8, 8))  # no images, 8 x 8
    (folder / "t10k-images-idx3-ubyte").write_bytes(empty)  # and no labels file
    with pytest.raises(DatasetNotFoundError) as missing:
        read_idx_folder(folder, "test")
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"not idx")
    with pytest.raises(LatentLabError) as corrupt:
        read_idx_folder(folder, "test")
    for exc in (missing.value, corrupt.value):
        assert "private-folder" in str(exc) and "private-folder" not in exc.public
    assert "lacks t10k-labels-idx1-ubyte" in missing.value.public
    assert "t10k-labels-idx1-ubyte is not an IDX labels file" in corrupt.value.public


PROXIED = {"X-Forwarded-For": "203.0.113.7"}


@pytest.mark.parametrize(
    "switch, ip, headers, allowed",
    [
        ("1", None, {}, False),  # the hosted demo: nobody, even on this machine
        ("0", "203.0.113.7", {}, True),  # a trusted lab server: everybody
        ("", None, {}, True),  # no switch: a browser on this machine (Streamlit gives no address)...
        ("", "::ffff:127.0.0.1", {}, True),  # ...also as an IPv4-mapped loopback address
        ("", "203.0.113.7", {}, False),  # ...but not a visitor from elsewhere
        ("", None, PROXIED, False),  # ...nor one behind a proxy on this machine
        ("", "127.0.0.1", PROXIED, False),
        ("", "not an address", {}, False),
    ],
)
def test_who_may_name_server_folders(monkeypatch, switch: str, ip: str | None, headers: dict, allowed: bool) -> None:
    monkeypatch.setenv(ui.access.PUBLIC_ENV, switch)
    context = type("Ctx", (), {"ip_address": ip, "headers": headers})
    monkeypatch.setattr(ui.access, "st", type("St", (), {"context": context}))
    assert ui.access.folders_allowed() is allowed
    exc = DatasetNotFoundError("/srv/data lacks it", "the folder lacks it")
    assert ui.access.public_text(exc) == ("/srv/data lacks it" if allowed else "the folder lacks it")
