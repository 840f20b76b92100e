"""Teaching text shared by the pages: short, correct, in plain words."""

from __future__ import annotations

import streamlit as st

LARGE_Z = 10  # from here on, |z| of prior draws concentrates near √Z (its spread stays about 0.7)

PROJECTION_TEXT = {
    "raw": "**Raw**: two coordinates of μ, unchanged, so distances along them are real.",
    "pca": "**PCA**: the two directions along which the means vary most; a rotation, then the other "
    "directions are dropped. Straight lines stay straight, but distances can only shrink: points that "
    "differ only in the dropped directions land on top of each other.",
    "tsne": "**t-SNE**: places points so that each one keeps its nearest neighbours. Tight groups usually "
    "reflect real neighbours; distances between clusters and cluster sizes mean little, and it can split "
    "or merge groups.",
    "umap": "**UMAP**: like t-SNE, keeps neighbourhoods, and keeps somewhat more of the global layout. "
    "Distances and cluster sizes are still not to scale.",
}


def projection_text(method: str, latent_dim: int, fitted: dict | None = None) -> str:
    """What the view keeps and distorts; `fitted` is the projection's params (PCA's explained variance)."""
    text = PROJECTION_TEXT[method]
    if method == "raw":
        hidden = latent_dim - 2
        text += (
            " With Z = 2 that is the whole latent space."
            if hidden <= 0
            else (
                f" With Z = {latent_dim}, the other {hidden} dimensions are not shown. It opens on the two "
                "that carry the most information; Latent dimensions ranks them all."
            )
        )
    ratio = (fitted or {}).get("explained_variance_ratio")
    if method == "pca" and latent_dim <= 2:  # nothing to drop: the view is the raw one, turned
        text = (
            f"**PCA**: with Z = {latent_dim} there is nothing to drop. PCA centres the means and turns (or "
            "mirrors) them so that the first axis follows the direction along which they vary most, so "
            "distances are exactly the raw view's; only the axes differ."
        )
        if ratio:
            text += f" PC 1 holds {ratio[0]:.0%} of the variance."
    elif method == "pca" and ratio:
        shares = ", ".join(f"PC {i + 1} {r:.0%}" for i, r in enumerate(ratio))
        text += (
            f" Here the two axes hold {sum(ratio):.0%} of the variance of the means ({shares}); the rest is dropped."
        )
    return text


def slerp_text(latent_dim: int) -> str:
    """What slerp changes, for a model with this many latent dimensions."""
    text = (
        "A straight line between two codes cuts the corner toward the origin: the wider the angle between "
        "them, the more |z| dips in the middle. "
        "Slerp turns along the arc between the two directions and moves the norm evenly from one end's to "
        "the other's, so it never dips. "
    )
    from scipy.stats import chi  # only this text needs it; scipy.stats is slow to import

    lo, hi = chi.ppf([0.025, 0.975], latent_dim)  # |z| of z ~ N(0, I_Z) follows the chi distribution
    spread = f"95% of draws from N(0, I) have |z| between {lo:.1f} and {hi:.1f}"
    if latent_dim >= LARGE_Z:
        return text + (
            f"With Z = {latent_dim} this matters: {spread}, close to √Z = {latent_dim**0.5:.1f}, so the "
            "shorter middle of a line lies where the prior rarely puts a code. Compare the two |z| curves. "
            "The distance chart is another yardstick, the nearest test μ, and there slerp need not do better: "
            "the means sit closer to the origin than draws from the prior do."
        )
    return text + f"With Z = {latent_dim} it matters little: {spread}, so a shorter middle is still a typical code."


LONG_ANSWER = """
**μ and σ.** The encoder does not output a point. For each image it outputs a Gaussian over the
latent space: a mean vector **μ** and a standard deviation vector **σ** (the network predicts
log σ²). So with Z latent dimensions it gives **2Z numbers** per image.

**Why a dot has only Z coordinates.** A position needs Z numbers; μ is the natural choice, the
centre of where the encoder thinks the image belongs. σ is a width, not a place: it can be drawn
as an ellipse or a fainter dot, but not as a second position. The scatter here plots μ (or, if
you choose, one random draw from N(μ, σ²)), never both at once.

**From Z to two dimensions.** With Z = 2 nothing is lost. With Z > 2 you either look at two
chosen dimensions (raw), or project: PCA keeps the two largest-variance directions and drops the
rest, so distances can only shrink; t-SNE and UMAP keep who is near whom, and distort sizes and
gaps between clusters, so *distances between t-SNE clusters mean little*.

**Why random z decode to digits.** The loss adds a KL term, KL(N(μ, σ²) ‖ N(0, I)), per image. It
pulls every image's Gaussian toward the standard normal, so together the codes of all images
(the *aggregate posterior*) fill N(0, I) without large empty regions. A random z ~ N(0, I) then
usually lands somewhere the decoder has learned to draw a digit. A plain autoencoder has no such
term, and its codes leave most of N(0, I) empty.

**What slerp is for.** A straight line between two codes cuts the corner toward the origin, so
|z| dips in the middle. Spherical interpolation (slerp) walks along the arc between the two
directions and keeps the ends' norm, moving it evenly from one end's to the other's. In many
dimensions that matters: |z| of draws from N(0, I) concentrates near √Z, and the shorter middle of
a line lies where the prior rarely puts a code. With Z = 2 it matters little.
"""


def expander() -> None:
    with st.expander("The longer answer: μ, σ, projections, and why random z decode to digits"):
        st.markdown(LONG_ANSWER)
