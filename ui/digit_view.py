"""Your own digit: from bytes (drawn or uploaded) to μ, σ, reconstruction and nearest test digits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch
from PIL import Image

from vae_core.analysis import sigma_ellipses
from vae_core.charts import ellipse_layer, yours_layer
from vae_core.digit_image import MNIST_FILL, PreprocessStep, preprocess_steps
from vae_core.images import to_pil_grid, to_png_bytes

from . import cache, state, views

NEAREST_K = 8  # test digits shown as the drawn digit's neighbours in latent space
CANVAS_PX = 280  # ten screen pixels per MNIST pixel
STRIP_HEIGHT = 112  # pixels per step in the downloaded preprocessing strip: four per MNIST pixel
STRIP_GAP = 8  # grey pixels between two steps: white-on-black and black-on-white steps both stand out
LAST_STEPS = "_digit_steps"  # session state: (key, steps) of the last image preprocessed


@dataclass
class Encoded:
    image: torch.Tensor  # (1, 1, H, W) the model's input
    mu: np.ndarray  # (Z,)
    sigma: np.ndarray  # (Z,)
    recon: torch.Tensor  # (1, 1, H, W)


def fill_for(entry: state.ModelEntry) -> float:
    """scikit-learn's 8 x 8 digits fill their canvas; MNIST digits sit in a 20 x 20 box of 28 x 28."""
    return 1.0 if entry.dataset == "digits" else MNIST_FILL


def steps_for(entry: state.ModelEntry, data: bytes):
    """The preprocessing steps for this image and model, kept for the session's last image: a large
    photo takes about a second to decode, and every widget change reruns the page."""
    key = (hashlib.sha256(data).hexdigest(), tuple(entry.model.config.image_shape), fill_for(entry))
    kept = st.session_state.get(LAST_STEPS)
    if kept is None or kept[0] != key:
        kept = st.session_state[LAST_STEPS] = (key, preprocess_steps(data, key[1], fill=key[2]))
    return kept[1]


def steps_png(steps: list[PreprocessStep]) -> bytes:
    """Every preprocessing step side by side at one height, as PNG bytes (made on click)."""
    tiles = [_strip_tile(step.image) for step in steps]
    strip = Image.new("RGB", (sum(t.width for t in tiles) + STRIP_GAP * (len(tiles) - 1), STRIP_HEIGHT), "gray")
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width + STRIP_GAP
    return to_png_bytes(strip)


def _strip_tile(image: Image.Image) -> Image.Image:
    # Nearest-neighbour when enlarging keeps the 28 x 28 pixels visible; steps differ in size and mode.
    width = max(1, round(image.width * STRIP_HEIGHT / image.height))
    resample = Image.NEAREST if image.height <= STRIP_HEIGHT else Image.LANCZOS
    rgba = image.convert("RGBA").resize((width, STRIP_HEIGHT), resample)
    tile = Image.new("RGB", rgba.size, "white")
    tile.paste(rgba, mask=rgba.getchannel("A"))  # a transparent drawing shows on white, as on screen
    return tile


@torch.no_grad()
def encode(entry: state.ModelEntry, final_step) -> Encoded:
    array = np.asarray(final_step.image, dtype=np.float32) / 255.0
    image = torch.from_numpy(array)[None, None]
    mu, logvar = entry.model.encode(image)
    return Encoded(image, mu[0].numpy(), torch.exp(0.5 * logvar[0]).numpy(), entry.model.decode(mu))


def input_and_reconstruction(enc: Encoded, scale: int) -> Image.Image:
    """The model's input beside its reconstruction from μ, as one image."""
    return to_pil_grid(torch.cat([enc.image, enc.recon]), nrow=2, scale=scale)


def nearest_test_digits(entry: state.ModelEntry, mu: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """The test digits whose μ are closest to this one's: images (K, 1, H, W) and test indices."""
    data = views.require_test_data(entry)  # first: the latents need it too, and this stops cleanly
    all_mu, _ = cache.latents(entry.fingerprint, entry)
    d = np.linalg.norm(all_mu - mu[None, :], axis=1)
    idx = np.argsort(d)[:NEAREST_K]
    return data.as_float()[idx], idx


def map_chart(entry: state.ModelEntry, method: str, params: dict, n: int, enc: Encoded):
    """(chart, placement, what the outline is): the test digits' scatter with your digit's μ (a cross)
    and, in the raw view, its 1σ ellipse, whose size the text gives (often smaller than the cross)."""
    proj = views.fitted_projection(entry, method, n, params)
    if proj is None:
        return None, "", ""
    point, placement = views.place(entry, proj, n, params, enc.mu[None, :])
    chart = views.scatter_chart(entry, proj, n, method, params)
    note = ""
    if method == "raw":
        dims = list(params["dims"])
        sigma = enc.sigma[dims]
        outline = sigma_ellipses(point, sigma[None])
        chart = chart + ellipse_layer(outline, ["yours"], ["yours"], len(outline), color="black")
        # The cross is about 1/30 of a 520-px plot across; the axes span about the points' range.
        spread = proj.embedding.max(0) - proj.embedding.min(0)
        hidden = bool(np.all(sigma < spread / 60))
        note = f"; the black outline is its 1σ ellipse (σ = {sigma[0]:.2f} by {sigma[1]:.2f})" + (
            ", hidden under the cross at this size: the encoder is sure where your digit goes." if hidden else "."
        )
    return chart + yours_layer(point), placement, note


def sigma_text(mean_sigma: float, entry: state.ModelEntry) -> str:
    """The uploaded digit's mean σ beside the test digits' typical one: a bare 0.16 says nothing about
    whether the encoder is sure (for the bundled Z = 2 model the test digits' median is 0.03)."""
    if entry.config.kind == "ae":
        return "an autoencoder has no σ: it gives each image one point, however unsure it is"
    _, logvar = cache.latents(entry.fingerprint, entry)
    typical = float(np.median(np.exp(0.5 * logvar).mean(1)))
    return (
        f"mean σ = {mean_sigma:.2f}, against a median of {typical:.2f} for the test digits (a larger σ means "
        "the encoder is less sure about this image)"
    )
