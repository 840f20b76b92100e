"""Page tests with streamlit's AppTest: every page runs on the bundled models, and the controls work."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import shown_scatter
from PIL import Image
from streamlit.testing.v1 import AppTest

from vae_core.images import GRID_PADDING

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGES = [
    "pages/home.py",
    "pages/train.py",
    "pages/latent.py",
    "pages/samples.py",
    "pages/interpolate.py",
    "pages/dimensions.py",
    "pages/compare.py",
    "pages/digit.py",
]
TIMEOUT = 180  # t-SNE / UMAP first calls pay for imports and numba compilation


def open_page(page: str | None = None, query: dict | None = None, state: dict | None = None) -> AppTest:
    """A fresh visitor: URL query and session state set up front, then the page opened."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def chart_rows(at: AppTest) -> list[int]:
    """Rows in the first dataset of each Altair chart on the page."""
    rows = []
    for chart in at.get("vega_lite_chart"):
        datasets = chart.proto.datasets
        rows.append(pa.ipc.open_stream(datasets[0].data.data).read_all().num_rows if datasets else 0)
    return rows


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_on_the_bundled_model(page: str) -> None:
    at = open_page(page)
    assert_clean(at)
    assert at.title, "each page has a title"


def test_sidebar_offers_bundled_models_and_the_four_projections() -> None:
    at = open_page()
    assert at.selectbox(key="model").value == "mnist-vae-z2"  # opens on a bundled MNIST model
    assert at.selectbox(key="projection").options == ["raw (two latent dims)", "PCA", "t-SNE", "UMAP"]


def test_url_opens_umap() -> None:
    at = open_page(query={"projection": "umap"})
    assert at.selectbox(key="projection").value == "umap"
    assert at.query_params["projection"] == "umap"


def test_a_change_of_page_keeps_the_models_and_writes_them_back() -> None:
    """Streamlit's front end empties the query string on a change of page: the session's choice stays."""
    at = open_page("pages/latent.py")
    at.selectbox(key="model").set_value("mnist-vae-z20").run()
    at.selectbox(key="projection").set_value("pca").run()
    at.query_params.clear()
    at.switch_page("pages/samples.py").run()
    assert_clean(at)
    assert at.selectbox(key="model").value == "mnist-vae-z20" and at.selectbox(key="projection").value == "pca"
    assert at.query_params["model"] == "mnist-vae-z20" and at.query_params["projection"] == "pca"
    assert "points" not in at.query_params  # the latent page's own settings went with it


def test_a_link_to_a_model_of_an_ended_session_says_so() -> None:
    at = open_page(query={"model": "trained-0123abcd", "projection": "pca"})  # the run the link opens
    assert_clean(at)
    assert "is not here: a model trained or uploaded lives only in the session" in at.toast[0].value
    assert "trained-0123abcd" not in at.toast[0].value  # the address's text is never echoed as Markdown
    assert at.selectbox(key="model").value == "mnist-vae-z2" and at.query_params["model"] == "mnist-vae-z2"
    assert at.selectbox(key="projection").value == "pca"  # the rest of the link still applies


def test_choice_goes_back_into_the_url() -> None:
    at = open_page()
    at.selectbox(key="projection").set_value("pca").run()
    assert at.query_params["projection"] == "pca"
    at.selectbox(key="model").set_value("mnist-vae-z20").run()
    assert at.query_params["model"] == "mnist-vae-z20"
    assert at.query_params["projection"] == "pca"  # a rerun keeps the other choice


@pytest.mark.parametrize("method", ["raw", "pca", "tsne", "umap"])
def test_latent_scatter_has_the_points_asked_for(method: str) -> None:
    at = open_page("pages/latent.py", query={"projection": method}, state={"points": 200})
    assert_clean(at)
    assert chart_rows(at) == [200]
    spec, frame, shown = shown_scatter(at)
    assert shown == method and frame[["x", "y"]].notna().all().all()
    for part in (p for p in spec["layer"] if p["mark"]["type"] == "circle"):
        assert part["encoding"]["color"]["field"] == "class"
        assert {"field": "image", "type": "nominal"} in part["encoding"]["tooltip"]


def test_raw_view_of_a_z20_model_lets_the_user_pick_dimensions() -> None:
    at = open_page(
        "pages/latent.py",
        query={"model": "mnist-vae-z20", "projection": "raw"},
        state={"points": 200, "dim_x": 3, "dim_y": 7},
    )
    assert_clean(at)
    assert '"→ μ[3] (latent dim 3) · ↑ μ[7] (latent dim 7)"' in shown_scatter(at)[0]["title"]["text"]["expr"]


def test_random_page_shows_grid_and_manifold_for_z2() -> None:
    at = open_page("pages/samples.py", state={"n_samples": 16})
    assert_clean(at)
    images = at.get("image")
    assert len(images) == 2  # the random grid and, for Z = 2, the manifold


def test_interpolation_page_shows_strip_and_path() -> None:
    at = open_page("pages/interpolate.py", state={"interp_points": 200, "steps": 5})
    assert_clean(at)
    assert len(at.get("image")) == 2  # the linear and the slerp strip
    assert chart_rows(at)[-1] == 200  # the scatter under the path
    assert at.query_params["steps"] == "5" and at.query_params["mode"] == "linear"


def test_an_interpolation_link_reopens_the_same_digits() -> None:
    at = open_page("pages/interpolate.py", query={"a": "3", "b": "10", "steps": "12", "mode": "slerp"},
                   state={"interp_points": 200})  # fmt: skip
    assert_clean(at)
    assert at.number_input(key="idx_A").value == 3 and at.number_input(key="idx_B").value == 10
    assert at.slider(key="steps").value == 12 and at.radio(key="mode").value == "slerp"


def test_a_bad_value_in_a_link_is_ignored() -> None:
    at = open_page("pages/interpolate.py", query={"a": "x", "b": "99999999", "steps": "500"},
                   state={"interp_points": 200})  # fmt: skip
    assert_clean(at)
    assert at.slider(key="steps").value == 10


def test_identical_digits_give_a_clear_message() -> None:
    at = open_page(
        "pages/interpolate.py",
        state={"interp_points": 200, "how_A": "by test index", "how_B": "by test index", "idx_A": 5, "idx_B": 5},
    )
    assert not at.exception
    assert any("same digit" in w.value for w in at.warning)


@pytest.mark.parametrize(("method", "params"), [("tsne", {"perp": 10}), ("umap", {"nn": 5})])
def test_non_default_parameters_are_fitted_live(method: str, params: dict) -> None:
    at = open_page("pages/latent.py", query={"projection": method}, state={"points": 200, **params})
    assert_clean(at)
    assert chart_rows(at) == [200]


def test_background_warmup_runs_umap_fit_and_transform(monkeypatch) -> None:
    """The warm-up thread fits and applies a small UMAP, so numba compiles before a visitor asks."""
    from ui import warmup
    from vae_core import projection

    calls = []

    def recorder(z, **params):
        calls.append(("fit", len(z)))
        return z[:, :2], lambda new: calls.append(("transform", len(new))) or new[:, :2], {}

    monkeypatch.setitem(projection.PROJECTIONS, "umap", recorder)
    warmup._warm()
    assert calls == [("fit", 300), ("transform", 5)]


def test_random_page_pairs_each_sample_with_its_nearest_training_image(shown_images) -> None:
    at = open_page("pages/samples.py", state={"n_samples": 16, "nearest": True})
    assert_clean(at)
    assert len(at.get("image")) == 3  # samples, sample/neighbour pairs, manifold
    assert at.query_params["n"] == "16"
    from vae_core.images import GRID_PADDING

    grid, paired = (shown_images(at.get("image")[k].value[0]) for k in (0, 1))
    tile = 2 * 28 + 1  # a pair: sample, a 1-px line, its neighbour, as one tile
    assert paired.size[0] == 2 * (4 * (tile + GRID_PADDING) + GRID_PADDING)  # 4 pairs a row, at 2x
    assert paired.size[1] == grid.size[1]


def test_dimensions_page_reports_active_dimensions_and_keeps_its_link() -> None:
    at = open_page("pages/dimensions.py", query={"model": "mnist-vae-z20", "digit": "5", "steps": "7"})
    assert_clean(at)
    summary = next(c.value for c in at.caption if "dimensions are active" in c.value)
    assert " of 20 dimensions are active" in summary
    assert at.number_input(key="trav_digit").value == 5 and at.slider(key="trav_steps").value == 7
    assert len(at.get("image")) == 1


def test_an_autoencoder_is_not_described_by_a_kl_it_does_not_have(traversal_labels) -> None:
    at = open_page("pages/dimensions.py", query={"model": "mnist-ae-z2"})
    assert_clean(at)
    from ui import cache, state

    entry = state.get_entry("mnist-ae-z2")
    mu, _ = cache.latents(entry.fingerprint, entry)
    expected = [f"z{j} · std {mu[:, j].std():.2f}" for j in np.argsort(-mu.std(0), kind="stable")]
    assert traversal_labels[-1] == expected  # its rows, widest spread of μ first, labelled without a KL
    assert "plain autoencoder: it has no KL term" in at.info[0].value
    assert not any("average KL" in m.value for m in at.markdown)  # nor does the page's opening line say so
    assert not any("dimensions are active" in c.value for c in at.caption) and not at.get("vega_lite_chart")
    rows = at.get("image")[0].proto.imgs[0].caption
    assert "spread (standard deviation) of μ" in rows and "KL" not in rows  # the rows: "z1 · std 1.23"
    at.switch_page("pages/train.py").run()
    assert any("reconstruction only (an autoencoder has no KL term)" in c.value for c in at.caption)
    at = open_page("pages/latent.py", query={"model": "mnist-ae-z2", "sigma": "1", "show": "sampled"})
    assert_clean(at)
    assert not [t for t in at.toggle if "σ" in t.label] and not [r for r in at.radio if r.key == "show"]
    assert any("plain autoencoder: its encoder gives each image one code" in m.value for m in at.markdown)
    assert at.query_params["sigma"] == "0" and at.query_params["show"] == "mean"


def test_compare_page_shows_both_latent_spaces_and_both_sample_grids() -> None:
    at = open_page("pages/compare.py")
    assert_clean(at)
    assert chart_rows(at) == [2000, 2000]
    assert len(at.get("image")) == 4  # per model: N(0, I) samples, samples matched to its codes' spread
    assert [d.label for d in at.download_button] == [
        "VAE grid (PNG)",
        "VAE stretched grid (PNG)",
        "Autoencoder grid (PNG)",
        "Autoencoder stretched grid (PNG)",
    ]
    text = " ".join(m.value for m in at.markdown)
    assert "fill approximately the region" in text and "fill exactly" not in text  # KL pulls, it does not pin
    assert "The sidebar's model and projection do not apply here" in text  # it looks as if they should
    # The price of the KL term, from the two models' recorded reconstruction terms (not their totals)
    from ui import state

    recon = [state.get_entry(m).meta["history"][-1]["test_recon"] for m in ("mnist-vae-z2", "mnist-ae-z2")]
    assert f"{recon[0]:.1f} against {recon[1]:.1f} nats per test image" in text


def test_a_latent_link_restores_points_and_prior_overlay() -> None:
    at = open_page("pages/latent.py", query={"projection": "pca", "points": "500", "prior": "25"})
    assert_clean(at)
    assert chart_rows(at) == [500]
    assert at.select_slider(key="prior_n").value == 25
    assert len(json.loads(at.get("vega_lite_chart")[0].proto.spec)["layer"]) == 2  # points + prior crosses


TEACHING_PAGES = ["pages/home.py", "pages/samples.py", "pages/compare.py", "pages/digit.py", "pages/dimensions.py"]


@pytest.mark.parametrize("page", TEACHING_PAGES)
def test_page_opens_with_the_short_answer_and_the_longer_one(page: str) -> None:
    at = open_page(page, state={"n_samples": 16})
    assert_clean(at)
    assert at.main.markdown[0].value.startswith("**What am I looking at?**")
    assert any(e.label.startswith("The longer answer") for e in at.main.expander)


def test_a_compare_link_reopens_the_same_seed() -> None:
    at = open_page("pages/compare.py", query={"seed": "7"})
    assert_clean(at)
    assert at.number_input(key="compare_seed").value == 7
    at.number_input(key="compare_seed").set_value(12).run()
    assert at.query_params["seed"] == "12"


@pytest.mark.parametrize(
    ("page", "query"),
    [
        ("pages/samples.py", "n=16&seed=3&t=1.0"),
        ("pages/compare.py", "seed=3"),
        ("pages/dimensions.py", "digit=3&steps=9"),
    ],
)
def test_page_offers_a_link_to_this_view(page: str, query: str) -> None:
    params = dict(pair.split("=") for pair in query.split("&"))
    at = open_page(page, query=params, state={"n_samples": 16})
    assert_clean(at)
    links = [set(c.value.split("?")[-1].split("&")) for c in at.main.code]
    assert {*query.split("&"), "model=mnist-vae-z2", "projection=raw"} in links, links


@pytest.fixture
def no_training_set(monkeypatch):
    """The training set cannot be had here: ui.cache falls back to the test split for the nearest images."""
    import vae_core.data
    from ui import cache
    from vae_core import DatasetNotFoundError

    real = vae_core.data.load_dataset

    def test_split_only(name: str, split: str = "train", *args, **kwargs):
        if split == "train":
            raise DatasetNotFoundError("no training set on this machine")
        return real(name, split, *args, **kwargs)

    monkeypatch.setattr(vae_core.data, "load_dataset", test_split_only)  # ui/cache.py imports it when called
    cache.train_images.clear()  # a training set cached by an earlier test would hide the fallback
    yield
    cache.train_images.clear()


def nearest_caption(at: AppTest) -> str:
    return next(c for c in at.get("image")[1].captions if c.startswith("Pairs"))


def test_nearest_images_from_the_training_set_are_a_memorisation_check(mnist_dir) -> None:
    at = open_page("pages/samples.py", state={"n_samples": 16, "nearest": True})
    assert_clean(at)
    caption = nearest_caption(at)
    assert "closest image in the training set" in caption and "would mean memorising" in caption


def test_without_the_training_set_the_caption_says_no_memorisation_check(no_training_set) -> None:
    at = open_page("pages/samples.py", state={"n_samples": 16, "nearest": True})
    assert_clean(at)
    caption = nearest_caption(at)
    assert "closest image in the test split" in caption
    assert "memorisation check is not possible here" in caption and "would mean memorising" not in caption


@pytest.fixture
def shown_images(monkeypatch):
    """The bytes of every image a page shows: AppTest's media store, kept after the run."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    stores = []

    class Kept(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Kept)

    def fetch(url: str) -> Image.Image:
        return Image.open(io.BytesIO(stores[-1].get_file(url.rsplit("/", 1)[-1]).content))

    return fetch


def test_random_page_shows_n_images_in_one_grid(shown_images) -> None:
    at = open_page("pages/samples.py", state={"n_samples": 16})
    assert_clean(at)
    grid = shown_images(at.get("image")[0].value[0])
    side = 4 * (28 + GRID_PADDING) + GRID_PADDING  # 4 x 4 tiles of 28 x 28, padding between and around
    assert grid.size == (2 * side, 2 * side)  # MNIST tiles are shown at twice their size


def traversal_order(at: AppTest) -> list[str]:
    """The KL bars' order (the rows' own order: the labels drawn into the picture, traversal_labels)."""
    return json.loads(at.get("vega_lite_chart")[0].proto.spec)["encoding"]["x"]["sort"]


@pytest.fixture
def traversal_labels(monkeypatch) -> list[list[str]]:
    """The labels the dimensions page draws beside its traversal rows, top to bottom, per run."""
    from vae_core import images

    seen: list[list[str]] = []
    real = images.label_rows

    def recording(grid, labels, *args, **kwargs):
        seen.append(list(labels))
        return real(grid, labels, *args, **kwargs)

    monkeypatch.setattr(images, "label_rows", recording)
    return seen


def test_traversal_rows_are_ordered_by_average_kl(mnist_test, traversal_labels) -> None:
    from vae_core import load_checkpoint
    from vae_core.analysis import kl_per_dimension
    from vae_core.bundled import bundled_model_paths
    from vae_core.latents import encode_dataset

    model, _ = load_checkpoint(bundled_model_paths()["mnist-vae-z20"])
    mu, logvar = encode_dataset(model, mnist_test)
    expected = [f"z{j}" for j in np.argsort(-kl_per_dimension(mu.numpy(), logvar.numpy()))]
    at = open_page("pages/dimensions.py", query={"model": "mnist-vae-z20"})
    assert_clean(at)
    assert [label.split(" ")[0] for label in traversal_labels[-1]] == expected  # the rows themselves
    # The bars name their order: with sort=None, a chart updated in place after a change of model
    # kept the previous model's order in the browser.
    assert traversal_order(at) == expected


def test_collapsed_dimensions_are_marked_and_come_last() -> None:
    """Dimensions 4 and 11 switched off by hand: μ = 0 and σ = 1 for every image, so their KL is exactly 0."""
    import torch

    from ui.state import USER_MODELS, ModelEntry
    from vae_core import load_checkpoint
    from vae_core.bundled import bundled_model_paths
    from vae_core.precompute import fingerprint

    model, meta = load_checkpoint(bundled_model_paths()["mnist-vae-z20"])
    with torch.no_grad():
        for layer in (model.to_mu, model.to_logvar):
            layer.weight[[4, 11]] = 0.0
            layer.bias[[4, 11]] = 0.0
    entry = ModelEntry("uploaded-collapsed", model.eval(), meta, "uploaded", fingerprint(model))
    at = open_page("pages/dimensions.py", query={"model": entry.id}, state={USER_MODELS: {entry.id: entry}})
    assert_clean(at)
    assert any("18 of 20 dimensions are active" in c.value for c in at.caption)
    assert set(traversal_order(at)[-2:]) == {"z4", "z11"}
    bars = at.get("vega_lite_chart")[0]
    frame = pa.ipc.open_stream(bars.proto.datasets[0].data.data).read_all().to_pandas()
    assert set(frame.loc[frame["status"] != "active", "dimension"]) == {"z4", "z11"}
    assert "'off': inactive" in at.get("image")[0].captions[0]


def test_the_start_page_links_every_other_page_once_with_its_sidebar_title() -> None:
    from ui import shell

    at = open_page()
    links = [(link.proto.page, link.proto.label) for link in at.get("page_link")]
    assert sorted(label for _, label in links) == sorted(page.title for page in shell.PAGES[1:])
    assert links[0][1] == "Latent space" and links[-1][1] == "Train or load a model"


def test_the_pages_said_to_publish_their_settings_are_the_ones_that_do() -> None:
    """app.py lets the sidebar write the URL only on pages that do not (ui/shell.PUBLISHING); a page in the
    wrong list would write the address twice a run, or never write the model and projection."""
    from ui import shell

    publishing = {
        page.url
        for page in shell.PAGES
        if "publish" in (ROOT / page.file).read_text()  # publish or publish_url
    }
    assert publishing == set(shell.PUBLISHING)


@pytest.mark.parametrize(
    "page", ["pages/latent.py", "pages/samples.py", "pages/interpolate.py", "pages/dimensions.py", "pages/train.py"]
)
def test_a_model_that_has_barely_learned_is_called_so_where_its_pictures_would_mislead(page: str) -> None:
    """A review trained the digits set for 5 epochs: KL 0.12 nats, every sample the same blob, and the
    pages taught as if it had worked. The same weights with the bundled model's own record (KL 7) get
    no warning."""
    from ui.state import USER_MODELS, ModelEntry
    from vae_core import load_checkpoint
    from vae_core.bundled import bundled_model_paths
    from vae_core.precompute import fingerprint

    model, meta = load_checkpoint(bundled_model_paths()["mnist-vae-z2"])
    early = {**meta, "history": [{**meta["history"][-1], "epoch": 5, "test_kl": 0.12}]}
    for name, m, warned in (("early", early, True), ("done", meta, False)):
        entry = ModelEntry(name, model.eval(), m, "trained here", fingerprint(model))
        at = open_page(page, query={"model": name}, state={USER_MODELS: {name: entry}})
        assert_clean(at)
        said = [w.value for w in at.warning if "almost none of its latent space" in w.value]
        assert bool(said) == warned, (page, name, [w.value for w in at.warning])
        if warned:
            assert "0.12 nats per test image" in said[0] and "stopped after 5" in said[0]


def test_a_high_beta_model_with_no_kl_is_told_to_lower_beta_not_to_train_longer() -> None:
    """β = 8 on digits keeps the KL at 0.00 after 20 epochs and after 100 (measured in the review): more
    epochs would not help, a lower β would."""
    import copy

    from ui.state import USER_MODELS, ModelEntry
    from vae_core import load_checkpoint
    from vae_core.bundled import bundled_model_paths
    from vae_core.precompute import fingerprint

    model, meta = load_checkpoint(bundled_model_paths()["mnist-vae-z2"])
    model = copy.deepcopy(model)
    model.config = dataclasses.replace(model.config, beta=8.0)
    record = {**meta, "history": [{**meta["history"][-1], "epoch": 100, "test_kl": 0.0}]}
    entry = ModelEntry("strong", model.eval(), record, "trained here", fingerprint(model))
    at = open_page("pages/samples.py", query={"model": "strong"}, state={USER_MODELS: {"strong": entry}})
    assert_clean(at)
    (said,) = [w.value for w in at.warning if "almost none of its latent space" in w.value]
    assert "β = 8" in said and "lower β" in said and "more epochs" not in said
