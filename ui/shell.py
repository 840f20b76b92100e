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

import streamlit as st

APP_PATH = Path(__file__).resolve().parent.parent / "app.py"
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
