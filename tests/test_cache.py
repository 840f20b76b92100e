"""Shared caches: fits that take both cores run one at a time across sessions."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ui import cache
from vae_core.projection import Projection


@pytest.mark.parametrize("method, queued", [("tsne", True), ("umap", True), ("pca", False)])
def test_long_fits_run_one_at_a_time_and_quick_ones_never_wait(monkeypatch, method: str, queued: bool) -> None:
    running, most = [0], [0]
    guard = threading.Lock()

    def fake_fit(mu: np.ndarray, method: str, **params) -> Projection:
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with guard:
            running[0] -= 1
        return Projection(method, mu[:, :2], dict(params), mu)

    monkeypatch.setattr(cache, "fit_projection", fake_fit)
    monkeypatch.setattr(cache, "latents", lambda fingerprint, entry: (np.zeros((50, 4), np.float32), None))
    monkeypatch.setattr(cache, "engine", lambda: None)
    entry = type("Entry", (), {"source": "trained", "id": "x"})()
    cache.projection.clear()
    threads = [
        threading.Thread(target=cache.projection, args=(f"fp-{i}", entry, method, 50, (("seed", i),))) for i in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == (1 if queued else 3)
