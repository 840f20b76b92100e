"""latent-lab: what a variational autoencoder learns, on four pages. Run: streamlit run app.py

`streamlit run app.py` imports this file once to find `app`: an st.App whose lifespan starts importing
the heavy packages at server start (ui/preload.py), with a route for the bundled models' hover images
(ui/thumbs.py). It then runs this file as the script of every visit, where `__name__ == "__main__"`:
page config, navigation, the shared sidebar, the page.
"""

import streamlit as st

from ui import preload, thumbs

if __name__ != "__main__":  # imported by `streamlit run` to start the server
    app = st.App("app.py", lifespan=preload.lifespan, routes=thumbs.routes())
else:  # a visit (or AppTest)
    st.set_page_config(page_title="latent-lab: what a VAE learns", page_icon=":material/explore:", layout="wide")
    pages = [
        st.Page("pages/home.py", title="Start here", icon=":material/explore:", default=True),
        st.Page("pages/train.py", title="Train or load a model", icon=":material/model_training:", url_path="train"),
        st.Page("pages/latent.py", title="Latent space", icon=":material/scatter_plot:", url_path="latent"),
        st.Page("pages/samples.py", title="Random samples", icon=":material/casino:", url_path="samples"),
        st.Page("pages/interpolate.py", title="Interpolation", icon=":material/swap_horiz:", url_path="interpolate"),
        st.Page("pages/compare.py", title="VAE vs autoencoder", icon=":material/compare:", url_path="compare"),
        st.Page("pages/digit.py", title="Your own digit", icon=":material/draw:", url_path="digit"),
        st.Page("pages/dimensions.py", title="Latent dimensions", icon=":material/tune:", url_path="dimensions"),
    ]
    pg = st.navigation(pages)  # before the wait below: the sidebar lists the pages by title at once

    # The first visit after a server start waits here for the imports (a second or two). Meanwhile it
    # says so, and the browser fetches and compiles Streamlit's chart renderer (Vega: 0.8 MB of
    # JavaScript, otherwise loaded with the first chart) for a 1-pixel chart that needs no data.
    # The placeholder is made on every run, not only while waiting, so that the page's elements keep
    # their places from the first run to the next: Streamlit's front end rebuilds an element whose
    # place changed, and a rebuilt chart loses what the reader did in it (ui/switch_view.py).
    waiting = st.empty()
    if preload.pending():
        with waiting.container():
            st.caption("Starting up: loading PyTorch and the models (only the first visit after a restart)…")
            st.vega_lite_chart({"mark": "point", "width": 1, "height": 1})
    preload.wait()  # never import torch & co. at the same time as the preload thread
    waiting.empty()

    from ui import shell, sidebar, warmup

    warmup.configure_numba_cache()  # before anything imports numba (a deep link may ask for UMAP first)
    try:
        with shell.app_run():
            sidebar.render()
            pg.run()
    finally:
        warmup.start_background_warmup()  # after the first page is drawn: it must not slow that page down
