"""Interpolation page (AppTest): |z| and distance-to-data along each path, the path over the scatter, the text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 180  # the first UMAP call pays for numba compilation
POINTS = 200  # small inputs keep each test a few seconds
STEPS = 5


def open_interpolation(query: dict | None = None, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    for key, value in {"interp_points": POINTS, "steps": STEPS, **(state or {})}.items():
        at.session_state[key] = value
    at.run()
    at.switch_page("pages/interpolate.py")
    return at.run()


def flat_layers(spec: dict, data: dict | None = None) -> list[dict]:
    """Every leaf view of a (possibly nested) layered spec, in drawing order, with the data it inherits."""
    data = spec.get("data", data)
    if "layer" in spec:
        return [leaf for part in spec["layer"] for leaf in flat_layers(part, data)]
    return [{**spec, "data": data}]


def charts(at: AppTest) -> list[list[tuple[dict, pd.DataFrame]]]:
    """Per chart on the page: (spec, data) of each leaf layer."""
    out = []
    for chart in at.get("vega_lite_chart"):
        data = {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets}
        out.append([(leaf, data[leaf["data"]["name"]]) for leaf in flat_layers(json.loads(chart.proto.spec))])
    return out


def step_data(at: AppTest, field: str) -> pd.DataFrame:
    found = [frame for (spec, frame), *_ in charts(at) if spec["encoding"]["y"]["field"] == field]
    assert len(found) == 1, f"one chart of {field}"
    return found[0]


def path_chart(at: AppTest) -> list[tuple[dict, pd.DataFrame]]:
    return charts(at)[-1]


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_norm_and_nearest_distance_are_charted_for_both_paths() -> None:
    at = open_interpolation()
    assert_clean(at)
    norms, nearest = step_data(at, "norm"), step_data(at, "nearest")
    assert set(norms["path"]) == set(nearest["path"]) == {"linear", "slerp"}
    assert len(norms) == len(nearest) == 2 * STEPS and (norms["norm"] > 0).all()
    ends = nearest[nearest["step"].isin([0, STEPS - 1])]
    assert len(ends) == 4 and (ends["nearest"] < 1e-5).all(), "both ends are test digits' μ"
    assert nearest["nearest"].max() > 1e-3, "the inside of a path is not on a test digit"
    titles = [json.loads(c.proto.spec).get("title", {}).get("text") for c in at.get("vega_lite_chart")]
    assert {"|z| along the path", "distance to nearest test μ"} <= set(titles)  # across the top, whole


def test_the_path_is_drawn_over_the_scatter_from_one_mu_to_the_other() -> None:
    from ui import cache, state

    at = open_interpolation(state={"how_A": "by test index", "idx_A": 3, "how_B": "by test index", "idx_B": 10})
    assert_clean(at)
    layers = path_chart(at)
    marks = [spec["mark"]["type"] for spec, _ in layers]
    assert marks[0] == "circle" and len(layers[0][1]) == POINTS, "the scatter first, underneath"
    line = next(frame for spec, frame in layers[1:] if spec["mark"]["type"] == "line")
    assert len(line) == STEPS
    entry = state.get_entry("mnist-vae-z2")
    mu, _ = cache.latents(entry.fingerprint, entry)
    path = line.sort_values("step")[["x", "y"]].to_numpy()
    np.testing.assert_allclose(path[[0, -1]], mu[[3, 10]], atol=1e-5)  # raw Z = 2: exact
    assert any("placed exactly" in c.value for c in at.caption), [c.value for c in at.caption]


@pytest.mark.slow
def test_under_umap_the_path_is_placed_by_transform() -> None:
    from ui import cache, state

    at = open_interpolation({"projection": "umap"}, {"how_A": "by test index", "idx_A": 3, "how_B": "by test index",
                                                     "idx_B": 10})  # fmt: skip
    assert_clean(at)
    entry = state.get_entry("mnist-vae-z2")
    proj = cache.projection(entry.fingerprint, entry, "umap", POINTS, (("min_dist", 0.1), ("n_neighbors", 15)), True)
    assert proj.placement == "exact"
    layers = path_chart(at)
    np.testing.assert_allclose(layers[0][1][["x", "y"]].to_numpy(), proj.embedding, atol=1e-5)
    mu, _ = cache.latents(entry.fingerprint, entry)
    line = next(frame for spec, frame in layers[1:] if spec["mark"]["type"] == "line").sort_values("step")
    np.testing.assert_allclose(line[["x", "y"]].to_numpy()[[0, -1]], proj.transform(mu[[3, 10]]), atol=1e-3)
    assert any("transform of a UMAP" in c.value for c in at.caption)


def test_slerp_text_says_it_matters_little_at_z2() -> None:
    at = open_interpolation()
    assert_clean(at)
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "matters little" in text and "≈ √Z" not in text


def test_slerp_text_says_norms_concentrate_at_z20() -> None:
    at = open_interpolation({"model": "mnist-vae-z20"})
    assert_clean(at)
    text = next(m.value for m in at.markdown if "Slerp" in m.value)
    assert "this matters" in text and "√Z = 4.5" in text and "between 3.1 and 5.8" in text


def test_under_tsne_the_path_is_placed_into_the_layout_by_opentsnes_transform() -> None:
    """Not at the mean of each step's nearest digits' positions: where openTSNE's transform puts it in the
    layout on screen, which stays as it is (as the latent page's random z)."""
    from ui import cache, state
    from vae_core.latents import interpolate
    from vae_core.projection import tsne_place
    from vae_core.subset import subset_indices

    at = open_interpolation(
        {"projection": "tsne"}, {"how_A": "by test index", "idx_A": 3, "how_B": "by test index", "idx_B": 10}
    )
    assert_clean(at)
    assert any("into this t-SNE layout, which stays as it is" in c.value for c in at.caption)
    entry = state.get_entry("mnist-vae-z2")
    mu, _ = cache.latents(entry.fingerprint, entry)
    view = cache.projection(entry.fingerprint, entry, "tsne", POINTS, (("perplexity", 30),), True)
    layers = path_chart(at)
    np.testing.assert_allclose(layers[0][1][["x", "y"]].to_numpy(), view.embedding, atol=1e-4)  # unchanged
    codes = interpolate(torch.from_numpy(mu[3]), torch.from_numpy(mu[10]), STEPS, "linear").numpy()
    placed = tsne_place(mu[subset_indices(len(mu), POINTS)], view.embedding, codes, perplexity=30)
    line = next(frame for spec, frame in layers[1:] if spec["mark"]["type"] == "line")
    np.testing.assert_allclose(line.sort_values("step")[["x", "y"]].to_numpy(), placed, atol=1e-3)


def test_longer_answer_says_slerp_matters_little_at_z2() -> None:
    from ui import teaching

    assert "concentrates near √Z" in teaching.LONG_ANSWER and "With Z = 2 it matters little" in teaching.LONG_ANSWER


def test_the_path_radio_beside_the_map_draws_that_path_and_goes_into_the_url() -> None:
    """The radio sits beside the map (it used to be 800 px above it, out of sight on a projector); its
    value is read at the top of the page for the URL, so the map and the address agree after a click."""
    from ui import cache, state
    from vae_core.latents import interpolate

    at = open_interpolation({}, {"how_A": "by test index", "idx_A": 3, "how_B": "by test index", "idx_B": 10})
    assert_clean(at)
    assert at.radio(key="mode").value == "linear" and at.query_params["mode"] == "linear"
    # In the column of the map's controls (with its points slider), not in the steps column at the top
    (beside_map,) = [c for c in at.columns if any(s.key == "interp_points" for s in c.select_slider)]
    assert [r.key for r in beside_map.radio] == ["mode"]
    (steps_column,) = [c for c in at.columns if any(s.key == "steps" for s in c.slider)]
    assert not [r for r in steps_column.radio if r.key == "mode"]
    at.radio(key="mode").set_value("slerp").run()
    assert_clean(at)
    assert at.query_params["mode"] == "slerp"
    entry = state.get_entry("mnist-vae-z2")
    mu, _ = cache.latents(entry.fingerprint, entry)
    import torch

    codes = interpolate(torch.from_numpy(mu[3]), torch.from_numpy(mu[10]), STEPS, "slerp").numpy()
    line = next(frame for spec, frame in path_chart(at)[1:] if spec["mark"]["type"] == "line").sort_values("step")
    np.testing.assert_allclose(line[["x", "y"]].to_numpy(), codes, atol=1e-5)  # raw view: the codes themselves
    assert any("black spherical (slerp) path" in c.value for c in at.caption)
    reopened = open_interpolation({"mode": "slerp"})
    assert reopened.radio(key="mode").value == "slerp"


def test_the_strip_shows_each_reconstruction_once() -> None:
    """original A, the path (its ends are μ_A and μ_B: the reconstructions), original B. Two more tiles of
    the reconstructions beside the path's ends showed each of them twice in a row."""
    import torch

    from ui import interp_view
    from vae_core import VAE, VAEConfig, load_dataset
    from vae_core.latents import decode, interpolate

    data = load_dataset("digits", "test")
    torch.manual_seed(0)
    model = VAE(VAEConfig(image_shape=data.image_shape, hidden_sizes=(16,)))
    with torch.no_grad():
        mu, _ = model.encode(data.as_float()[[3, 9]])
        decoded = decode(model, interpolate(mu[0], mu[1], STEPS, "linear"))
        ends = decode(model, mu)
    tiles = interp_view.strip(data, 3, 9, decoded)
    assert tiles.shape[0] == STEPS + 2
    assert torch.equal(tiles[0], data.as_float()[3]) and torch.equal(tiles[-1], data.as_float()[9])
    torch.testing.assert_close(tiles[1], ends[0])  # the path starts at A's reconstruction
    torch.testing.assert_close(tiles[-2], ends[1])  # and ends at B's
    assert not torch.equal(tiles[1], tiles[2])
