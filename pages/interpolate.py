"""Interpolation: the decoded paths between two test digits' means, drawn over the latent scatter."""

from ui.shell import require_app

require_app()  # before anything is drawn: see ui/shell.py

from functools import partial

import numpy as np
import streamlit as st

from ui import cache, interp_view, state, teaching, urlstate, views
from vae_core.charts import step_chart
from vae_core.images import thumbnail_urls, to_gif_bytes, to_pil_grid, to_png_bytes
from vae_core.latents import INTERPOLATION_MODES

st.title("Interpolation")
st.markdown(
    "**What am I looking at?** The decoder's images along two paths between two test digits' means μ: "
    "a straight line and a spherical arc. The ends show each original and its reconstruction."
)
teaching.expander()

entry = state.current()
views.undertrained_warning(entry)
data = views.require_test_data(entry)
names = entry.class_names
mu, _ = cache.latents(entry.fingerprint, entry)

url = urlstate.restore({"a": int, "b": int, "steps": int, "mode": str})
if "a" in url and "b" in url and all(0 <= url[k] < len(data) for k in "ab"):
    interp_view.select_indices(url["a"], url["b"])
if 3 <= url.get("steps", 0) <= 30:
    st.session_state["steps"] = url["steps"]
if url.get("mode") in INTERPOLATION_MODES:
    st.session_state["mode"] = url["mode"]
if st.button("Random pair", icon=":material/casino:"):
    interp_view.select_indices(*np.random.default_rng().choice(len(data), 2, replace=False))

c1, c2, c3 = st.columns(3)
i0 = interp_view.pick(c1, "A", data, names, 1)
i1 = interp_view.pick(c2, "B", data, names, 7 % len(names))
steps = c3.slider("Steps", 3, 30, 10, key="steps")
# The path's radio sits beside the map it changes, further down; its value is known from the start.
mode = st.session_state.get("mode", INTERPOLATION_MODES[0])
urlstate.publish({"a": i0, "b": i1, "steps": steps, "mode": mode})
urlstate.link_box()

if i0 == i1 or np.allclose(mu[i0], mu[i1]):
    st.warning(
        "Both ends are the same digit (or have the same μ): there is no path to walk. Pick two different digits."
    )
    st.stop()

paths = interp_view.both_paths(entry, mu, i0, i1, steps)
scale = max(1, 56 // entry.model.config.image_shape[0])
a_name, b_name = names[int(data.labels[i0])], names[int(data.labels[i1])]
for m in INTERPOLATION_MODES:
    strip = interp_view.strip(data, i0, i1, paths.images[m])
    img = to_pil_grid(strip, nrow=len(strip), scale=scale)
    st.image(
        img,
        caption=f"{interp_view.MODE_LABELS[m]}: original #{i0} ({a_name}) · {steps} steps from its reconstruction "
        f"to the other's · original #{i1} ({b_name})",
    )
    row = st.container(horizontal=True)  # side by side at their own widths; wrapped on a narrow screen
    views.download(
        row, f"{m} strip (PNG)", partial(to_png_bytes, img), f"interpolation-{m}.png", "image/png", f"png_{m}"
    )
    gif = partial(to_gif_bytes, paths.images[m])
    views.download(row, f"{m} (animated GIF)", gif, f"interpolation-{m}.gif", "image/gif", f"gif_{m}")

g1, g2 = st.columns(2)
g1.altair_chart(step_chart(paths.table, "norm", "|z| along the path"), width="stretch")
g2.altair_chart(step_chart(paths.table, "nearest", "distance to nearest test μ"), width="stretch")
st.caption(
    f"First chart: |z| of each step. Second: its distance to the nearest of the {len(mu)} test digits' μ, "
    "0 at both ends. A bump means the path leaves the region where test digits' codes lie."
)

method = st.session_state.get(state.PROJECTION, "raw")
left, right = st.columns([3, 1.2])
with right:
    mode = st.radio("Path on the map", INTERPOLATION_MODES, key="mode", format_func=interp_view.MODE_LABELS.get)
    n = views.points_control("interp_points")
    params = views.projection_params(method, entry, key="interp_")
with left:
    proj = views.fitted_projection(entry, method, n, params, exact=True)  # UMAP: fitted here, for its transform
    if proj is not None:
        coords, placement = views.place(entry, proj, n, params, paths.codes[mode])
        layer = views.path_layer(coords, thumbnail_urls(paths.images[mode]))
        st.caption(views.axis_caption(method, params))
        views.show_chart(st, views.scatter_chart(entry, proj, n, method, params) + layer)
        where = interp_view.placement_text(method, placement)
        st.caption(f"The black {interp_view.MODE_LABELS[mode]} path is placed {where}.")
with right:
    if entry.config.kind == "ae":
        st.markdown("#### Why the middle may not look like a digit")
        st.markdown(
            "This is a plain autoencoder: nothing packs its codes into one gap-free cloud, so a walk between "
            "two codes can cross empty space the decoder was never taught to draw, and the middle steps may be "
            "smudges or hybrids. The distance chart shows how far each step strays from the nearest test μ; "
            "compare the same two digits with a VAE."
        )
    else:
        st.markdown("#### Why the middle looks like a digit")
        st.markdown(
            "The KL term packs the codes of all training images into one smooth, gap-free cloud "
            "around the origin, and the decoder learns to draw something sensible everywhere in it. "
            "A walk between two codes stays in or near that cloud, so every step decodes to something "
            "digit-like; the distance chart shows how far each step strays from the nearest test μ."
        )
    st.markdown("#### What slerp changes")
    st.markdown(teaching.slerp_text(entry.model.config.latent_dim))
