"""ui/state.py: a bundled model's entry is made from its file without torch; its weights load on first use."""

from __future__ import annotations

from pathlib import Path

from ui import state
from vae_core.precompute import fingerprint


def test_a_bundled_entry_needs_no_weights_until_the_model_is_used_then_loads_them_once() -> None:
    state._bundled.clear()
    entry = state._bundled("mnist-vae-z20")
    assert isinstance(entry._model, Path), "made from the file's header and bytes: no model built yet"
    assert entry.config.latent_dim == 20 and entry.label == "MNIST VAE, Z=20" and entry.dataset == "mnist"
    model = entry.model
    assert model is entry.model, "loaded once, then shared"
    assert not model.training and not any(p.requires_grad for p in model.parameters()), "shared: read-only"
    assert entry.config == model.config and entry.weights_hash == fingerprint(model)
    state._bundled.clear()
