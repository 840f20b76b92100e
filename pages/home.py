"""Home: what the app shows and where to start."""

from ui.shell import require_app

require_app()  # before anything is drawn: see ui/shell.py

import streamlit as st

from ui import state, teaching

st.title("latent-lab: what does a VAE learn?")
st.markdown(
    "**What am I looking at?** The start page: what this app shows, and one link per page. "
    "Every page works on the model picked in the sidebar."
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
PAGES = [
    ("pages/latent.py", "Latent space", ":material/scatter_plot:", "where each test digit's μ lands; σ, prior draws"),
    ("pages/samples.py", "Random samples", ":material/casino:", "decode z ~ N(0, I); the Z = 2 manifold"),
    ("pages/interpolate.py", "Interpolation", ":material/swap_horiz:", "linear and slerp paths between two digits"),
    ("pages/compare.py", "VAE vs autoencoder", ":material/compare:", "what the KL term buys"),
    ("pages/digit.py", "Your own digit", ":material/draw:", "draw one and see where it lands"),
    ("pages/dimensions.py", "Latent dimensions", ":material/tune:", "traversals; which dimensions are used"),
    ("pages/train.py", "Train or load a model", ":material/model_training:", "your own model, this session only"),
]
for row in range(0, len(PAGES), 4):
    for col, (path, label, icon, blurb) in zip(st.columns(4), PAGES[row : row + 4], strict=False):
        col.page_link(path, label=label, icon=icon)
        col.caption(blurb)
