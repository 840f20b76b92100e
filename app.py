"""latent-lab: what a variational autoencoder learns, on four pages. Run: streamlit run app.py

`streamlit run app.py` imports this file once to find `app`: an st.App whose lifespan starts importing
the packages the pages need at server start, in two phases, the second (torch) on demand (ui/preload.py),
with a route for the bundled models' hover images (ui/thumbs.py). It then runs this file as the script
of every visit, where `__name__ == "__main__"`: page config, navigation, the shared sidebar, the page.
"""

import streamlit as st

from ui import preload, shell, thumbs

if __name__ != "__main__":  # imported by `streamlit run` to start the server
    from starlette.middleware import Middleware

    heavy = frozenset(page.url for page in shell.PAGES) - set(shell.LIGHT_PAGES)
    app = st.App(
        "app.py",
        lifespan=preload.lifespan,
        routes=thumbs.routes(),
        middleware=[Middleware(preload.HurryFor, pages=heavy)],
    )
else:  # a visit (or AppTest)
    st.set_page_config(page_title="latent-lab: what a VAE learns", page_icon=":material/explore:", layout="wide")
    st.html(shell.COMPACT_CSS)
    pages = [
        st.Page(p.file, title=p.title, icon=p.icon, url_path=p.url or None, default=not p.url) for p in shell.PAGES
    ]
    pg = st.navigation(pages)  # before the wait below: the sidebar lists the pages by title at once

    # The first visit after a server start waits here for the imports (a second or two). Meanwhile it
    # says so, and the browser fetches and compiles Streamlit's chart renderer (Vega: 0.8 MB of
    # JavaScript, otherwise loaded with the first chart) for a 1-pixel chart that needs no data.
    # The start page and the latent page wait only for the preload's light phase: neither needs torch
    # for a bundled MNIST model, and anything on them that does waits for the rest (ui.state.engine()).
    # They fetch the renderer the same way, from the foot of the sidebar, where its loading skeleton
    # moves nothing. The placeholders are made on every run, not only while waiting, so that the page's
    # elements keep their places from the first run to the next: Streamlit's front end rebuilds an
    # element whose place changed, and a rebuilt chart loses what the reader did in it (ui/switch_view.py).
    RENDERER = {"mark": "point", "width": 1, "height": 1}
    waiting = st.empty()
    preload.wait_light()  # never import a module at the same time as the preload thread
    light = pg.url_path in shell.LIGHT_PAGES
    if not light and preload.pending():
        with waiting.container():
            st.caption("Starting up: loading PyTorch and the models (only the first visit after a restart)…")
            st.vega_lite_chart(RENDERER)
        preload.wait()
    waiting.empty()

    from ui import sidebar, warmup

    warmup.configure_numba_cache()  # before anything imports numba (a deep link may ask for UMAP first)
    try:
        with shell.app_run():
            sidebar.render(write_url=pg.url_path not in shell.PUBLISHING)
            fetching = st.sidebar.empty()
            if preload.pending():
                fetching.vega_lite_chart(RENDERER)
            pg.run()
    finally:
        warmup.start_background_warmup()  # after the first page is drawn: it must not slow that page down
