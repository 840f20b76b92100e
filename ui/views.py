"""Page pieces used by more than one page: the projected scatter and its controls."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import streamlit as st

from vae_core.charts import latent_scatter, on_canvas, path_layer, scatter_frame, stable_spec  # noqa: F401 (path_layer re-exported)
from vae_core.errors import LatentLabError
from vae_core.precompute import TOOLTIP_POINTS
from vae_core.projection import Projection

from . import cache, state
from .access import public_text

POINT_CHOICES = [200, 500, 1000, 2000, 5000, 10000]
DEFAULT_POINTS = 2000  # t-SNE ~3 s and UMAP ~4 s on two cores: still interactive
AXIS_TITLES = {
    "pca": ("PC 1 (the direction of most variance)", "PC 2"),
    "tsne": ("t-SNE 1", "t-SNE 2 (no units: only who is near whom means something)"),
    "umap": ("UMAP 1", "UMAP 2 (no units: only who is near whom means something)"),
}


def projection_params(method: str, entry: state.ModelEntry, key: str = "") -> dict:
    """The sidebar projection's parameters, from controls on the page."""
    latent_dim = entry.config.latent_dim
    if method == "raw":
        if latent_dim <= 2:
            return {"dims": (0, 1)}
        first, second = default_axes(entry)
        _axes_belong_to(entry, key)
        c1, c2 = st.columns(2)
        tip = "Opens on the two dimensions with the most information (see Latent dimensions)."
        d0 = c1.number_input("x axis: latent dim", 0, latent_dim - 1, first, key=f"{key}dim_x", help=tip)
        d1 = c2.number_input("y axis: latent dim", 0, latent_dim - 1, second, key=f"{key}dim_y")
        if d0 == d1:
            st.warning("x and y are the same latent dimension, so every point falls on the diagonal. Pick two.")
        return {"dims": (int(d0), int(d1))}
    with st.expander(f"{state.PROJECTION_LABELS[method]} parameters"):
        if method == "tsne":
            return {
                "perplexity": st.slider("perplexity (neighbours each point attends to)", 5, 100, 30, key=f"{key}perp")
            }
        if method == "umap":
            return {
                "n_neighbors": st.slider("n_neighbors (local vs global structure)", 2, 100, 15, key=f"{key}nn"),
                "min_dist": st.slider("min_dist (how tightly points pack)", 0.0, 0.99, 0.1, key=f"{key}md"),
            }
        st.caption("PCA has no parameters: it keeps the two directions of largest variance.")
        return {}


def default_axes(entry: state.ModelEntry) -> tuple[int, int]:
    """The raw view's axes until the visitor picks others (cache.raw_axes); (0, 1) when the test split
    that ranks them cannot be had: the page then says so where it needs the data (require_test_data)."""
    try:
        return cache.raw_axes(entry.fingerprint, entry)
    except LatentLabError:
        return (0, 1)


AXES_OF = "_axes_of"  # session key (after the widgets' prefix): the model whose raw axes the session holds
AXES_FROM_URL = "_axes_from_url"  # set for one run when a link's x and y went into the session


def _axes_belong_to(entry: state.ModelEntry, key: str = "") -> None:
    """Before the raw axes' widgets are drawn: axes the visitor picked for another model are not this
    one's (the widgets keep their values across models, so the new model would open on the old one's
    best dimensions), unless this run's link named them. Then this model's default axes apply."""
    owner = f"{key}{AXES_OF}"
    from_url = st.session_state.pop(AXES_FROM_URL, False) if not key else False
    if st.session_state.get(owner) not in (None, entry.fingerprint) and not from_url:
        for name in ("dim_x", "dim_y"):
            st.session_state.pop(f"{key}{name}", None)
    st.session_state[owner] = entry.fingerprint


UNDERTRAINED_KL = 0.5  # nats per test image; the bundled MNIST VAEs have 7 (Z = 2) and more


def undertrained_warning(entry: state.ModelEntry) -> None:
    """A VAE whose recorded test KL is tiny has learned almost nothing about its inputs yet, and every
    picture of it (a tight cloud the axes blow up, identical samples, flat traversals) would mislead
    without this. The average KL bounds the information z carries about the image: it is the mutual
    information of x and z plus the KL of the codes' overall spread from N(0, I) (Hoffman & Johnson
    2016, "ELBO surgery")."""
    last = entry.last_epoch
    kl = last.get("test_kl")
    if entry.config.kind == "ae" or kl is None or kl >= UNDERTRAINED_KL:
        return
    beta = float(entry.config.beta)
    remedy = (
        f"β = {beta:g} weighs the KL term so heavily that the encoder keeps every code at N(0, I) however long "
        "it trains: train with a lower β (1 is the plain VAE)."
        if beta > 1
        else f"Train for more epochs (this one stopped after {last.get('epoch', '?')})."
    )
    st.warning(
        f"This model uses almost none of its latent space: its KL is {kl:.2f} nats per test image, so z "
        "carries at most that much information about the image. Every image's Gaussian is close to N(0, I), "
        f"and the decoder draws nearly the same picture whatever z it gets. {remedy}",
        icon=":material/hourglass_empty:",
    )


def require_test_data(entry: state.ModelEntry):
    """The current model's test split; when it cannot be had here, say so and stop this page only."""
    return _or_stop(entry, cache.test_split)


def test_split_missing(dataset: str) -> str | None:
    """Why the test split of a data set cannot be had here (for this visitor's eyes), or None when it can."""
    if dataset == "idx":
        return "a checkpoint does not say which folder it was trained on"
    try:
        cache.test_set(dataset)  # it has a spinner of its own
    except LatentLabError as exc:
        return public_text(exc)
    return None


def require_test_labels(entry: state.ModelEntry) -> np.ndarray:
    """The classes of the current model's test split, read without the images where they are on disk
    (cache.test_labels); when the split cannot be had here, say so and stop this page only."""
    return _or_stop(entry, cache.test_labels)


def _or_stop(entry: state.ModelEntry, get: Callable):
    try:
        return get(entry)
    except LatentLabError as exc:
        st.error(
            f"This page needs the test split of the model's data set ({entry.dataset!r}), which is not "
            f"available here: {public_text(exc)} Pick another model in the sidebar; the other pages keep working."
        )
        st.stop()


TSNE_TRANSFORM = "t-SNE transform"  # a placement: into a t-SNE layout that stays put (openTSNE's transform)


def place(entry: state.ModelEntry, proj: Projection, n: int, params: dict, codes: np.ndarray):
    """(where new codes go in this view, how they were placed): by the view's own map where it has one;
    in t-SNE, which has none, by openTSNE's transform into the layout on screen, which stays as it is
    (cache.tsne_placed), rather than at the mean of their nearest digits' positions."""
    codes = np.ascontiguousarray(codes, dtype=np.float32)
    if proj.method != "tsne":
        return proj.transform(codes), proj.placement
    key = hashlib.sha1(proj.embedding.tobytes() + codes.tobytes()).hexdigest()
    fit = tuple(sorted((k, v) for k, v in params.items() if k in ("perplexity", "seed")))
    return cache.tsne_placed(entry.fingerprint, entry, n, fit, proj.embedding, codes, key), TSNE_TRANSFORM


def fitted_projection(
    entry: state.ModelEntry, method: str, n: int, params: dict, exact: bool = False
) -> Projection | None:
    """Run (or fetch from cache) the projection; on failure show why and return None.

    exact=True: a projection that maps new points itself where the method can (see cache.projection).
    """
    if entry.config.latent_dim < 2:
        st.warning(
            "This model has a single latent dimension (Z = 1): there is no second axis to plot, "
            "so there is no 2-D scatter. The other pages still work."
        )
        return None
    label = state.PROJECTION_LABELS[method]
    try:
        with st.spinner(f"Running {label} on {n} points (first time only; cached after)…"):
            return cache.projection(entry.fingerprint, entry, method, n, tuple(sorted(params.items())), exact)
    except (LatentLabError, ValueError, RuntimeError, MemoryError) as exc:
        st.error(f"{label} failed on these points: {public_text(exc)}. Try fewer points or another projection.")
        return None


def axis_titles(method: str, params: dict) -> tuple[str, str]:
    if method == "raw":
        d0, d1 = params["dims"]
        return f"μ[{d0}] (latent dim {d0})", f"μ[{d1}] (latent dim {d1})"
    return AXIS_TITLES[method]


def axis_caption(method: str, params: dict) -> str:
    """What the scatter's axes are, said above it (the chart has no axis titles: see show_chart)."""
    x_title, y_title = axis_titles(method, params)
    return f"→ {x_title} · ↑ {y_title}"


def show_chart(where, chart, width: str = "stretch") -> None:
    """Draw an Altair chart (or a spec from vae_core.charts.scatter_spec) on a canvas so that the next
    run's chart, if only its data differ, is redrawn in place rather than rebuilt (see stable_spec)."""
    where.vega_lite_chart(chart if isinstance(chart, dict) else stable_spec(on_canvas(chart)), width=width)


def scatter_frame_for(entry: state.ModelEntry, coords: np.ndarray, n: int, sigma: np.ndarray | None = None):
    """One row per plotted test digit: position, class, test index, tooltip image (digit | reconstruction)."""
    labels = cache.test_labels(entry)
    idx = cache.subset_indices(len(labels), n)
    if n != TOOLTIP_POINTS:  # these hover images are made here, with torch (a bundled model ships 2,000)
        state.engine(say=True)
    frame = scatter_frame(coords, labels[idx], entry.class_names, idx, cache.thumbnails(entry.fingerprint, entry, n))
    if sigma is not None:
        frame["sigma"] = sigma
    return frame


def scatter_chart(entry: state.ModelEntry, proj: Projection, n: int, method: str, params: dict):
    """The scatter of μ with class colours and digit thumbnails in the tooltip."""
    frame = scatter_frame_for(entry, proj.embedding, n)
    return latent_scatter(frame, entry.class_names)


def points_control(key: str = "points") -> int:
    return int(
        st.select_slider(
            "Test digits to plot",
            POINT_CHOICES,
            DEFAULT_POINTS,
            key=key,
            help="More points show more structure; t-SNE and UMAP take longer.",
        )
    )


def as_np(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def download(where, label: str, make: Callable[[], bytes | str], file_name: str, mime: str, key: str | None = None):
    """A download button whose file is made only when clicked: no bytes held per rerun, and no rerun after."""
    where.download_button(label, make, file_name, mime, key=key, on_click="ignore")
