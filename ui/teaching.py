"""Teaching text shared by the pages: short, correct, in plain words."""

from __future__ import annotations

import streamlit as st

PROJECTION_TEXT = {
    "raw": "**Raw**: two coordinates of μ, unchanged, so distances along them are real.",
    "pca": "**PCA**: the two directions along which the means vary most; a rotation, then the rest "
    "is flattened away. Straight lines stay straight and big distances are roughly kept; points "
    "that differ only in the hidden directions land on top of each other.",
    "tsne": "**t-SNE**: places points so that each one keeps its nearest neighbours. Clusters are "
    "real, but their sizes and the distances *between* clusters mean little.",
    "umap": "**UMAP**: like t-SNE, keeps neighbourhoods, and keeps somewhat more of the global layout. "
    "Distances are still not to scale.",
}


def projection_text(method: str, latent_dim: int) -> str:
    text = PROJECTION_TEXT[method]
    if method == "raw":
        hidden = latent_dim - 2
        text += (
            " With Z = 2 that is the whole latent space."
            if hidden <= 0
            else (f" With Z = {latent_dim}, the other {hidden} dimensions are not shown.")
        )
    return text


LONG_ANSWER = """
**μ and σ.** The encoder does not output a point. For each image it outputs a Gaussian over the
latent space: a mean vector **μ** and a standard deviation vector **σ** (the network predicts
log σ²). So with Z latent dimensions it gives **2Z numbers** per image.

**Why a dot has only Z coordinates.** A position needs Z numbers; μ is the natural choice, the
centre of where the encoder thinks the image belongs. σ is a width, not a place: it can be drawn
as an ellipse or a fainter dot, but not as a second position. The scatter here plots μ (or, if
you choose, one random draw from N(μ, σ²)), never both at once.

**From Z to two dimensions.** With Z = 2 nothing is lost. With Z > 2 you either look at two
chosen dimensions (raw), or project: PCA keeps the largest-variance directions and distances
along them; t-SNE and UMAP keep who is near whom, and distort sizes and gaps between clusters,
so *distances between t-SNE clusters mean little*.

**Why random z decode to digits.** The loss adds a KL term, KL(N(μ, σ²) ‖ N(0, I)), per image. It
pulls every image's Gaussian toward the standard normal, so together the codes of all images
(the *aggregate posterior*) fill N(0, I) without large empty regions. A random z ~ N(0, I) then
usually lands somewhere the decoder has learned to draw a digit. A plain autoencoder has no such
term, and its codes leave most of N(0, I) empty.

**What slerp is for.** In Z dimensions, typical draws from N(0, I) have length about √Z. A straight
line between two codes passes closer to the origin than either end, through codes the decoder
rarely saw; spherical interpolation (slerp) walks along the sphere and keeps a typical length.
"""


def expander() -> None:
    with st.expander("The longer answer: μ, σ, projections, and why random z decode to digits"):
        st.markdown(LONG_ANSWER)
