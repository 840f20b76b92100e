"""Random samples: z ~ N(0, I) decoded in one batch; for Z = 2, the latent manifold."""

from ui.shell import require_app

require_app()  # before anything is drawn: see ui/shell.py

import math
from functools import partial

import streamlit as st
import torch

from ui import cache, state, teaching, urlstate, views
from vae_core.errors import LatentLabError
from vae_core.images import to_pil_grid, to_png_bytes
from vae_core.latents import latent_grid, sample_prior

SAMPLE_CHOICES = [16, 36, 64, 100, 144, 225, 400]

st.title("Random samples")
st.markdown(
    "**What am I looking at?** Images the decoder draws from random points z ~ N(0, I). "
    "No image went in: the encoder, and with it μ and σ, is bypassed entirely."
)

teaching.expander()

entry = state.current()
views.undertrained_warning(entry)
cfg = entry.model.config
c1, c2, c3 = st.columns(3)
url = urlstate.restore({"n": int, "seed": int, "t": float})
if url.get("n") in SAMPLE_CHOICES:
    st.session_state[state.SAMPLE_N] = url["n"]
if 0 <= url.get("seed", -1) < 2**31:
    st.session_state[state.SAMPLE_SEED] = url["seed"]
if 0.1 <= url.get("t", -1.0) <= 2.0:  # at 0 every draw would be z = 0: one image, n times
    st.session_state[state.TEMPERATURE] = round(url["t"], 1)
n = c1.select_slider("How many", SAMPLE_CHOICES, 64, key=state.SAMPLE_N, persist_state="session")
seed = c2.number_input(
    "Seed", 0, 2**31 - 1, 0, key=state.SAMPLE_SEED, help="Same seed, same images.", persist_state="session"
)
temperature = c3.slider(
    "Temperature (scale of z)",
    0.1,
    2.0,
    1.0,
    0.1,
    key=state.TEMPERATURE,
    persist_state="session",
    help="z = temperature x N(0, I): below 1 stays near the centre, above 1 reaches the edges.",
)
urlstate.publish({"n": n, "seed": seed, "t": temperature})
urlstate.link_box()

z = sample_prior(n, cfg.latent_dim, int(seed), temperature)
images = cache.decode_np(entry, z.numpy())
scale = max(1, 56 // cfg.image_shape[0])
grid = to_pil_grid(images, nrow=int(math.sqrt(n)), scale=scale)
left, right = st.columns([2, 1])
left.image(grid, caption=f"{n} decoded draws of z ~ N(0, {temperature:g}² I), seed {seed}, {entry.label}")
views.download(left, "Download grid (PNG)", partial(to_png_bytes, grid), "samples.png", "image/png")
neighbours = None
if left.toggle("Beside each sample, its nearest training image (pixel distance)", key="nearest"):
    with st.spinner("Searching the training set…"):
        try:
            neighbours, source = cache.nearest_training_images(entry.dataset, images)
        except LatentLabError as exc:
            left.warning(
                f"Neither the training set nor the test split of {entry.dataset!r} can be had here, so there "
                f"is nothing to compare the samples with ({views.public_text(exc)}). The grid above is unaffected."
            )
if neighbours is not None:
    # Each pair one tile (sample, a 1-px grey line, its neighbour), the tiles apart as in the grid above:
    # sixteen equal tiles a row read as one grid, with no telling where a pair ends.
    line = torch.full((*images.shape[:3], 1), 0.5)
    pairs = torch.cat([images, line, neighbours], dim=3)
    side = int(math.sqrt(n))
    paired = to_pil_grid(pairs, nrow=side, scale=scale)
    if source == cache.TRAINING_SET:
        verdict = "Close copies would mean memorising; different strokes mean the model generates."
    else:  # the model never saw these images, so a close match says nothing about memorising
        verdict = (
            "The memorisation check is not possible here: the model never trained on these images, so this "
            "only shows the closest test digit to each sample."
        )
    left.image(paired, caption=f"Pairs: generated sample, then the closest image in the {source}. {verdict}")
    views.download(left, "Download pairs (PNG)", partial(to_png_bytes, paired), "samples-nearest.png", "image/png")
with right:
    st.markdown("#### Why do random points look like digits?")
    st.markdown(
        "Training adds a KL term that pulls every image's Gaussian toward N(0, I). The codes of "
        "all training images together then fill N(0, I) without large holes, so a random draw "
        "usually lands where the decoder has learned to draw something digit-like. Blurry or "
        "in-between images come from the gaps."
    )
    if cfg.kind == "ae":
        st.warning(
            "This is a plain autoencoder: no KL term, so nothing makes its codes fill N(0, I). "
            "Expect many random draws to decode to blots."
        )

if cfg.latent_dim == 2:
    st.subheader("The latent manifold")
    side = st.slider("Grid size", 5, 30, 15, key="manifold_side")
    manifold = to_pil_grid(cache.decode_np(entry, latent_grid(side).numpy()), nrow=side, scale=scale)
    m_left, m_right = st.columns([2, 1])
    m_left.image(
        manifold,
        caption=f"Decoded z on a {side} x {side} grid of N(0, 1) quantiles (z[0] left to right, z[1] bottom to top)",
    )
    views.download(m_left, "Download manifold (PNG)", partial(to_png_bytes, manifold), "manifold.png", "image/png")
    m_right.markdown(
        "With Z = 2 the whole latent space fits on screen. Each tile decodes a point at "
        "evenly spaced quantiles of N(0, 1), so equal areas of the prior get equal room, as "
        "in Kingma & Welling's figure. Neighbouring tiles change smoothly: that is the "
        "continuity the KL term buys."
    )
