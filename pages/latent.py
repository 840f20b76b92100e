"""Latent space: where each test digit's mean μ lands, in the sidebar's projection."""

from ui.shell import require_app

require_app()  # before anything is drawn: see ui/shell.py

import streamlit as st

from ui import state, views

st.title("Latent space")
st.markdown(
    "**What am I looking at?** Each dot is one test digit, placed at the mean μ its encoder "
    "outputs, coloured by its true class. Hover a dot to see the digit."
)

entry = state.current()
method = st.session_state.get(state.PROJECTION, "raw")
z_dim = entry.model.config.latent_dim
left, right = st.columns([3, 1.2])
with right:
    n = views.points_control()
    params = views.projection_params(method, z_dim)
with left:
    proj = views.fitted_projection(entry, method, n, params)
    if proj is not None:
        st.altair_chart(views.scatter_chart(entry, proj, n, method, params), width="stretch")
        st.caption(f"{n} test digits · {entry.label} · {state.PROJECTION_LABELS[method]}")
with right:
    st.markdown("#### What a point is")
    st.markdown(
        "The encoder gives each image a Gaussian: a mean **μ** and a spread **σ**, Z numbers each. "
        "A dot is **μ only**: σ is how unsure the encoder is, not a place."
    )
    st.markdown("#### From Z dimensions to two")
    how = {
        "raw": f"Raw: the two chosen coordinates of μ, unchanged. With Z = {z_dim}, "
        + ("that is all of it." if z_dim == 2 else f"the other {z_dim - 2} are not shown."),
        "pca": "PCA: the two directions of largest variance; a rotation and a flattening. Distances "
        "shrink but straight lines stay straight.",
        "tsne": "t-SNE: keeps each point's nearest neighbours; cluster sizes and the distances between "
        "clusters mean little.",
        "umap": "UMAP: keeps neighbourhoods and some of the global layout; still, distances are not to scale.",
    }
    st.markdown(how[method])
    st.markdown("#### What the clusters mean")
    st.markdown(
        "Digits that look alike get nearby μ, without any label in training: the classes "
        "separate because similar images need similar codes to be rebuilt well."
    )
