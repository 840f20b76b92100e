"""vae_core/charts.py: stable_spec keeps the spec text of a chart whose data alone change."""

from __future__ import annotations

import json

import altair as alt
import numpy as np
import pandas as pd
import pytest

from vae_core.charts import (
    SWITCH_PARAM,
    latent_scatter,
    on_canvas,
    prior_layer,
    scatter_frame,
    scatter_spec,
    stable_spec,
    switch_scatter_spec,
)

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


METHODS = {"raw": ("raw", "μ[0]", "μ[1]"), "pca": ("PCA", "PC 1", "PC 2"), "tsne": ("t-SNE", "t-SNE 1", "t-SNE 2")}


def wide(seed: int, methods: tuple[str, ...] = ("raw", "pca"), n: int = 40) -> pd.DataFrame:
    """A switchable scatter's frame: one row per point, x_/y_ columns per computed projection."""
    base = frame(seed, n).drop(columns=["x", "y"])
    rng = np.random.default_rng(seed)
    for method in methods:
        base[f"x_{method}"], base[f"y_{method}"] = rng.normal(size=n), rng.normal(size=n)
    return base


def test_switch_spec_text_depends_on_columns_and_choices_not_on_data() -> None:
    a, b = (switch_scatter_spec(wide(seed, n=n), CLASSES, METHODS, "raw") for seed, n in ((0, 40), (1, 90)))
    assert text(a) == text(b) and b["datasets"]["data-0"].shape[0] == 90
    assert text(switch_scatter_spec(wide(0), CLASSES, METHODS, "pca")) != text(a)  # opens on another choice
    assert text(switch_scatter_spec(wide(0), CLASSES, METHODS, "raw", revision=1)) != text(a)
    assert text(switch_scatter_spec(wide(0, ("raw", "pca", "tsne")), CLASSES, METHODS, "raw")) != text(a)


def test_switch_spec_draws_the_chosen_columns_and_a_line_for_the_others() -> None:
    spec = switch_scatter_spec(wide(0), CLASSES, METHODS, "pca")
    choice = next(p for p in spec["params"] if p["name"] == SWITCH_PARAM)
    assert choice["value"] == [{"projection": "pca"}] and choice["bind"]["options"] == ["raw", "pca", "tsne"]
    assert choice["select"]["on"] == "click[false]" and choice["select"]["clear"] is False  # buttons only
    zoom = next(p for p in spec["params"] if p["name"] == "zoom")
    assert zoom["bind"] == "scales" and "window:change" in zoom["select"]["clear"]  # a button resets it
    (points,) = (p for p in spec["layer"] if p["mark"]["type"] == "circle")
    assert (points["encoding"]["x"]["field"], points["encoding"]["y"]["field"]) == ("x", "y")
    calculated = {t["as"]: t["calculate"] for t in points["transform"]}
    for axis in ("x", "y"):
        for method in ("raw", "pca"):
            assert f'proj_projection === "{method}" ? datum["{axis}_{method}"]' in calculated[axis]
        assert "tsne" not in calculated[axis] and calculated[axis].endswith(": null")  # not computed: not drawn
    (waiting,) = (p for p in spec["layer"] if p["mark"]["type"] == "text")
    message = "Computing t-SNE for these points now: several seconds (the first UMAP after a restart, longer)…"
    assert waiting["data"] == {"values": [{"projection": "tsne", "message": message}]}  # said in the empty plot
    assert waiting["transform"] == [{"filter": "datum.projection === proj_projection"}]
    for _, x_title, y_title in METHODS.values():
        assert f'"→ {x_title} · ↑ {y_title}"' in spec["title"]["text"]["expr"]
    assert spec["usermeta"]["embedOptions"]["renderer"] == "canvas"


def test_switch_spec_is_valid_vega_lite() -> None:
    """The spec is written as JSON by hand (for speed): Altair's schema checks it."""
    for methods in (("raw", "pca"), ("raw", "pca", "tsne")):
        spec = switch_scatter_spec(wide(0, methods), CLASSES, METHODS, "raw")
        del spec["datasets"]
        alt.LayerChart.from_dict(spec)  # raises on anything the Vega-Lite schema does not allow
    spec["layer"][0]["mark"]["type"] = "dot"
    with pytest.raises(Exception, match="dot"):
        alt.LayerChart.from_dict(spec)


def test_the_hand_written_specs_name_altairs_vega_lite_schema() -> None:
    from vae_core.charts import VEGA_LITE_SCHEMA

    assert VEGA_LITE_SCHEMA == alt.SCHEMA_URL


def test_the_training_timeline_is_square_and_one_frame_for_every_epoch() -> None:
    from vae_core.charts import timeline_chart, timeline_domain

    early = np.full((5, 2), 0.1, dtype=np.float32)  # an untrained encoder: all near one point
    late = np.array([[4.0, -1.0], [-2.0, 0.5]], dtype=np.float32)
    assert timeline_domain([early]) == (-3.0, 3.0)  # never narrower than the prior's ±3
    lo, hi = timeline_domain([early, late])
    assert lo == -hi and hi == pytest.approx(4.2)  # wide enough for every epoch's points
    spec = timeline_chart(early, np.zeros(5, int), [str(d) for d in range(10)], 0, (lo, hi)).to_dict()
    assert spec["width"] == spec["height"] and spec["autosize"] == {"type": "pad"}
    assert spec["encoding"]["x"]["scale"]["domain"] == spec["encoding"]["y"]["scale"]["domain"] == [lo, hi]
    assert spec["title"]["text"] == "untrained (epoch 0)"
