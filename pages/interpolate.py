"""Interpolation: the decoded path between two test digits' means, drawn over the latent scatter."""

from ui.shell import require_app

require_app()  # before anything is drawn: see ui/shell.py

import numpy as np
import streamlit as st
import torch

from ui import cache, state, views
from vae_core.images import thumbnail_urls, to_pil_grid, to_png_bytes
from vae_core.latents import INTERPOLATION_MODES, interpolate

st.title("Interpolation")
st.markdown(
    "**What am I looking at?** The decoder's images along a path between two test digits' "
    "means μ. The ends show each original and its reconstruction."
)

entry = state.current()
data = cache.test_set(entry.dataset)
names = entry.class_names
mu, _ = cache.latents(entry.fingerprint, entry)


def pick(col, tag: str, default_class: int) -> int:
    """One digit: by class and example, or by test index."""
    how = col.radio(f"Digit {tag}", ["by class", "by test index"], horizontal=True, key=f"how_{tag}")
    if how == "by test index":
        return int(col.number_input("test index", 0, len(data) - 1, default_class, key=f"idx_{tag}"))
    cls = col.selectbox("class", range(len(names)), default_class, format_func=lambda c: names[c], key=f"cls_{tag}")
    members = torch.nonzero(data.labels == cls).flatten()
    if len(members) == 0:
        col.warning(f"No test digit of class {names[cls]}.")
        return 0
    k = col.number_input(f"example (0-{len(members) - 1})", 0, len(members) - 1, 0, key=f"ex_{tag}")
    return int(members[int(k)])


if st.button("Random pair", icon=":material/casino:"):
    a, b = np.random.default_rng().choice(len(data), 2, replace=False)
    st.session_state.update({"how_A": "by test index", "idx_A": int(a), "how_B": "by test index", "idx_B": int(b)})
c1, c2, c3 = st.columns([1, 1, 1])
i0, i1 = pick(c1, "A", 1), pick(c2, "B", 7 % len(names))
steps = c3.slider("Steps", 3, 30, 10, key="steps")
mode = c3.radio(
    "Path",
    INTERPOLATION_MODES,
    horizontal=True,
    key="mode",
    format_func={"linear": "linear", "slerp": "spherical (slerp)"}.get,
)

if i0 == i1 or np.allclose(mu[i0], mu[i1]):
    st.warning(
        "Both ends are the same digit (or have the same μ): there is no path to walk. Pick two different digits."
    )
    st.stop()

path = interpolate(torch.from_numpy(mu[i0]), torch.from_numpy(mu[i1]), steps, mode)
decoded = cache.decode_np(entry, path.numpy())
ends = data.as_float()[[i0, i1]] if len(data) else decoded[:2]
recon = cache.decode_np(entry, mu[[i0, i1]])
strip = torch.cat([ends[:1], recon[:1], decoded, recon[1:], ends[1:]])
scale = max(1, 56 // entry.model.config.image_shape[0])
strip_img = to_pil_grid(strip, nrow=len(strip), scale=scale)
st.image(
    strip_img,
    caption=f"original #{i0} ({names[int(data.labels[i0])]}) · its reconstruction · {steps} "
    f"{mode} steps · reconstruction · original #{i1} ({names[int(data.labels[i1])]})",
)
st.download_button("Download strip (PNG)", to_png_bytes(strip_img), "interpolation.png", "image/png")

method = st.session_state.get(state.PROJECTION, "raw")
left, right = st.columns([3, 1.2])
with right:
    n = views.points_control("interp_points")
    params = views.projection_params(method, entry.model.config.latent_dim, key="interp_")
with left:
    proj = views.fitted_projection(entry, method, n, params)
    if proj is not None:
        coords = proj.transform(path.numpy())
        chart = views.scatter_chart(entry, proj, n, method, params) + views.path_layer(coords, thumbnail_urls(decoded))
        st.altair_chart(chart, width="stretch")
        where = (
            "exactly (the projection maps new points)"
            if proj.placement == "exact"
            else "by its 10 nearest test digits in latent space: t-SNE has no map for new points, so each "
            "step sits at the weighted mean of its neighbours' positions"
        )
        st.caption(f"The black path is placed {where}.")
with right:
    st.markdown("#### Why the middle looks like a digit")
    st.markdown(
        "The KL term packs the codes of all training images into one smooth, gap-free cloud "
        "around the origin, and the decoder learns to draw something sensible everywhere in it. "
        "A straight walk between two codes stays inside that cloud."
    )
    st.markdown("#### What slerp changes")
    st.markdown(
        "In many dimensions, typical draws from N(0, I) have norm ≈ √Z, and the middle of a "
        "straight line is shorter than either end. Slerp turns along the sphere instead, so every "
        "step keeps a typical norm."
    )
