"""The latent page's layers: μ or sampled z, σ as ellipses or opacity, prior samples, the manifold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from vae_core.charts import ellipse_layer, image_layer, latent_scatter, prior_layer, scatter_spec
from vae_core.errors import LatentLabError
from vae_core.projection import Projection

from . import cache, state, urlstate, views

MAX_ELLIPSES = 400  # outlines beyond this clutter the plot and slow the browser
MANIFOLD_SIDE = 12  # decoded images per axis under a Z = 2 scatter
# The chart's size when the manifold is drawn (it fixes the images' size in data units), with the
# legend below it in rows of five (class names such as Fashion-MNIST's are long): 420 + the axis
# labels fit the plot's column on a 1024-px screen with the sidebar open.
MANIFOLD_PX = 420
PRIOR_CHOICES = [0, 25, 50, 100, 200]
DEFAULT_PAGE_SAMPLES = 64  # the Random samples page's default "How many"
SHOW_MEAN, SHOW_SAMPLED = "its mean μ", "one sampled z ~ N(μ, σ²)"
PRIOR_SEED_OFFSET = 2**31  # draws beyond the Random samples page's n come from a seed that page never uses
PLOT_ERRORS = (LatentLabError, ValueError, RuntimeError, MemoryError)  # a projection or transform that fails
PLACEMENT = {
    "raw": "placed exactly (the same two coordinates)",
    "pca": "placed exactly (the same PCA map)",
    "umap": "placed by the transform of a UMAP fitted on these points, started from the layout without "
    "them so its clusters stay where they were",
    "tsne": "placed into this t-SNE layout, which stays as it is: each cross is moved to where its "
    "nearest digits' affinities put it (openTSNE's transform)",
}


@dataclass(frozen=True)
class Layers:
    """What the reader chose to see on top of the points."""

    sampled: bool  # one z ~ q(z|x) per image instead of its mean
    sigma: bool  # uncertainty: ellipses (raw 2-D) or opacity (projections)
    prior: int  # how many random z ~ N(0, I) to overlay
    manifold: bool  # decoded images under the points (Z = 2, raw view)


def controls(latent_dim: int, method: str, autoencoder: bool = False) -> Layers:
    """autoencoder: a plain one gives each image one code and no σ, so there is nothing to sample or show."""
    if autoencoder:
        sampled = sigma = False
    else:
        sampled = st.radio("Each image is drawn at", [SHOW_MEAN, SHOW_SAMPLED], key="show") == SHOW_SAMPLED
        sigma = st.toggle(
            "Show σ",
            key="sigma",
            help="The encoder's uncertainty about each image: a 1σ ellipse around μ in the raw view, "
            "fainter points for larger σ in a projection.",
        )
    prior = st.select_slider(
        "Overlay random z ~ N(0, I)",
        PRIOR_CHOICES,
        0,
        key="prior_n",
        help="The first draws of the Random samples page (its number, seed and temperature).",
    )
    manifold = (
        latent_dim == 2
        and method == "raw"
        and st.toggle(
            "Decoded map",
            key="manifold",
            help="Underneath the points: what the decoder draws for a regular grid of z over the view.",
        )
    )
    return Layers(sampled, sigma, prior, manifold)


SHOW_CODES = {"mean": SHOW_MEAN, "sampled": SHOW_SAMPLED}  # the radio's choices as short URL values


def _show(raw: str) -> str:
    if raw not in SHOW_CODES:
        raise ValueError(raw)
    return SHOW_CODES[raw]


def _flag(raw: str) -> bool:
    if raw not in ("0", "1"):
        raise ValueError(raw)
    return raw == "1"


# URL key -> (how to parse it, the widget's session key, which values the widget accepts given Z)
URL_FIELDS = {
    "points": (int, "points", lambda v, z: v in views.POINT_CHOICES),
    "prior": (int, "prior_n", lambda v, z: v in PRIOR_CHOICES),
    "show": (_show, "show", lambda v, z: True),
    "sigma": (_flag, "sigma", lambda v, z: True),
    "manifold": (_flag, "manifold", lambda v, z: True),
    "x": (int, "dim_x", lambda v, z: 0 <= v < z),
    "y": (int, "dim_y", lambda v, z: 0 <= v < z),
    "perplexity": (int, "perp", lambda v, z: 5 <= v <= 100),
    "n_neighbors": (int, "nn", lambda v, z: 2 <= v <= 100),
    "min_dist": (float, "md", lambda v, z: 0.0 <= v <= 0.99),
}


def restore_url(latent_dim: int) -> None:
    """Before the controls are drawn: a shared link's settings, where the widgets accept them."""
    url = urlstate.restore({key: parse for key, (parse, _, _) in URL_FIELDS.items()})
    for key, value in url.items():
        _, widget, accepts = URL_FIELDS[key]
        if accepts(value, latent_dim):
            st.session_state[widget] = round(value, 2) if isinstance(value, float) else value
            if widget in ("dim_x", "dim_y"):
                st.session_state[views.AXES_FROM_URL] = True  # the link's axes, for the link's model


def publish_url(n: int, params: dict, layers: Layers) -> None:
    """This view's settings into the URL (the sidebar adds model and projection)."""
    values = {"points": n, "prior": layers.prior, "show": "sampled" if layers.sampled else "mean"}
    values |= {"sigma": int(layers.sigma), "manifold": int(layers.manifold)}
    values |= {k: v for k, v in params.items() if k != "dims"}
    if "dims" in params:
        values |= dict(zip(("x", "y"), params["dims"], strict=True))
    urlstate.publish(values)


def needs_exact(method: str, layers: Layers) -> bool:
    """UMAP's shipped layout has no transform: the prior overlay needs a UMAP fitted here."""
    return method == "umap" and layers.prior > 0


def describe(layers: Layers, method: str, placement: str) -> str:
    what = "one random draw z = μ + σ·ε per image" if layers.sampled else "each image's mean μ"
    parts = [f"On screen: {what}."]
    if layers.sampled and placement != "exact":
        parts.append("The draws are placed by their nearest digits' positions (this view cannot map new points).")
    if layers.sigma:
        parts.append(
            f"Outlines are 1σ ellipses around each μ (first {MAX_ELLIPSES} points)."
            if method == "raw"
            else "Fainter points have larger σ."
        )
    if layers.manifold:
        parts.append(
            "Underneath: the decoder's image for a regular grid of z over the view, which then is a square "
            "from the 1st to the 99th percentile of both coordinates of μ together: a few percent of the "
            "points lie off its edge."
        )
    if layers.prior:
        parts.append(
            f"Black crosses: {layers.prior} random z ~ N(0, I) from the Random samples page, "
            f"{PLACEMENT[method]}; hover to see what each decodes to."
        )
    return " ".join(parts)


def chart(entry: state.ModelEntry, proj: Projection, n: int, method: str, params: dict, layers: Layers):
    """The layered chart (or the plain scatter's spec) and the frame of plotted points (for the CSV)."""
    state.engine(say=True)  # the layers use torch; the plain view of a bundled model does not (switch_view)
    from vae_core.analysis import ELLIPSE_VERTICES, sample_posterior, sigma_ellipses
    from vae_core.images import thumbnail_urls

    mu, logvar = cache.latents(entry.fingerprint, entry)
    idx = cache.subset_indices(len(mu), n)
    prior_z = prior_codes(entry.config.latent_dim, layers.prior) if layers.prior else None
    view, prior_xy = _with_prior(entry, proj, n, params, prior_z)
    coords = view.transform(sample_posterior(mu[idx], logvar[idx])) if layers.sampled else view.embedding
    sigma = np.exp(0.5 * logvar[idx])
    frame = views.scatter_frame_for(entry, coords, n, sigma.mean(1) if layers.sigma and method != "raw" else None)
    domain = _square_domain(mu) if layers.manifold else None
    if not (layers.manifold or (layers.sigma and method == "raw") or prior_z is not None):  # one layer: cached spec
        return scatter_spec(frame, entry.class_names), frame
    layered = latent_scatter(frame, entry.class_names, domain=domain)
    if layers.manifold:
        layered = (_manifold(entry, domain) + layered).properties(width=MANIFOLD_PX, height=MANIFOLD_PX)
    if layers.sigma and method == "raw":
        k = min(MAX_ELLIPSES, len(idx))
        # q(z|x) is centred on μ: the ellipse stays there even when the dot is a sampled z
        outlines = sigma_ellipses(view.embedding[:k], sigma[:k][:, list(params["dims"])])
        layered = layered + ellipse_layer(outlines, list(frame["class"][:k]), entry.class_names, ELLIPSE_VERTICES)
    if prior_z is not None:
        layered = layered + prior_layer(prior_xy, thumbnail_urls(cache.decode_np(entry, prior_z)))
    if layers.manifold:
        # The plot itself MANIFOLD_PX square ("pad": Streamlit's default "fit" would squeeze the axes
        # and the legend into that size, and the square grid of images with them), the legend below it.
        layered = layered.configure_legend(orient="bottom", columns=5).properties(autosize={"type": "pad"})
        layered = _clipped(layered)  # the view covers the bulk of μ: nothing may be drawn past its frame
    return layered, frame


def _clipped(part):
    """The same (layered) chart with every mark clipped to the plot's frame."""
    import altair as alt

    if isinstance(getattr(part, "layer", None), list):
        part.layer = [_clipped(p) for p in part.layer]
        return part
    mark = part.mark
    part.mark = alt.MarkDef(type=mark, clip=True) if isinstance(mark, str) else mark.copy(deep=False)
    part.mark.clip = True
    return part


def safe_chart(entry: state.ModelEntry, proj: Projection, n: int, method: str, params: dict, layers: Layers):
    """chart(), or None after an st.error saying what failed, so the rest of the page keeps working."""
    try:
        return chart(entry, proj, n, method, params, layers)
    except PLOT_ERRORS as exc:
        st.error(
            f"Drawing this view failed: {exc}. Turn off the sampled z or the random z overlay, "
            "or try fewer points or another projection."
        )
        return None


def prior_codes(latent_dim: int, k: int) -> np.ndarray:
    """The first k draws of the Random samples page (its n, seed and temperature), (k, Z).

    torch's randn for a shorter n is not a prefix of a longer one, so the page's own n is drawn;
    any crosses beyond it come from a seed the page never uses.
    """
    state.engine()
    import torch

    from vae_core.latents import sample_prior

    seed = int(st.session_state.get(state.SAMPLE_SEED, 0))
    temperature = float(st.session_state.get(state.TEMPERATURE, 1.0))
    n_page = int(st.session_state.get(state.SAMPLE_N, DEFAULT_PAGE_SAMPLES))
    z = sample_prior(n_page, latent_dim, seed, temperature)[:k]
    if k > n_page:
        z = torch.cat([z, sample_prior(k - n_page, latent_dim, seed + PRIOR_SEED_OFFSET, temperature)])
    return z.numpy()


def _with_prior(entry: state.ModelEntry, proj: Projection, n: int, params: dict, prior_z: np.ndarray | None):
    """The view the points are drawn in and the prior codes' places in it (both from one fit)."""
    if prior_z is None:
        return proj, None
    placed, _ = views.place(entry, proj, n, params, prior_z)
    return proj, placed


def _square_domain(mu: np.ndarray) -> tuple[float, float]:
    """A square view over the bulk of the data (1st to 99th percentile), so images tile it."""
    lo, hi = np.percentile(mu[:, :2], [1, 99])
    return float(lo), float(hi)


def _manifold(entry: state.ModelEntry, domain: tuple[float, float]):
    """A regular grid of codes over the view, each decoded and drawn where it sits."""
    from vae_core.images import thumbnail_urls

    lo, hi = domain
    step = (hi - lo) / MANIFOLD_SIDE
    axis = lo + step * (np.arange(MANIFOLD_SIDE) + 0.5)
    z = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2).astype(np.float32)
    return image_layer(z, thumbnail_urls(cache.decode_np(entry, z)), size_px=int(0.8 * MANIFOLD_PX / MANIFOLD_SIDE))
