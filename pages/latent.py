"""Latent space: where each test digit's mean μ lands, in the sidebar's projection."""

from ui.shell import require_app

require_app()  # before anything is drawn: see ui/shell.py

from functools import partial

import streamlit as st

from ui import cache, latent_view, state, switch_view, teaching, urlstate, views

st.title("Latent space")
st.markdown(
    "**What am I looking at?** Each dot is one test digit, placed at the mean μ its encoder "
    "outputs, coloured by its true class. Hover a dot to see the digit and its reconstruction."
)
teaching.expander()

entry = state.current()
views.undertrained_warning(entry)
views.require_test_labels(entry)  # not the images: a bundled model's sidecar ships what this page shows
method = st.session_state.get(state.PROJECTION, "raw")
z_dim = entry.config.latent_dim
left, right = st.columns([3, 1.2])
latent_view.restore_url(z_dim)
with right:
    n = views.points_control()
    params = views.projection_params(method, entry)
    autoencoder = entry.config.kind == "ae"
    layers = latent_view.controls(z_dim, method, autoencoder)
    latent_view.publish_url(n, params, layers)
    urlstate.link_box()
with left:
    proj = views.fitted_projection(entry, method, n, params, exact=latent_view.needs_exact(method, layers))
    frame = None  # the plotted points, for the CSV
    switchable = switch_view.applies(layers)
    if proj is not None and switchable:
        frame = switch_view.show(st, entry, n, method, params, proj.embedding)  # its title names the axes
    elif proj is not None and (drawn := latent_view.safe_chart(entry, proj, n, method, params, layers)):
        chart, frame = drawn
        st.caption(views.axis_caption(method, params))
        views.show_chart(st, chart, width="content" if layers.manifold else "stretch")
    if frame is not None:
        hint = switch_view.HINT if switchable else switch_view.LAYERED_HINT
        total = len(cache.test_labels(entry))  # a small test split (digits: 359) has fewer than asked for
        shown = f"{n} test digits" if n < total else f"all {total} test digits"
        st.caption(
            f"{latent_view.describe(layers, method, proj.placement)}{hint} {shown} · {entry.label} · "
            f"{state.PROJECTION_LABELS[method]}"
        )
        table = frame.drop(columns=["image", "sigma"], errors="ignore")
        views.download(
            st,
            "Download these coordinates (CSV)",
            partial(table.to_csv, index=False),
            f"latent-{method}.csv",
            "text/csv",
        )
with right:
    st.markdown("#### What a point is")
    if autoencoder:
        st.markdown(
            "This is a plain autoencoder: its encoder gives each image one code, Z numbers, and no σ. A dot "
            "is that code. Nothing pulls the codes toward N(0, I), so look at the axes' scale, and compare "
            "with a VAE on *VAE vs autoencoder*."
        )
    else:
        st.markdown(
            "The encoder gives each image a Gaussian: a mean **μ** and a spread **σ**, Z numbers each. "
            "A dot is **μ only**: σ is how unsure the encoder is, not a place. Switch to *one sampled z* "
            "to see the cloud the decoder actually trains on."
        )
    st.markdown("#### From Z dimensions to two")
    st.markdown(teaching.projection_text(method, z_dim, proj.params if proj is not None else None))
    st.markdown("#### What the clusters mean")
    st.markdown(
        "Digits that look alike get nearby μ, without any label in training: the classes "
        "separate because similar images need similar codes to be rebuilt well. Random z "
        "(black crosses, with *Overlay random z*) that land between clusters decode to in-between shapes."
    )
