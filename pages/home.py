"""Home: what the app shows and where to start."""

from ui.shell import require_app

require_app()  # before anything is drawn: see ui/shell.py

import streamlit as st

from ui import shell, state, teaching

st.title("latent-lab: what does a VAE learn?")
st.markdown(
    "**What am I looking at?** The start page: what this app shows, and one link per page. "
    "Every page but *VAE vs autoencoder*, which compares two bundled models, works on the model picked in "
    "the sidebar."
)
teaching.expander()
st.markdown(
    "A variational autoencoder squeezes each 28 x 28 digit (784 numbers) into a few latent numbers, "
    "and learns to draw digits back from them. "
    "These pages show that latent space: where each test digit lands, what random points decode to, "
    "and what lies between two digits. "
    "Start with **Latent space** on the bundled model, or train your own on **Train or load a model**."
)
entry = state.current()
st.info(
    f"Current model: **{entry.label}**. Change it, or the 2-D projection, in the sidebar; "
    "the address bar keeps both, so a copied link opens the same view."
)
BLURBS = {  # one link per page, the bundled model's pages first
    "latent": "where each test digit's μ lands; σ, prior draws",
    "samples": "decode z ~ N(0, I); the Z = 2 manifold",
    "interpolate": "linear and slerp paths between two digits",
    "compare": "what the KL term buys",
    "digit": "draw one and see where it lands",
    "dimensions": "traversals; which dimensions are used",
    "train": "your own model, this session only",
}
BY_URL = {page.url: page for page in shell.PAGES}
LINKS = [BY_URL[url] for url in BLURBS]
LINK_PX = 200  # each link and its line: as many a row as fit, so none is cut short on a small screen
with st.container(horizontal=True):
    for page in LINKS:
        with st.container(width=LINK_PX):
            st.page_link(page.file, label=page.title, icon=page.icon)
            st.caption(BLURBS[page.url])
