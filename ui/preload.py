"""Get the server ready for its first visitor as soon as it starts, not when the visitor arrives.

`streamlit run app.py` finds the `st.App` in app.py and starts it with this module's `lifespan`, which
imports, in a background thread, what the pages need, in two phases:
- light, at once: pandas and the project's modules that do not use torch (about 0.5 s), while the
  visitor's browser is still loading Streamlit's front end. That is all the start page and the latent
  page of a bundled MNIST model need: the sidecar ships the coordinates and the hover images.
- heavy: torch (1.2 to 1.7 s of CPU on two cores), Altair and the modules that use them; not
  torchvision, which only downloads (vae_core/data.py). It starts when the browser asks for another
  page (HurryFor, app.py's middleware) or a script run waits for it (`wait()`), else HEAVY_DELAY_S
  after the light phase: the first latent page is drawn before it.
Script runs call `wait_light()` first, then `wait()` before anything imports torch (app.py for the
other pages, ui.state.engine() on the light ones). So a page never imports a module at the same time
as this thread (two threads importing the same packages can deadlock on Python's per-module import
locks). This module imports only the standard library: app.py imports it first.
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

__all__ = [
    "LIGHT_MODULES",
    "HEAVY_MODULES",
    "FIRST_PAGE_MODULES",
    "lifespan",
    "start",
    "light_pending",
    "wait_light",
    "pending",
    "wait",
    "trim_memory",
    "HurryFor",
]

# What the start page and the latent page of a bundled MNIST model import: none imports torch (tests check).
LIGHT_MODULES = (
    "pandas",
    "vae_core",
    "vae_core.charts",
    "vae_core.precompute",
    "vae_core.checkpoint",
    "vae_core.data",
    "ui.state",
    "ui.cache",
    "ui.views",
    "ui.sidebar",
    "ui.latent_view",
    "ui.switch_view",
    "ui.teaching",
    "ui.urlstate",
    "ui.shell",
    "ui.warmup",
)
# Then what the other pages import, heaviest first. The projection libraries are left to ui/warmup.py,
# which imports them once this is over.
HEAVY_MODULES = (
    "torch",
    "PIL.Image",
    "altair",  # for the other pages' charts, and before ui/warmup.py's thread (which waits for this)
    "safetensors.torch",
    "vae_core.model",
    "vae_core.latents",
    "vae_core.images",
    "vae_core.analysis",
    "ui.interp_view",
    "ui.digit_view",
    "ui.training",
)
FIRST_PAGE_MODULES = (*LIGHT_MODULES, *HEAVY_MODULES)
WAIT_TIMEOUT_S = 120.0  # a stuck import must not hang every visitor forever
TRIM_EVERY_S = 30.0  # how often freed heap memory is handed back to the system
_light = threading.Event()
_wanted = threading.Event()  # a run waits for the heavy phase, or a page that needs it was asked for
# The heavy phase otherwise waits this long after the light one. Its imports hold Python's lock for long
# stretches (torch's C++ start-up), so the server, busy importing, would answer the first visitor's
# browser late: send the latent page's messages, serve the chart renderer's JavaScript. A visitor who
# opens another page starts it at once: the request for the page (HurryFor), or its script run (wait()).
HEAVY_DELAY_S = 3.0
_done = threading.Event()
_started = threading.Event()
_log = logging.getLogger(__name__)
_import = importlib.import_module  # what the preload thread calls (a test records it instead)


def _import_all() -> None:
    try:
        _import_each(LIGHT_MODULES)
        _light.set()
        _wanted.wait(HEAVY_DELAY_S)
        _import_each(HEAVY_MODULES)
    finally:
        _light.set()
        _done.set()


def _import_each(names: tuple[str, ...]) -> None:
    for name in names:
        try:
            _import(name)
        except Exception as exc:  # a failing import shows up, with its traceback, on the page that needs it
            _log.warning("preload: importing %s failed: %s", name, exc)


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


def light_pending() -> bool:
    """True while a started preload is still in its light phase."""
    return _started.is_set() and not _light.is_set()


def wait_light(timeout_s: float = WAIT_TIMEOUT_S) -> None:
    """Block until the light phase is over (LIGHT_MODULES imported); at once when no preload was started."""
    if _started.is_set():
        _light.wait(timeout_s)


def pending() -> bool:
    """True while a started preload is still importing (only the first visits after a server start)."""
    return _started.is_set() and not _done.is_set()


def wait(timeout_s: float = WAIT_TIMEOUT_S, hurry: bool = True) -> None:
    """Block until the preload is over; returns at once when no preload was started (tests, AppTest).
    hurry: start the heavy phase now if it is still waiting (HEAVY_DELAY_S)."""
    if _started.is_set():
        if hurry:
            _wanted.set()
        _done.wait(timeout_s)


class HurryFor:
    """ASGI middleware: a browser that asks for one of these pages (by the last segment of its URL)
    starts the heavy phase at once, while it loads Streamlit's front end: that page needs torch."""

    def __init__(self, app, pages: frozenset[str]) -> None:
        self.app, self.pages = app, pages

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not _wanted.is_set():
            if scope["path"].rstrip("/").rsplit("/", 1)[-1] in self.pages:
                _wanted.set()
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def lifespan(_app: object) -> AsyncIterator[None]:
    """st.App's lifespan: start importing at server start; nothing to clean up at shutdown."""
    start()
    yield
