"""Make every page run through app.py, even on a server's very first request.

Streamlit treats a project with a `pages/` folder as an old-style multipage app until the first
`st.navigation` call in the process. So the first visitor after a (re)start who opens a deep link
such as /latent?projection=umap would get the page file run on its own: no shared sidebar, file
names as page titles. `require_app()` at the top of each page detects that and runs app.py instead.
"""

from __future__ import annotations

import runpy
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import streamlit as st

APP_PATH = Path(__file__).resolve().parent.parent / "app.py"


class Page(NamedTuple):
    file: str
    title: str
    icon: str
    url: str  # the URL path; "" for the start page, at the root URL


PAGES = (  # in the sidebar's order; the first is the start page
    Page("pages/home.py", "Start here", ":material/explore:", ""),
    Page("pages/train.py", "Train or load a model", ":material/model_training:", "train"),
    Page("pages/latent.py", "Latent space", ":material/scatter_plot:", "latent"),
    Page("pages/samples.py", "Random samples", ":material/casino:", "samples"),
    Page("pages/interpolate.py", "Interpolation", ":material/swap_horiz:", "interpolate"),
    Page("pages/compare.py", "VAE vs autoencoder", ":material/compare:", "compare"),
    Page("pages/digit.py", "Your own digit", ":material/draw:", "digit"),
    Page("pages/dimensions.py", "Latent dimensions", ":material/tune:", "dimensions"),
)
PUBLISHING = ("latent", "samples", "interpolate", "compare", "dimensions")  # call urlstate.publish every run
LIGHT_PAGES = ("", "latent")  # drawn without torch for a bundled MNIST model (ui/preload.py, app.py)
# On a projector or a small laptop (about 1024 px wide, the sidebar open), Streamlit's wide layout
# keeps 80 px of margin on each side and 96 px above the title, and the plots' control columns
# truncate their labels. Narrower margins there give the page a fifth more width. The top keeps room
# for Streamlit's header bar (60 px). A style-only st.html takes no place among the page's elements.
# Narrower still (an 800 px window with the sidebar open leaves the page about 450 px), in a row of
# columns that holds a chart, a column under 240 px moves onto a row of its own instead of squeezing its
# neighbour: the latent page's controls go below the plot rather than beside it. Rows of images, metrics
# or links keep Streamlit's layout, which stacks columns only below 640 px of window.
# Hover images (a digit beside its reconstruction, 58 x 28 px as made) are drawn three times as large,
# with hard pixel edges: at their own size they were too small to read on a projector.
COMPACT_CSS = """<style>
#vg-tooltip-element img { height: 84px; width: auto; image-rendering: pixelated; }
@media (max-width: 1280px) {
  [data-testid="stMainBlockContainer"] { padding: 4rem 1.5rem 2rem 1.5rem; }
}
@media (max-width: 900px) {
  [data-testid="stHorizontalBlock"]:has([data-testid="stVegaLiteChart"]) { flex-wrap: wrap; }
  [data-testid="stHorizontalBlock"]:has([data-testid="stVegaLiteChart"]) > [data-testid="stColumn"] {
    min-width: min(100%, 240px);
  }
}
</style>"""
_local = threading.local()


@contextmanager
def app_run():
    """app.py wraps its body in this, so pages know they run inside it."""
    _local.active = True
    try:
        yield
    finally:
        _local.active = False


def require_app() -> None:
    """Called first on every page: outside app.py, run app.py (which runs this page) and stop."""
    if getattr(_local, "active", False):
        return
    runpy.run_path(str(APP_PATH), run_name="__main__")
    st.stop()
