"""Get the server ready for its first visitor as soon as it starts, not when the visitor arrives.

`streamlit run app.py` finds the `st.App` in app.py and starts it with this module's `lifespan`, which
imports, in a background thread, what every page needs (torch, pandas and the project's own
modules: about 3 s of CPU on two cores; not torchvision, which only downloads: vae_core/data.py)
while the visitor's browser is still loading Streamlit's front end. Script runs call `wait()` first,
so a page never imports those packages at the same time as this thread (two threads importing the
same packages can deadlock on Python's per-module import locks). This module imports only the standard
library: app.py imports it first.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import importlib
import logging
import threading
import time
from collections.abc import AsyncIterator

__all__ = ["FIRST_PAGE_MODULES", "lifespan", "start", "pending", "wait", "trim_memory"]

# What the pages import at module level, heaviest first. Optional ones (the projection libraries,
# and Altair: the latent page's first scatter is a hand-written spec, vae_core/charts.py) are left to
# ui/warmup.py, which imports them after the first page is drawn.
FIRST_PAGE_MODULES = (
    "torch",
    "pandas",
    "PIL.Image",
    "vae_core",
    "vae_core.charts",
    "vae_core.images",
    "vae_core.analysis",
    "vae_core.precompute",
    "ui.state",
    "ui.cache",
    "ui.views",
    "ui.sidebar",
    "ui.latent_view",
    "ui.interp_view",
    "ui.digit_view",
    "ui.training",
    "ui.teaching",
    "ui.urlstate",
    "ui.warmup",
)
WAIT_TIMEOUT_S = 120.0  # a stuck import must not hang every visitor forever
TRIM_EVERY_S = 30.0  # how often freed heap memory is handed back to the system
_done = threading.Event()
_started = threading.Event()
_log = logging.getLogger(__name__)


def _import_all() -> None:
    try:
        for name in FIRST_PAGE_MODULES:
            try:
                importlib.import_module(name)
            except Exception as exc:  # a failing import shows up, with its traceback, on the page that needs it
                _log.warning("preload: importing %s failed: %s", name, exc)
    finally:
        _done.set()


def trim_memory() -> bool:
    """Give freed heap memory back to the system (glibc's malloc_trim); False where there is none.

    Each script run is a thread with its own malloc arena; what a visitor's runs freed stays in those
    arenas, counted in the server's memory, until trimmed (load test: 1616 MB an idle 150 s after ten
    visitors left, against 1287 MB before they came).
    """
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


M_ARENA_MAX = -8  # glibc's mallopt parameter number
ARENAS = 2  # one per core: script runs are threads, and each new thread would otherwise get its own arena


def limit_arenas() -> bool:
    """Cap glibc's malloc arenas before visitors' threads start (False where there is no glibc)."""
    libc = _glibc()
    return libc is not None and libc.mallopt(M_ARENA_MAX, ARENAS) == 1


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library, once (find_library runs ldconfig), if it is glibc; None on macOS, musl and the like."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def _trim_forever() -> None:
    while trim_memory():
        time.sleep(TRIM_EVERY_S)


def start() -> None:
    """Start the import thread, and the memory trimmer, once per process (later calls do nothing)."""
    if _started.is_set():
        return
    _started.set()
    limit_arenas()
    threading.Thread(target=_import_all, name="latent-lab-preload", daemon=True).start()
    threading.Thread(target=_trim_forever, name="latent-lab-trim", daemon=True).start()


def pending() -> bool:
    """True while a started preload is still importing (only the first visits after a server start)."""
    return _started.is_set() and not _done.is_set()


def wait(timeout_s: float = WAIT_TIMEOUT_S) -> None:
    """Block until the preload is over; returns at once when no preload was started (tests, AppTest)."""
    if _started.is_set():
        _done.wait(timeout_s)


@contextlib.asynccontextmanager
async def lifespan(_app: object) -> AsyncIterator[None]:
    """st.App's lifespan: start importing at server start; nothing to clean up at shutdown."""
    start()
    yield
