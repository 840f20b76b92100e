"""Latent dimensions: what each one does (traversals), and which ones the model uses at all (KL)."""

from ui.shell import require_app

require_app()  # before anything is drawn: see ui/shell.py

from functools import partial

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
import torch

from ui import cache, state, teaching, urlstate, views
from vae_core.analysis import ACTIVE_KL_NATS, kl_per_dimension, traversal_codes
from vae_core.images import label_rows, to_pil_grid, to_png_bytes
from vae_core.projection import dimension_order

MAX_ROWS = 20  # dimensions shown as traversals, most informative first

entry = state.current()
autoencoder = entry.config.kind == "ae"  # no KL term and a fixed σ: its "KL" would mean nothing
st.title("Latent dimensions")
st.markdown(
    "**What am I looking at?** Each row changes one latent dimension of a chosen digit's μ and keeps "
    "the others fixed; rows are ordered by "
    + (
        "how much μ varies along the dimension."
        if autoencoder
        else "how much information the dimension carries (its average KL)."
    )
)
teaching.expander()
views.undertrained_warning(entry)

data = views.require_test_data(entry)  # first: the latents need it too, and this stops cleanly
mu, logvar = cache.latents(entry.fingerprint, entry)
kl = kl_per_dimension(mu, logvar)
order = dimension_order(mu, logvar, autoencoder)  # the raw view opens on the first two

url = urlstate.restore({"digit": int, "steps": int})
if 0 <= url.get("digit", -1) < len(data):
    st.session_state["trav_digit"] = url["digit"]
if 5 <= url.get("steps", 0) <= 15:
    st.session_state["trav_steps"] = url["steps"]
c1, c2 = st.columns(2)
digit = int(c1.number_input("Base digit (test index)", 0, len(data) - 1, 0, key="trav_digit"))
steps = c2.slider("Steps per row", 5, 15, 9, key="trav_steps")
urlstate.publish({"digit": digit, "steps": steps})
urlstate.link_box()

active = kl > ACTIVE_KL_NATS


def kl_bars(kl: np.ndarray, order: np.ndarray, active: np.ndarray):
    """Each dimension's average KL, largest first, coloured active or collapsed."""
    frame = pd.DataFrame(
        {
            "dimension": [f"z{j}" for j in order],
            "KL": kl[order],
            "status": np.where(active[order], "active", "inactive (collapsed)"),
        }
    )
    status = alt.Scale(domain=["active", "inactive (collapsed)"], range=["#4c78a8", "#bbbbbb"])
    return (
        alt.Chart(frame, height=160)
        .mark_bar()
        .encode(
            # An explicit order, not sort=None: Streamlit updates a chart in place when the model changes,
            # and with sort=None Vega kept the previous model's order for the names they share.
            x=alt.X("dimension:N", sort=list(frame["dimension"])),
            y=alt.Y("KL:Q", title="KL (nats)"),
            color=alt.Color("status:N", scale=status),
            tooltip=["dimension", alt.Tooltip("KL:Q", format=".3f"), "status"],
        )
    )


if autoencoder:
    st.info(
        "This is a plain autoencoder: it has no KL term and no σ, so no dimension is 'active' or "
        "'collapsed' in the VAE's sense. Its rows are ordered by how much μ varies across the test digits."
    )
else:
    st.altair_chart(kl_bars(kl, order, active), width="stretch")
    st.caption(f"{int(active.sum())} of {len(kl)} dimensions are active (average KL above {ACTIVE_KL_NATS} nats).")

scale = max(1, 64 // entry.model.config.image_shape[0])  # MNIST: 56-pixel tiles, legible on a projector
spread = 0.0 if autoencoder else 1.0  # a VAE's unused dimension is swept over the prior's ±2 too
codes = [traversal_codes(mu[digit], int(j), mu, steps, min_spread=spread) for j in order[:MAX_ROWS]]
rows = [cache.decode_np(entry, c) for c in codes]
left, right = st.columns([2, 1])
with left:
    if autoencoder:
        labels = [f"z{j} · std {mu[:, j].std():.2f}" for j in order[:MAX_ROWS]]
        what = "the spread (standard deviation) of μ along it over the test digits"
    else:
        labels = [f"z{j} · KL {kl[j]:.2f}{'' if active[j] else ' · off'}" for j in order[:MAX_ROWS]]
        what = f"its average KL in nats ('off': inactive, below {ACTIVE_KL_NATS})"
    tile_px = entry.model.config.image_shape[0]
    grid = label_rows(to_pil_grid(torch.cat(rows), nrow=steps, scale=scale), labels, tile_px, scale)
    st.image(grid, caption=f"Each row: the dimension it moves and {what}.")
    views.download(st, "Download traversals (PNG)", partial(to_png_bytes, grid), "traversals.png", "image/png")
with right:
    st.markdown("#### How to read a row")
    st.markdown(
        f"Row *z_j* starts from the μ of test digit #{digit} and moves only *z_j*, from its data mean − 2 "
        "standard deviations to + 2 (the range the encoder actually uses"
        + ("" if autoencoder else "; at least ±2, the prior's range")
        + "). The other dimensions stay put."
    )
    if not autoencoder:
        st.markdown("#### Inactive dimensions")
        st.markdown(
            "A dimension whose KL is near zero has q(z_j|x) ≈ N(0, 1) for every image: the encoder ignores "
            "it and the decoder learns to ignore it too (*posterior collapse*). Its row is swept as far as "
            "the prior reaches and still does not change. The KL term makes unused dimensions cheap to "
            "switch off; a larger β switches off more (an MNIST model with Z = 20 and β = 4 switched off 7 of its 20 "
            "after 5 epochs)."
        )
