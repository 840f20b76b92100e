"""Models added in a session: cache keys that cover what the caches read, distinct labels, their test loss."""

from __future__ import annotations

import torch
from streamlit.testing.v1 import AppTest

from ui.state import ModelEntry
from vae_core import VAE, VAEConfig, checkpoint_bytes, load_dataset
from vae_core.precompute import fingerprint


def digits_model(beta: float = 1.0, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(image_shape=(28, 28), hidden_sizes=(16,), latent_dim=2, beta=beta)).eval()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader[0].set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_cache_key_covers_the_data_set_source_and_bundled_id() -> None:
    model = digits_model()
    weights = fingerprint(model)
    bundled = ModelEntry("mnist-vae-z2", model, {"dataset": "mnist"}, "bundled", weights)
    relabelled = ModelEntry("uploaded-1", model, {"dataset": "fashion-mnist"}, "uploaded", weights)
    same_data = ModelEntry("uploaded-2", model, {"dataset": "mnist"}, "uploaded", weights)
    other_bundled = ModelEntry("mnist-vae-z2-copy", model, {"dataset": "mnist"}, "bundled", weights)
    keys = {e.fingerprint for e in (bundled, relabelled, same_data, other_bundled)}
    assert len(keys) == 4  # same weights, never the same cache entries
    assert all(key.startswith(weights) for key in keys)


def test_a_model_with_its_own_test_split_has_its_own_key() -> None:
    model, meta = digits_model(), {"dataset": "mnist"}
    test = load_dataset("mnist", "test")
    by_name = ModelEntry("trained-1", model, meta, "trained", fingerprint(model))
    own = ModelEntry("trained-2", model, meta, "trained", fingerprint(model), test_data=test)
    subset = type(test)(test.name, test.images[:100], test.labels[:100], test.class_names, "test")
    own_subset = ModelEntry("trained-3", model, meta, "trained", fingerprint(model), test_data=subset)
    assert len({by_name.fingerprint, own.fingerprint, own_subset.fingerprint}) == 3


def test_two_models_with_the_same_data_set_and_z_have_distinct_labels(open_train_page) -> None:
    at = open_train_page()
    upload(at, "a.safetensors", checkpoint_bytes(digits_model(seed=1), {"dataset": "mnist"}))
    upload(at, "b.safetensors", checkpoint_bytes(digits_model(seed=2), {"dataset": "mnist"}))
    upload(at, "c.safetensors", checkpoint_bytes(digits_model(beta=4.0, seed=3), {"dataset": "mnist"}))
    options = at.selectbox(key="model").options
    assert len(set(options)) == len(options) == 7  # four bundled models and the three uploads
    ours = options[-3:]
    assert ours[0].endswith("uploaded here #1)") and ours[1].endswith("uploaded here #2)")
    assert "β=4" in ours[2] and "β=" not in ours[0]


def test_an_uploaded_model_without_history_shows_its_test_loss_now(open_train_page) -> None:
    from vae_core import evaluate

    model = digits_model(seed=4)
    at = upload(open_train_page(), "fresh.safetensors", checkpoint_bytes(model, {"dataset": "mnist"}))
    expected = evaluate(model, load_dataset("mnist", "test").as_float())
    assert at.metric[3].label == "Test loss (nats/image)"
    assert at.metric[3].value == f"{expected['loss']:.1f}"
    caption = " ".join(c.value for c in at.caption)
    assert f"reconstruction {expected['recon']:.2f}" in caption and f"KL {expected['kl']:.2f}" in caption
    assert "computed now" in caption


def test_the_test_loss_is_computed_once_per_model(monkeypatch, open_train_page) -> None:
    import importlib

    train_module = importlib.import_module("vae_core.train")  # the module: `vae_core.train` is the function
    calls = []
    real = train_module.evaluate
    # ui/cache.py imports it when called
    monkeypatch.setattr(train_module, "evaluate", lambda model, x: calls.append(len(x)) or real(model, x))
    at = upload(open_train_page(), "once.safetensors", checkpoint_bytes(digits_model(seed=5), {"dataset": "mnist"}))
    at.run()
    at.run()
    assert not at.exception
    assert calls == [10000]  # the whole MNIST test split, once
