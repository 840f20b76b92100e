"""Latent page (AppTest): σ and sampled z, the prior overlay in every projection, errors, the URL."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import shown_scatter
from PIL import Image
from streamlit.testing.v1 import AppTest

from vae_core.latents import sample_prior
from vae_core.subset import subset_indices

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 180  # the first t-SNE / UMAP call pays for imports and numba compilation
POINTS = 200  # small inputs keep each test a few seconds


def open_latent(query: dict | None = None, state: dict | None = None) -> AppTest:
    """A fresh visitor on the latent page with this URL query and session state."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    for key, value in {"points": POINTS, **(state or {})}.items():
        at.session_state[key] = value
    at.run()
    at.switch_page("pages/latent.py")
    return at.run()


def layers(at: AppTest) -> list[tuple[dict, pd.DataFrame]]:
    """(spec, data) of each layer of the page's first chart; a plain chart is one layer."""
    chart = at.get("vega_lite_chart")[0]
    data = {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets}
    spec = json.loads(chart.proto.spec)
    parts = spec.get("layer", [spec])
    named = [(part, part.get("data", spec.get("data"))) for part in parts]
    return [(part, data[d["name"]]) for part, d in named if "name" in d]  # not the inline "not computed" line


def layer(at: AppTest, mark: str) -> tuple[dict, pd.DataFrame]:
    found = [(spec, frame) for spec, frame in layers(at) if spec["mark"]["type"] == mark]
    assert len(found) == 1, [spec["mark"] for spec, _ in layers(at)]
    return found[0]


def xy(frame: pd.DataFrame) -> np.ndarray:
    return frame[["x", "y"]].to_numpy()


def on_screen(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("On screen:"))


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def current_entry():
    from ui import state

    return state.get_entry("mnist-vae-z2")


# --- σ, sampled z, manifold, tooltip ---------------------------------------------------------------------------


def test_sampled_z_moves_the_points_but_the_ellipses_stay_on_mu() -> None:
    mean = open_latent(state={"sigma": True})
    sampled = open_latent(state={"sigma": True, "show": "one sampled z ~ N(μ, σ²)"})
    assert_clean(mean)
    assert_clean(sampled)
    mu_xy, z_xy = xy(layer(mean, "circle")[1]), xy(layer(sampled, "circle")[1])
    assert not np.allclose(mu_xy, z_xy), "a sampled z is not its mean"
    _, outlines = layer(sampled, "line")
    ring = outlines[outlines["order"] < outlines["order"].max()]  # the last vertex closes the ring: drop it
    centres = ring.groupby("point")[["x", "y"]].mean().to_numpy()  # evenly spaced round the ring: the centre
    np.testing.assert_allclose(centres, mu_xy[: len(centres)], atol=1e-4)  # q(z|x) is centred on μ
    assert on_screen(mean) != on_screen(sampled)
    assert "mean μ" in on_screen(mean) and "random draw" in on_screen(sampled)


def test_sigma_in_a_projection_is_opacity() -> None:
    at = open_latent({"projection": "pca"}, {"sigma": True})
    assert_clean(at)
    spec, frame = layer(at, "circle")
    assert spec["encoding"]["opacity"]["field"] == "sigma" and (frame["sigma"] > 0).all()
    assert not [s for s, _ in layers(at) if s["mark"]["type"] == "line"], "no ellipses outside the raw view"


def test_manifold_draws_decoded_images_under_the_z2_scatter() -> None:
    without, with_images = open_latent(), open_latent(state={"manifold": True})
    assert_clean(with_images)
    assert not [s for s, _ in layers(without) if s["mark"]["type"] == "image"]
    spec, frame = layer(with_images, "image")
    assert spec["encoding"]["url"]["field"] == "url" and len(frame) > 1
    assert "Underneath" in on_screen(with_images)
    # A square plot of fixed size (the images' size is in pixels), its legend below it: with Streamlit's
    # default autosize "fit", the axes and legend were squeezed into that size and the grid with them.
    from ui.latent_view import MANIFOLD_PX

    top = json.loads(with_images.get("vega_lite_chart")[0].proto.spec)
    assert top["autosize"] == {"type": "pad"} and top["config"]["legend"] == {"orient": "bottom", "columns": 5}
    assert top["width"] == top["height"] == MANIFOLD_PX
    # The view covers the 1st to 99th percentile of μ: every mark is clipped to it (σ ellipses and points
    # were drawn past the frame), and the caption says the outermost points are off its edge.
    with_all = open_latent(state={"manifold": True, "sigma": True, "prior_n": 25})
    assert_clean(with_all)
    assert {s["mark"]["type"] for s, _ in layers(with_all)} >= {"image", "circle", "line", "point"}
    assert all(s["mark"].get("clip") is True for s, _ in layers(with_all))
    assert "a few percent of the points lie off its edge" in on_screen(with_all)


def test_tooltip_shows_the_digit_beside_its_reconstruction() -> None:
    at = open_latent()
    _, frame, _ = shown_scatter(at)
    url = frame["image"].iloc[0]
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    width = 28  # MNIST
    assert image.size == (2 * width + 2, width)  # digit, a 2-pixel bar, reconstruction


# --- the prior overlay ---------------------------------------------------------------------------------------


def test_prior_crosses_are_the_random_samples_pages_draws() -> None:
    at = open_latent(state={"prior_n": 25, "sample_seed": 5, "temperature": 0.5})  # that page's default n: 64
    assert_clean(at)
    page = sample_prior(64, 2, 5, 0.5).numpy()
    np.testing.assert_allclose(xy(layer(at, "point")[1]), page[:25], atol=1e-6)


def test_more_crosses_than_samples_start_with_all_the_pages_samples() -> None:
    at = open_latent(state={"prior_n": 25, "n_samples": 16, "sample_seed": 5})
    assert_clean(at)
    crosses = xy(layer(at, "point")[1])
    assert len(crosses) == 25
    np.testing.assert_allclose(crosses[:16], sample_prior(16, 2, 5).numpy(), atol=1e-6)
    assert "transform" not in on_screen(at) and "placed exactly" in on_screen(at)


def test_tsne_prior_overlay_keeps_the_layout_and_places_the_crosses_into_it() -> None:
    """The digits stay where the view without crosses has them (a joint t-SNE of digits and crosses moved
    the clusters and could split a class); each cross goes where openTSNE's transform puts it."""
    from ui import cache
    from vae_core.projection import tsne_place

    at = open_latent({"projection": "tsne"}, {"prior_n": 25})
    assert_clean(at)
    z = sample_prior(64, 2, 0).numpy()[:25]
    entry = current_entry()
    view = cache.projection(entry.fingerprint, entry, "tsne", POINTS, (("perplexity", 30),))
    np.testing.assert_allclose(xy(layer(at, "circle")[1]), view.embedding, atol=1e-5)
    mu, _ = cache.latents(entry.fingerprint, entry)
    placed = tsne_place(mu[subset_indices(len(mu), POINTS)], view.embedding, z, perplexity=30)
    crosses = xy(layer(at, "point")[1])
    np.testing.assert_allclose(crosses, placed, atol=1e-3)
    assert "placed into this t-SNE layout, which stays as it is" in on_screen(at)
    # Each cross lands among the digits whose codes are nearest its own, not somewhere arbitrary.
    nearest = np.argmin(((mu[subset_indices(len(mu), POINTS)][None] - z[:, None]) ** 2).sum(-1), axis=1)
    spread = np.median(np.linalg.norm(view.embedding - view.embedding.mean(0), axis=1))
    assert np.median(np.linalg.norm(crosses - view.embedding[nearest], axis=1)) < 0.5 * spread


@pytest.mark.slow
def test_umap_prior_overlay_is_placed_by_transform() -> None:
    from ui import cache

    at = open_latent({"projection": "umap"}, {"prior_n": 25})
    assert_clean(at)
    entry, params = current_entry(), (("min_dist", 0.1), ("n_neighbors", 15))
    assert cache.projection(entry.fingerprint, entry, "umap", POINTS, params).placement == "nearest neighbours"
    exact = cache.projection(entry.fingerprint, entry, "umap", POINTS, params, exact=True)
    assert exact.placement == "exact"
    # Fitted here for its transform, from the shipped layout: the same way up (from scratch, this UMAP
    # came out mirrored top to bottom against the view without crosses).
    shipped = cache.projection(entry.fingerprint, entry, "umap", POINTS, params).embedding
    for axis in (0, 1):
        assert np.corrcoef(exact.embedding[:, axis], shipped[:, axis])[0, 1] > 0.5, axis
    np.testing.assert_allclose(xy(layer(at, "circle")[1]), exact.embedding, atol=1e-5)
    z = sample_prior(64, 2, 0).numpy()[:25]
    np.testing.assert_allclose(xy(layer(at, "point")[1]), exact.transform(z), atol=1e-3)
    assert "UMAP's transform" in on_screen(at) or "transform of a UMAP" in on_screen(at)


# --- failures and bad settings ------------------------------------------------------------------------------


def test_a_failing_transform_shows_an_error_and_the_page_keeps_working(monkeypatch) -> None:
    from vae_core.projection import Projection

    def broken(self, new):
        raise RuntimeError("transform exploded")

    monkeypatch.setattr(Projection, "transform", broken)
    at = open_latent({"projection": "pca"}, {"prior_n": 25})
    assert not at.exception, [e.value for e in at.exception]
    assert any("transform exploded" in e.value for e in at.error)
    assert any("What the clusters mean" in m.value for m in at.markdown), "the rest of the page is drawn"


def test_a_z20_model_opens_on_its_two_most_informative_dimensions() -> None:
    """Not on 0 and 1, which a model may have left unused: on the first two rows of Latent dimensions."""
    from ui import state
    from vae_core.bundled import bundled_model_paths
    from vae_core.precompute import load_sidecar
    from vae_core.projection import dimension_order, kl_per_dimension

    at = open_latent({"model": "mnist-vae-z20", "projection": "raw"})
    assert_clean(at)
    entry = state.get_entry("mnist-vae-z20")
    shipped, _ = load_sidecar(bundled_model_paths()["mnist-vae-z20"], entry.weights_hash)
    first, second = dimension_order(shipped["mu"], shipped["logvar"])[:2]
    assert (first, second) != (0, 1)  # else this test could not tell the default from the old one
    kl = kl_per_dimension(shipped["mu"], shipped["logvar"])
    assert kl[first] == kl.max() and kl[second] == np.sort(kl)[-2]
    assert at.number_input(key="dim_x").value == first and at.number_input(key="dim_y").value == second
    assert (at.query_params["x"], at.query_params["y"]) == (str(first), str(second))
    spec, data, method = shown_scatter(at)
    assert method == "raw"
    assert f'"→ μ[{first}] (latent dim {first}) · ↑ μ[{second}] (latent dim {second})"' in spec["title"]["text"]["expr"]
    idx = subset_indices(len(shipped["mu"]), POINTS)
    np.testing.assert_allclose(data[["x", "y"]].to_numpy(), shipped["mu"][idx][:, [first, second]], rtol=1e-6)


def test_the_same_dimension_on_both_axes_warns() -> None:
    at = open_latent({"model": "mnist-vae-z20"}, {"dim_x": 3, "dim_y": 3})
    assert not at.exception
    assert any("same latent dimension" in w.value for w in at.warning)


# --- the URL ----------------------------------------------------------------------------------------------


def test_a_link_reopens_the_same_dimensions_and_layers() -> None:
    query = {"model": "mnist-vae-z20", "projection": "raw", "x": "3", "y": "7", "show": "sampled", "sigma": "1"}
    at = open_latent(query)
    assert_clean(at)
    assert at.number_input(key="dim_x").value == 3 and at.number_input(key="dim_y").value == 7
    assert at.radio(key="show").index == 1 and at.toggle(key="sigma").value
    assert any(c.value == "→ μ[3] (latent dim 3) · ↑ μ[7] (latent dim 7)" for c in at.caption)
    assert (at.query_params["x"], at.query_params["y"], at.query_params["show"]) == ("3", "7", "sampled")


def test_a_link_keeps_the_projection_parameters_and_ignores_bad_values() -> None:
    at = open_latent({"projection": "tsne", "perplexity": "10", "x": "99", "show": "both"})
    assert_clean(at)
    assert at.slider(key="perp").value == 10 and at.query_params["perplexity"] == "10"
    assert at.radio(key="show").index == 0  # an unknown mode keeps the default


def test_changing_a_control_updates_the_link() -> None:
    at = open_latent()
    at.toggle(key="manifold").set_value(True).run()
    assert at.query_params["manifold"] == "1"


# --- teaching text ----------------------------------------------------------------------------------------


def test_pca_text_gives_the_variance_share_and_no_false_promise() -> None:
    at = open_latent({"model": "mnist-vae-z20", "projection": "pca"})
    assert_clean(at)
    text = next(m.value for m in at.markdown if m.value.startswith("**PCA**"))
    assert "of the variance" in text and "distances can only shrink" in text
    assert "big distances" not in text
    share = int(text.split("hold ")[1].split("%")[0])
    assert 5 <= share <= 40  # two of twenty dimensions: a small share


def test_tsne_text_does_not_say_clusters_are_real() -> None:
    from ui import teaching

    text = teaching.projection_text("tsne", 20)
    assert "Clusters are real" not in text and "split or merge" in text and "mean little" in text


def test_the_scatter_is_drawn_on_a_canvas() -> None:
    """Below 2,000 points Streamlit lets Vega draw SVG (a DOM node per point); the page asks for a canvas."""
    at = open_latent(state={"prior_n": 25})
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["usermeta"]["embedOptions"]["renderer"] == "canvas"


def test_the_plain_scatter_holds_every_ready_projection_behind_buttons() -> None:
    """A bundled model ships t-SNE and UMAP, so all four projections are in the one chart, each equal to
    what the page draws when that projection is chosen, and the chart opens on the sidebar's choice."""
    at = open_latent({"model": "mnist-vae-z20", "projection": "raw"})
    assert_clean(at)
    spec, data, method = shown_scatter(at)
    assert method == "raw"
    choice = next(p for p in spec["params"] if p["name"] == "proj")
    assert choice["bind"]["input"] == "radio" and choice["bind"]["options"] == ["raw", "pca", "tsne", "umap"]
    for other in ("pca", "tsne", "umap"):
        alone = shown_scatter(open_latent({"model": "mnist-vae-z20", "projection": other}))[1]
        np.testing.assert_allclose(data[[f"x_{other}", f"y_{other}"]].to_numpy(), xy(alone))
    (points,) = (part for part in spec["layer"] if part["mark"]["type"] == "circle")
    x_of = points["transform"][0]["calculate"]  # the chosen projection's column
    assert [m for m in ("raw", "pca", "tsne", "umap") if f'datum["x_{m}"]' in x_of] == ["raw", "pca", "tsne", "umap"]
    assert "PC 1 (the direction of most variance)" in spec["title"]["text"]["expr"]


def test_a_projection_not_computed_yet_is_a_button_with_a_line_saying_so() -> None:
    """t-SNE at a perplexity not shipped and not computed in this session: a button whose plot says so,
    until it is chosen (then the page computes it, as for the sidebar)."""
    at = open_latent({"projection": "raw", "perplexity": "31"})
    assert_clean(at)
    spec, data, _ = shown_scatter(at)
    assert "x_tsne" not in data and {"x", "x_pca", "x_umap"} <= set(data)  # x: raw, the one shown
    waiting = [part for part in spec["layer"] if part["mark"]["type"] == "text"]
    assert [[v["projection"] for v in part["data"]["values"]] for part in waiting] == [["tsne"]]


def test_a_projection_fitted_earlier_in_the_session_stays_a_ready_button() -> None:
    """t-SNE at perplexity 31 (not shipped), fitted once; back on raw, its coordinates are still in the
    chart, from the session's own copy (a busy server's cache may have dropped them)."""
    at = open_latent({"projection": "tsne", "perplexity": "31"})
    fitted = shown_scatter(at)[1][["x", "y"]].to_numpy()
    at.selectbox(key="projection").set_value("raw").run()
    assert_clean(at)
    _, data, method = shown_scatter(at)
    assert method == "raw"
    np.testing.assert_array_equal(data[["x_tsne", "y_tsne"]].to_numpy(), fitted)


def test_shipped_projections_do_not_take_the_sessions_places_for_its_own_fits() -> None:
    at = open_latent({"projection": "tsne"})  # shipped with the bundled model
    assert_clean(at)
    assert not at.session_state["_switch_ready"]


def test_another_model_gets_a_new_chart_key() -> None:
    """Its axes are new: a zoom made on the old model's must not carry over to the new one's."""
    at = open_latent({"model": "mnist-vae-z2", "projection": "raw"})
    before = at.get("vega_lite_chart")[0].proto.id
    at.selectbox(key="model").set_value("mnist-ae-z2").run()
    assert_clean(at)
    assert at.get("vega_lite_chart")[0].proto.id != before


def test_a_projection_that_fails_for_a_button_is_left_out_not_fatal(monkeypatch) -> None:
    from ui import cache, state, switch_view, views

    entry = state.get_entry("mnist-vae-z20")
    default = {"dims": cache.raw_axes(entry.fingerprint, entry)}
    session = {"dim_x": 4, "dim_y": 3, views.AXES_OF: "another model"}
    monkeypatch.setattr(switch_view.st, "session_state", session)
    assert switch_view.params_of("raw", entry) == default  # another model's axes are not this one's
    session |= {views.AXES_OF: entry.fingerprint}
    assert switch_view.params_of("raw", entry) == {"dims": (4, 3)}
    session |= {"dim_x": 25}  # more dimensions than this model has
    assert switch_view.params_of("raw", entry) == default

    def failing(fingerprint, entry, method, *args, **kwargs):
        raise ValueError(f"{method} failed")

    monkeypatch.setattr(cache, "projection", failing)
    embedding = np.zeros((POINTS, 2), dtype=np.float32)
    coords = switch_view.ready(entry, POINTS, "tsne", {"perplexity": 31}, embedding)
    assert list(coords) == ["tsne"]  # raw, PCA and UMAP failed: no buttons drawn from them, no crash


def test_other_settings_keep_the_spec_text_so_the_browser_redraws_in_place() -> None:
    """More points: new data, same spec text and key, so the browser keeps its view (and its choice)."""
    at = open_latent({"model": "mnist-vae-z20", "projection": "raw"})
    before = at.get("vega_lite_chart")[0].proto
    at.session_state["points"] = 500
    at.run()
    assert_clean(at)
    after = at.get("vega_lite_chart")[0].proto
    assert after.spec == before.spec and after.id == before.id
    assert [d.data.data for d in after.datasets] != [d.data.data for d in before.datasets]


def test_choosing_in_the_sidebar_opens_the_chart_on_it_under_a_new_key() -> None:
    """Streamlit's front end restores a chart's last selection when it rebuilds it under the same key:
    a sidebar choice must come with a new key, or the buttons' old choice would come back."""
    at = open_latent({"model": "mnist-vae-z20", "projection": "raw"})
    before = at.get("vega_lite_chart")[0].proto
    at.selectbox(key="projection").set_value("pca").run()
    assert_clean(at)
    after = at.get("vega_lite_chart")[0].proto
    assert shown_scatter(at)[2] == "pca" and after.id != before.id


def test_after_a_button_choice_the_spec_opens_on_it_under_the_same_key() -> None:
    """The run after the buttons' callback: the browser already shows the choice, so the chart keeps
    its key, and its spec now opens on that choice (what a rebuild, e.g. full screen, will show)."""
    at = open_latent({"model": "mnist-vae-z20", "projection": "raw"})
    before = at.get("vega_lite_chart")[0].proto
    at.session_state["projection"] = "tsne"  # what on_choice does with the browser's event
    at.session_state["_switch_shown"] = "tsne"
    at.run()
    assert_clean(at)
    after = at.get("vega_lite_chart")[0].proto
    assert after.id == before.id and shown_scatter(at)[2] == "tsne"


def test_the_buttons_choice_becomes_the_sessions_projection(monkeypatch) -> None:
    """What the chart's on_select callback does with the browser's selection event."""
    from ui import switch_view

    session = {"latent_switch-3": {"selection": {"proj": [{"projection": "tsne"}]}}, "projection": "raw"}
    monkeypatch.setattr(switch_view.st, "session_state", session)
    switch_view.on_choice("latent_switch-3")
    assert session["projection"] == "tsne" and session[switch_view.SHOWN] == "tsne"
    for event in ({"selection": {"proj": [{"projection": "bogus"}]}}, {"selection": {"proj": {}}}, None):
        session["latent_switch-3"] = event
        switch_view.on_choice("latent_switch-3")
        assert session["projection"] == "tsne"  # unknown or empty: ignored


def test_a_bundled_models_page_uses_its_shipped_latents_and_runs_no_encoder(monkeypatch) -> None:
    import vae_core.latents
    from ui import cache

    def no_encoder(*_args, **_kwargs):
        raise AssertionError("the encoder ran over the test split of a bundled model")

    monkeypatch.setattr(vae_core.latents, "encode_dataset", no_encoder)  # ui/cache.py imports it when called
    cache.latents.clear()  # earlier tests may have cached these latents
    at = open_latent({"model": "mnist-vae-z2", "projection": "raw"})
    assert_clean(at)
    assert len(shown_scatter(at)[1]) == POINTS


def test_a_bundled_models_latent_page_is_drawn_without_torch_or_the_projection_libraries() -> None:
    """The server draws this page (and the start page) before its preload has imported torch and the
    rest (ui/preload.py): in a fresh interpreter where importing any of those fails, the page runs clean
    for each shipped projection, with every shipped layout of the default 2,000 points, their classes
    and their hover images' links."""
    code = (
        "import json, sys\n"
        "for name in ('torch', 'torchvision', 'sklearn', 'openTSNE', 'umap', 'altair', 'PIL'):\n"
        "    sys.modules[name] = None  # importing it now raises ImportError: all come with the heavy phase\n"
        "import pyarrow as pa\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"home = AppTest.from_file({APP!r}, default_timeout=120).run()  # the start page, which is light too\n"
        "print(json.dumps([e.value for e in [*home.exception, *home.error]] + [t.value for t in home.title]))\n"
        "out = []\n"
        "for model, projection in (('mnist-vae-z2', 'raw'), ('mnist-vae-z20', 'raw'), ('mnist-vae-z20', 'tsne'),\n"
        "                          ('mnist-vae-z20', 'umap')):\n"
        f"    at = AppTest.from_file({APP!r}, default_timeout=120)\n"
        "    at.query_params['model'], at.query_params['projection'] = model, projection\n"
        "    at.switch_page('pages/latent.py')\n"
        "    at.run()\n"
        "    data = pa.ipc.open_stream(at.get('vega_lite_chart')[0].proto.datasets[0].data.data).read_all()\n"
        "    out.append({'problems': [e.value for e in [*at.exception, *at.error]], 'title': at.title[0].value,\n"
        "                'columns': data.column_names, 'rows': data.num_rows,\n"
        "                'classes': sorted(set(data['class'].to_pylist())), 'image': data['image'][0].as_py()})\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "LATENT_LAB_WARMUP": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    *_, home, latent = proc.stdout.strip().splitlines()
    assert json.loads(home) == ["latent-lab: what does a VAE learn?"]
    pages = json.loads(latent)
    for page, model in zip(pages, ("mnist-vae-z2", *["mnist-vae-z20"] * 3), strict=True):
        assert page["problems"] == [] and page["title"] == "Latent space", page
        assert page["rows"] == 2000 and page["classes"] == [str(d) for d in range(10)]
        assert {f"{a}_{m}" for a in "xy" for m in ("raw", "pca", "tsne", "umap")} <= set(page["columns"])
        assert page["image"].startswith(f"api/thumbs/{model}/")


def test_pca_text_for_a_two_dimensional_model_says_nothing_is_dropped() -> None:
    """With Z = 2, PCA is a centring and a turn: the general text ("distances can only shrink") is wrong there."""
    from ui import teaching

    text = teaching.projection_text("pca", 2, {"explained_variance_ratio": [0.55, 0.45]})
    assert "nothing to drop" in text and "PC 1 holds 55%" in text
    assert "shrink" not in text and "dropped" not in text
    assert "distances can only shrink" in teaching.projection_text("pca", 20, {"explained_variance_ratio": [0.1, 0.1]})


def test_without_its_test_split_a_model_opens_on_dimensions_0_and_1(monkeypatch) -> None:
    """The default axes need the test split's μ; a model whose split cannot be had (an IDX folder gone)
    must not fail there, before the page can say what is missing."""
    from ui import cache, state, views
    from vae_core.errors import DatasetNotFoundError

    def missing(*_args):
        raise DatasetNotFoundError("the test split is not on this machine")

    monkeypatch.setattr(cache, "raw_axes", missing)
    assert views.default_axes(state.get_entry("mnist-vae-z20")) == (0, 1)


def test_another_z20_model_opens_on_its_own_best_dimensions_not_the_last_ones() -> None:
    """The axes' widgets keep their values across models: switching model must not carry the previous
    model's best dimensions over as if the visitor had picked them."""
    import torch

    from ui.state import USER_MODELS, ModelEntry
    from vae_core import load_checkpoint
    from vae_core.bundled import bundled_model_paths
    from vae_core.precompute import fingerprint

    model, meta = load_checkpoint(bundled_model_paths()["mnist-vae-z20"])
    perm = torch.roll(torch.arange(20), 5)  # new dimension j is the bundled model's dimension (j - 5) % 20
    with torch.no_grad():
        for layer in (model.to_mu, model.to_logvar):
            layer.weight.copy_(layer.weight[perm])
            layer.bias.copy_(layer.bias[perm])
    entry = ModelEntry("uploaded-permuted", model.eval(), meta, "uploaded", fingerprint(model))
    at = open_latent({"model": "mnist-vae-z20", "projection": "raw"}, {USER_MODELS: {entry.id: entry}})
    assert_clean(at)
    first, second = at.number_input(key="dim_x").value, at.number_input(key="dim_y").value
    at.selectbox(key="model").set_value(entry.id).run()
    assert_clean(at)
    expected = ((first + 5) % 20, (second + 5) % 20)  # the same dimensions, renumbered
    assert (at.number_input(key="dim_x").value, at.number_input(key="dim_y").value) == expected
    assert (at.query_params["x"], at.query_params["y"]) == tuple(str(d) for d in expected)
    at.number_input(key="dim_x").set_value(3).run()  # a choice made for this model stays
    assert at.number_input(key="dim_x").value == 3
