"""Your own digit: draw or upload one, see every preprocessing step, then where the encoder puts it."""

from ui.shell import require_app

require_app()  # before anything is drawn: see ui/shell.py

from functools import partial

import streamlit as st

from ui import digit_view, state, teaching, views
from vae_core import LatentLabError
from vae_core.bundled import DATASET_TITLES
from vae_core.images import to_pil_grid, to_png_bytes

st.title("Your own digit")
st.markdown(
    "**What am I looking at?** A digit you draw or upload, prepared the way MNIST's digits were, then "
    "encoded: its mean μ on the map with its 1σ ellipse, its reconstruction, and its nearest test digits."
)
teaching.expander()
entry = state.current()

draw_tab, upload_tab = st.tabs(["Draw", "Upload an image"])
with draw_tab:
    try:
        from streamlit_drawable_canvas import st_canvas

        drawn = st_canvas(
            stroke_width=22,
            stroke_color="#000000",
            background_color="#FFFFFF",
            height=digit_view.CANVAS_PX,
            width=digit_view.CANVAS_PX,
            drawing_mode="freedraw",
            key="canvas",
            return_image_data=True,
        )
        # A cleared canvas still sends its blank image: no strokes means nothing drawn, not a bad image.
        has_strokes = drawn is not None and bool((drawn.json_data or {}).get("objects"))
        drawn_bytes = drawn.image_bytes if has_strokes else None
    except (ImportError, RuntimeError) as exc:  # the component is optional: uploads still work
        st.info(f"The drawing canvas is unavailable here ({exc}); upload an image instead.")
        drawn_bytes = None
    st.caption("Draw one digit, large, with the mouse or a finger. The bin icon clears the canvas.")
with upload_tab:
    upload = st.file_uploader(
        "PNG, JPEG, BMP, GIF or WebP; at most 5 MB",
        type=["png", "jpg", "jpeg", "bmp", "gif", "webp"],
        key="digit_upload",
    )

data = upload.getvalue() if upload is not None else drawn_bytes
if not data:
    st.info("Draw a digit or upload an image to see where the encoder puts it.")
    st.stop()
try:
    steps = digit_view.steps_for(entry, data)
except LatentLabError as exc:
    st.error(f"This image was not used: {exc}")
    st.stop()

st.subheader(f"1. Preprocessing, as for {DATASET_TITLES.get(entry.dataset, 'the model')}'s images")
cols = st.columns(len(steps))
for col, step in zip(cols, steps, strict=True):
    col.image(step.image, caption=f"{step.name}: {step.note}", width="stretch")
views.download(
    st, "Download preprocessing steps (PNG)", partial(digit_view.steps_png, steps), "digit-steps.png", "image/png"
)

enc = digit_view.encode(entry, steps[-1])
neighbours, idx = digit_view.nearest_test_digits(entry, enc.mu)
scale = max(1, 56 // entry.model.config.image_shape[0])
st.subheader("2. What the model makes of it")
a, b, c = st.columns([1, 1, 3])
a.image(to_pil_grid(enc.image, 1, scale), caption="model input")
b.image(to_pil_grid(enc.recon, 1, scale), caption="reconstruction from μ")
nearest = to_pil_grid(neighbours, len(neighbours), scale)
c.image(nearest, caption=f"nearest test digits by μ: #{', #'.join(map(str, idx))}")
pair = digit_view.input_and_reconstruction(enc, scale)
under_pair, under_nearest = st.columns([2, 3])  # the pair's column is too narrow for a button
views.download(
    under_pair, "Download input and reconstruction (PNG)", partial(to_png_bytes, pair), "digit-recon.png", "image/png"
)
views.download(
    under_nearest,
    "Download nearest test digits (PNG)",
    partial(to_png_bytes, nearest),
    "digit-nearest.png",
    "image/png",
)
st.caption(
    f"μ = [{', '.join(f'{v:.2f}' for v in enc.mu[:8])}{', …' if len(enc.mu) > 8 else ''}] · "
    + digit_view.sigma_text(float(enc.sigma.mean()), entry)
)

method = st.session_state.get(state.PROJECTION, "raw")
if entry.model.config.latent_dim >= 2:
    st.subheader("3. Where it lands")
    left, right = st.columns([3, 1.2])
    with right:
        n = views.points_control("digit_points")
        params = views.projection_params(method, entry, key="digit_")
    with left:
        chart, placement, outline = digit_view.map_chart(entry, method, params, n, enc)
        if chart is not None:
            st.caption(views.axis_caption(method, params))
            views.show_chart(st, chart)
            where = {"exact": "exactly", views.TSNE_TRANSFORM: "into this t-SNE layout by openTSNE's transform"}.get(
                placement, "by its nearest test digits"
            )
            st.caption(f"The large black cross is your digit's μ, placed {where}{outline or '.'}")
