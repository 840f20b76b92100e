"""vae_core/charts.py: stable_spec keeps the spec text of a chart whose data alone change."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vae_core.charts import latent_scatter, on_canvas, prior_layer, scatter_frame, scatter_spec, stable_spec

CLASSES = [str(i) for i in range(10)]


def frame(seed: int, n: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return scatter_frame(rng.normal(size=(n, 2)) * (seed + 1), rng.integers(0, 10, n), CLASSES)


def text(spec: dict) -> str:
    return json.dumps({k: v for k, v in spec.items() if k != "datasets"}, sort_keys=True)


def test_new_data_keeps_the_spec_text_and_carries_the_new_frames() -> None:
    a, b = frame(0), frame(1, n=70)
    spec_a, spec_b = (stable_spec(on_canvas(latent_scatter(f, CLASSES))) for f in (a, b))
    assert text(spec_a) == text(spec_b)
    assert list(spec_a["datasets"]) == ["data-0"] and spec_a["data"] == {"name": "data-0"}
    pd.testing.assert_frame_equal(spec_b["datasets"]["data-0"], b)
    assert spec_a["usermeta"] == {"embedOptions": {"renderer": "canvas"}} and "config" not in spec_a


def test_every_layer_gets_its_own_name_and_the_chart_is_left_alone() -> None:
    chart = latent_scatter(frame(0), CLASSES) + prior_layer(np.zeros((3, 2)), ["data:image/png;base64,"] * 3)
    spec = stable_spec(on_canvas(chart))
    assert [part["data"] for part in spec["layer"]] == [{"name": "data-0"}, {"name": "data-1"}]
    assert len(spec["datasets"]["data-1"]) == 3
    assert isinstance(chart.layer[0].data, pd.DataFrame)  # the original still holds its frame


def test_other_encodings_change_the_spec() -> None:
    plain = stable_spec(latent_scatter(frame(0), CLASSES))
    faded = frame(0).assign(sigma=0.5)
    assert text(plain) != text(stable_spec(latent_scatter(faded, CLASSES)))


@pytest.mark.parametrize("extra", [{}, {"sigma": 0.3}, {"image": "data:image/png;base64,"}])
def test_the_cached_scatter_spec_is_the_altair_charts_own(extra) -> None:
    """scatter_spec skips building the Altair chart on each run; it must give exactly what it would."""
    f = frame(2).assign(**extra)
    want = stable_spec(on_canvas(latent_scatter(f, CLASSES)))
    for _ in range(2):  # the second comes from the cache
        got = scatter_spec(f, CLASSES)
        assert text(got) == text(want)
        pd.testing.assert_frame_equal(got["datasets"]["data-0"], f)
