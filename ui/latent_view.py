"""The latent page's layers: μ or sampled z, σ as ellipses or opacity, prior samples, the manifold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from vae_core.analysis import ELLIPSE_VERTICES, sample_posterior, sigma_ellipses
from vae_core.charts import ellipse_layer, image_layer, latent_scatter, prior_layer
from vae_core.images import thumbnail_urls
from vae_core.latents import sample_prior
from vae_core.projection import Projection

from . import cache, state, views

MAX_ELLIPSES = 400  # outlines beyond this clutter the plot and slow the browser
MANIFOLD_SIDE = 12  # decoded images per axis under a Z = 2 scatter
MANIFOLD_PX = 520  # the chart's size when the manifold is drawn: fixes the image size in data units
PRIOR_CHOICES = [0, 25, 50, 100, 200]


@dataclass(frozen=True)
class Layers:
    """What the reader chose to see on top of the points."""

    sampled: bool  # one z ~ q(z|x) per image instead of its mean
    sigma: bool  # uncertainty: ellipses (raw 2-D) or opacity (projections)
    prior: int  # how many random z ~ N(0, I) to overlay
    manifold: bool  # decoded images under the points (Z = 2, raw view)


def controls(latent_dim: int, method: str) -> Layers:
    sampled = st.radio("Each image is drawn at", ["its mean μ", "one sampled z ~ N(μ, σ²)"], key="show") != "its mean μ"
    sigma = st.toggle("Show σ (the encoder's uncertainty)", key="sigma")
    prior = st.select_slider(
        "Overlay random z ~ N(0, I)",
        PRIOR_CHOICES,
        0,
        key="prior_n",
        help="The same draws as the Random samples page (its seed and temperature).",
    )
    manifold = latent_dim == 2 and method == "raw" and st.toggle("Decoded images underneath", key="manifold")
    return Layers(sampled, sigma, prior, manifold)


def describe(layers: Layers, method: str) -> str:
    what = "one random draw z = μ + σ·ε per image" if layers.sampled else "each image's mean μ"
    parts = [f"On screen: {what}."]
    if layers.sigma:
        parts.append(
            f"Outlines are 1σ ellipses (first {MAX_ELLIPSES} points)."
            if method == "raw"
            else "Fainter points have larger σ."
        )
    if layers.manifold:
        parts.append("Underneath: the decoder's image for a regular grid of z over the view.")
    if layers.prior:
        parts.append(f"Black crosses: {layers.prior} random z ~ N(0, I); hover to see what each decodes to.")
    return " ".join(parts)


def chart(entry: state.ModelEntry, proj: Projection, n: int, method: str, params: dict, layers: Layers):
    """The layered chart and the frame of plotted points (for the CSV download)."""
    mu, logvar = cache.latents(entry.fingerprint, entry)
    idx = cache.subset_indices(len(mu), n)
    coords = proj.transform(sample_posterior(mu[idx], logvar[idx])) if layers.sampled else proj.embedding
    sigma = np.exp(0.5 * logvar[idx])
    frame = views.scatter_frame_for(entry, coords, n, sigma.mean(1) if layers.sigma and method != "raw" else None)
    domain = _square_domain(mu) if layers.manifold else None
    layered = latent_scatter(frame, *views.axis_titles(method, params), entry.class_names, domain=domain)
    if layers.manifold:
        layered = (_manifold(entry, domain) + layered).properties(width=MANIFOLD_PX, height=MANIFOLD_PX)
    if layers.sigma and method == "raw":
        dims = list(params["dims"])
        k = min(MAX_ELLIPSES, len(idx))
        outlines = sigma_ellipses(coords[:k], sigma[:k][:, dims])
        layered = layered + ellipse_layer(outlines, list(frame["class"][:k]), entry.class_names, ELLIPSE_VERTICES)
    if layers.prior:
        layered = layered + _prior(entry, proj, n, method, params, layers.prior)
    return layered, frame


def _prior(entry: state.ModelEntry, proj: Projection, n: int, method: str, params: dict, k: int):
    seed, temperature = st.session_state.get("sample_seed", 0), st.session_state.get("temperature", 1.0)
    z = sample_prior(k, entry.model.config.latent_dim, int(seed), float(temperature)).numpy()
    if method == "tsne":
        key = f"{seed}-{temperature}-{k}"
        _, coords = cache.joint_tsne(entry.fingerprint, entry, n, tuple(sorted(params.items())), z, key)
    else:
        coords = proj.transform(z)
    return prior_layer(coords, thumbnail_urls(cache.decode_np(entry, z)))


def _square_domain(mu: np.ndarray) -> tuple[float, float]:
    """A square view over the bulk of the data (1st to 99th percentile), so images tile it."""
    lo, hi = np.percentile(mu[:, :2], [1, 99])
    return float(lo), float(hi)


def _manifold(entry: state.ModelEntry, domain: tuple[float, float]):
    """A regular grid of codes over the view, each decoded and drawn where it sits."""
    lo, hi = domain
    step = (hi - lo) / MANIFOLD_SIDE
    axis = lo + step * (np.arange(MANIFOLD_SIDE) + 0.5)
    z = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2).astype(np.float32)
    return image_layer(z, thumbnail_urls(cache.decode_np(entry, z)), size_px=int(0.8 * MANIFOLD_PX / MANIFOLD_SIDE))
