"""Train-or-load page and bad input across pages: clear messages, the current model unchanged."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from ui.state import ModelEntry
from vae_core import VAE, VAEConfig, checkpoint_bytes, load_checkpoint
from vae_core.precompute import fingerprint

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


def open_page(page: str, state: dict | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    at.switch_page(page)
    return at.run()


def tiny_entry(latent_dim: int, seed: int = 0) -> ModelEntry:
    torch.manual_seed(seed)
    model = VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=latent_dim)).eval()
    meta = {"dataset": "digits", "class_names": [str(i) for i in range(10)], "history": []}
    return ModelEntry(f"trained-z{latent_dim}-{seed}", model, meta, "trained", fingerprint(model))


def with_user_model(entry: ModelEntry) -> dict:
    return {"user_models": {entry.id: entry}, "pending_model": entry.id}


def test_uploading_a_checkpoint_makes_it_current() -> None:
    at = open_page("pages/train.py")
    data = checkpoint_bytes(tiny_entry(3).model, {"dataset": "digits"})
    at.file_uploader[0].set_value(("mine.safetensors", data, "application/octet-stream")).run()
    assert not at.exception
    assert at.selectbox(key="model").value.startswith("uploaded-")
    assert "Loaded mine.safetensors" in at.success[0].value
    assert at.metric[1].value == "3"  # the model card shows Z


def tiny_checkpoint(shape: tuple[int, int] = (8, 8), **meta) -> bytes:
    torch.manual_seed(0)
    return checkpoint_bytes(VAE(VAEConfig(image_shape=shape, hidden_sizes=(16,), latent_dim=2)), meta)


def assert_current_unchanged(at: AppTest, entry: ModelEntry, fingerprint_before: str) -> None:
    assert at.selectbox(key="model").value == entry.id
    assert list(at.session_state["user_models"]) == [entry.id]  # nothing was added
    assert at.session_state["user_models"][entry.id].fingerprint == fingerprint_before
    assert at.metric[1].value == str(entry.model.config.latent_dim)  # the card still shows it


HOSTILE_FILES = {
    "zero bytes": b"",
    "text": b"not a checkpoint at all",
    "random bytes": random.Random(0).randbytes(4096),
    "truncated": tiny_checkpoint(dataset="digits")[:-100],
    "pickle": pickle.dumps({"weights": [1.0, 2.0]}),
    "pickle header only": b"\x80\x04\x95" + b"\x00" * 64,
    "huge header": b"\xff" * 8 + b"{}" * 8,
}


@pytest.mark.parametrize("data", HOSTILE_FILES.values(), ids=HOSTILE_FILES.keys())
def test_a_bad_upload_is_refused_and_the_model_stays(data: bytes) -> None:
    entry = tiny_entry(3, seed=5)
    at = open_page("pages/train.py", state=with_user_model(entry))
    before = entry.fingerprint
    at.file_uploader[0].set_value(("bad.safetensors", data, "application/octet-stream")).run()
    assert not at.exception
    assert "bad.safetensors was not loaded" in at.error[0].value
    assert "current model is unchanged" in at.error[0].value
    assert_current_unchanged(at, entry, before)


UNUSABLE_CHECKPOINTS = {
    "no data set": (tiny_checkpoint(), "data set is None"),
    "unknown data set": (tiny_checkpoint(dataset="cifar10"), "data set is 'cifar10'"),
    "digits at 28x28": (tiny_checkpoint((28, 28), dataset="digits"), "digits images are 8x8"),
    "mnist at 8x8": (tiny_checkpoint(dataset="mnist"), "mnist images are 28x28"),
    "kmnist at 28x20": (tiny_checkpoint((28, 20), dataset="kmnist"), "kmnist images are 28x28"),
    "nine class names": (tiny_checkpoint(dataset="digits", class_names=list("012345678")), "10 strings"),
    "no class names listed": (tiny_checkpoint(dataset="digits", class_names=[]), "10 strings"),
}


@pytest.mark.parametrize("data, why", UNUSABLE_CHECKPOINTS.values(), ids=UNUSABLE_CHECKPOINTS.keys())
def test_a_checkpoint_the_pages_cannot_show_is_refused(data: bytes, why: str) -> None:
    entry = tiny_entry(3, seed=6)
    at = open_page("pages/train.py", state=with_user_model(entry))
    before = entry.fingerprint
    at.file_uploader[0].set_value(("odd.safetensors", data, "application/octet-stream")).run()
    assert not at.exception
    assert "odd.safetensors was not loaded" in at.error[0].value and why in at.error[0].value
    assert "current model is unchanged" in at.error[0].value
    assert_current_unchanged(at, entry, before)


def test_an_idx_checkpoint_of_any_image_size_is_accepted() -> None:
    from ui.state import check_upload

    check_upload(*load_checkpoint(tiny_checkpoint((20, 12), dataset="idx", class_names=list("abcdefghij"))))


def test_training_on_digits_makes_a_new_current_model() -> None:
    at = open_page("pages/train.py")
    at.number_input(key="train_epochs").set_value(2)
    at.number_input(key="train_hidden").set_value(32)
    at.selectbox(key="train_dataset").set_value("digits")
    assert at.selectbox(key="train_precision").value == "auto"
    at.selectbox(key="train_precision").set_value("fp32")  # not the default here, so the choice must flow
    at.button[0].click()  # the form's Train button
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="model").value.startswith("trained-")
    assert "Trained" in at.success[0].value
    assert at.metric[0].value == "digits"
    entry = at.session_state["user_models"][at.selectbox(key="model").value]
    assert len(entry.meta["history"]) == 2
    assert entry.meta["train_config"]["precision"] == "fp32" and entry.meta["train_config"]["epochs"] == 2
    _, saved = load_checkpoint(checkpoint_bytes(entry.model, entry.meta))  # the download keeps the record
    assert saved["train_config"] == entry.meta["train_config"]
    assert "timeline" not in saved  # the latent space per epoch stays in the session, not in the file


def test_a_model_trained_here_shows_its_latent_space_after_each_epoch() -> None:
    """The model card steps through the epochs: the encoder's means of the same test digits after each,
    epoch 0 being the untrained encoder, in one frame for all."""
    from ui.training import TIMELINE_POINTS

    at = open_page("pages/train.py")
    at.number_input(key="train_epochs").set_value(20)
    at.number_input(key="train_hidden").set_value(32)
    at.selectbox(key="train_dataset").set_value("digits")
    at.button[0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    entry = at.session_state["user_models"][at.selectbox(key="model").value]
    timeline = entry.timeline
    assert timeline["epochs"] == list(range(21))
    n = min(TIMELINE_POINTS, 359)  # the digits test split has 359 images
    assert [c.shape for c in timeline["coords"]] == [(n, 2)] * 21 and len(timeline["labels"]) == n
    # The last epoch's coordinates are the kept model's own means of those digits.
    from vae_core import load_dataset
    from vae_core.subset import subset_indices

    test = load_dataset("digits", "test")
    images = test.as_float()[torch.as_tensor(subset_indices(len(test), TIMELINE_POINTS))]
    with torch.no_grad():
        mu, _ = entry.model.encode(images)
    np.testing.assert_allclose(timeline["coords"][-1], mu.numpy(), rtol=1e-4, atol=1e-5)
    spread = [float(np.std(c)) for c in timeline["coords"]]
    assert spread[0] < spread[-1]  # the untrained encoder's means are bunched; training spreads them
    slider = at.select_slider(key=f"timeline_{entry.id}")
    assert slider.options == [str(e) for e in range(21)] and slider.value == 20
    charts = at.get("vega_lite_chart")
    assert any('"after epoch 20"' in c.proto.spec for c in charts)
    slider.set_value(0).run()
    assert not at.exception
    assert any('"untrained (epoch 0)"' in c.proto.spec for c in at.get("vega_lite_chart"))


@pytest.mark.parametrize("native", [True, False])
def test_the_precision_choice_says_what_auto_means_and_offers_bf16_only_in_hardware(monkeypatch, native) -> None:
    import importlib

    monkeypatch.setattr(importlib.import_module("vae_core.train"), "native_bf16", lambda: native)
    at = open_page("pages/train.py")
    options = at.selectbox(key="train_precision").options
    expected = "bfloat16" if native else "float32"
    assert options[0] == f"auto ({expected} on this machine)"
    assert options[1:] == (["float32", "bfloat16"] if native else ["float32"])  # emulated bf16: many times slower


def test_a_data_set_that_cannot_be_had_offline_says_so(tmp_path, monkeypatch) -> None:
    import torchvision.datasets as tvd

    def offline(*args, **kwargs):
        raise OSError("no internet")

    monkeypatch.setattr(tvd, "FashionMNIST", offline)
    at = open_page("pages/train.py")
    before = at.selectbox(key="model").value
    at.selectbox(key="train_dataset").set_value("fashion-mnist")
    at.text_input(key="train_dir").set_value(str(tmp_path))
    at.button[0].click()
    at.run()
    assert not at.exception
    assert "t10k" in at.error[0].value or "train-images" in at.error[0].value
    assert at.selectbox(key="model").value == before


def test_a_z1_model_gets_a_message_on_the_latent_page_and_other_pages_work() -> None:
    entry = tiny_entry(1)
    at = open_page("pages/latent.py", state=with_user_model(entry))
    assert not at.exception
    assert any("single latent dimension" in w.value for w in at.warning)
    for page in ("pages/samples.py", "pages/interpolate.py", "pages/train.py"):
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])


def test_a_failing_projection_shows_an_error_and_other_pages_work(monkeypatch) -> None:
    from vae_core import projection

    def broken(z, **params):
        raise RuntimeError("the solver blew up")

    monkeypatch.setitem(projection.PROJECTIONS, "pca", broken)
    at = open_page("pages/latent.py", state={**with_user_model(tiny_entry(3, seed=7)), "points": 200},
                   query={"projection": "pca"})  # fmt: skip
    assert not at.exception
    assert "PCA failed" in at.error[0].value
    at.switch_page("pages/samples.py")
    at.run()
    assert not at.exception and not at.error


def test_a_learning_rate_of_10_ends_in_a_message_and_installs_nothing() -> None:
    at = open_page("pages/train.py")
    before = at.selectbox(key="model").value
    at.selectbox(key="train_dataset").set_value("digits")
    at.number_input(key="train_epochs").set_value(3)
    at.number_input(key="train_lr").set_value(10.0)
    at.button[0].click()
    at.run()
    assert not at.exception
    assert "learning rate 10 is most likely too high" in at.error[0].value
    assert at.selectbox(key="model").value == before
    assert not at.session_state["user_models"]


def test_one_visitors_model_is_invisible_to_another() -> None:
    alice = open_page("pages/train.py")
    data = checkpoint_bytes(tiny_entry(4, seed=3).model, {"dataset": "digits"})
    alice.file_uploader[0].set_value(("alice.safetensors", data, "application/octet-stream")).run()
    alice_id = alice.selectbox(key="model").value
    assert alice_id.startswith("uploaded-")
    bob = open_page("pages/train.py", query={"model": alice_id})  # even with Alice's link
    options = bob.selectbox(key="model").options  # labels, e.g. "digits 8x8 VAE, Z=4 (uploaded here)"
    assert "uploaded here" in alice.selectbox(key="model").options[-1]
    assert not any("uploaded here" in o for o in options) and len(options) == 4  # the bundled models only
    assert bob.selectbox(key="model").value == "mnist-vae-z2"
    assert "user_models" not in bob.session_state or not bob.session_state["user_models"]


def test_the_train_page_explains_beta_and_offers_the_longer_answer() -> None:
    at = open_page("pages/train.py")
    assert not at.exception
    beta_help = at.number_input(key="train_beta").help
    assert "β > 1" in beta_help and "blurrier samples and reconstructions" in beta_help and "unused" in beta_help
    assert any("The longer answer" in e.label for e in at.expander)


def test_the_model_card_says_how_the_model_was_trained() -> None:
    at = open_page("pages/train.py")
    # the bundled default, mnist-vae-z2, as models/make.sh trains it
    expected = "Trained for 40 epochs with Adam, learning rate 0.001 (a cosine schedule down to 0), batches of 128"
    assert f"{expected}, seed 1." in [c.value for c in at.caption]


BF16 = "bfloat16 layers (weights and Adam in float32)"


@pytest.mark.parametrize(
    ("config", "line"),
    [
        ({"epochs": 2, "lr": 0.003, "batch_size": 64, "seed": 0, "lr_schedule": "constant", "precision": "bf16"},
         f"Trained for 2 epochs with Adam, learning rate 0.003, batches of 64, seed 0, {BF16}."),
        ({"epochs": 1, "lr": 1, "precision": "fp32"},
         "Trained for 1 epoch with Adam, learning rate 1, float32 layers."),
        ({"epochs": 3, "lr": 0.001, "precision": "**[click](javascript:alert(1))**", "seed": "1"},
         "Trained for 3 epochs with Adam, learning rate 0.001."),
        ({"epochs": True, "lr": 0.001}, None),
        ({"lr": 0.001}, None),
        ({}, None),
    ],
)  # fmt: skip
def test_the_training_line_shows_only_known_keys_with_sane_values(config, line) -> None:
    from ui.training import describe_training

    assert describe_training(config) == line


def test_the_same_checkpoint_uploaded_twice_is_one_model() -> None:
    at = open_page("pages/train.py")
    data = checkpoint_bytes(tiny_entry(3).model, {"dataset": "digits"})
    at.file_uploader[0].set_value(("mine.safetensors", data, "application/octet-stream")).run()
    first = at.selectbox(key="model").value
    at.file_uploader[0].set_value(("again.safetensors", data, "application/octet-stream")).run()
    assert not at.exception and list(at.session_state["user_models"]) == [first]
    assert at.selectbox(key="model").value == first
    assert "again.safetensors is already loaded" in at.success[0].value


def test_the_same_settings_train_the_same_model_whatever_ran_before() -> None:
    """The seed covers the initial weights too: they were drawn before train() seeded anything, from
    whatever state the global generator was in, so a session's first run differed from its next ones."""
    at = open_page("pages/train.py")
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_hidden").set_value(32)
    at.selectbox(key="train_dataset").set_value("digits")
    weights = []
    for _ in range(2):
        torch.rand(1000)  # anything else using the generator in between
        at.button[0].click()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        entry = at.session_state["user_models"][at.selectbox(key="model").value]
        weights.append(entry.model.state_dict())
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert any(c.value.endswith("after 1 epoch.") for c in at.caption)  # not "1 epochs"
    loss = next(c for c in at.get("vega_lite_chart") if '"nats per image"' in c.proto.spec)
    assert '"format": "d"' in loss.proto.spec or '"format":"d"' in loss.proto.spec  # tick "1", not "1.000000"
