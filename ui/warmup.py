"""Pay UMAP's numba compilation (and the training step's C) in the background at server start, not when
a visitor asks."""

from __future__ import annotations

import functools
import os
import threading
import time
from pathlib import Path

import streamlit as st

from vae_core.data import default_data_dir

from . import preload


def numba_cache_dir() -> Path:
    """A persistent folder for numba's compiled functions, so later server starts skip compiling."""
    return Path(os.environ.get("NUMBA_CACHE_DIR") or default_data_dir() / "numba-cache")


@functools.cache
def configure_numba_cache() -> None:
    """Must run before umap (and so numba) is first imported in this process."""
    folder = numba_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("NUMBA_CACHE_DIR", str(folder))
    except OSError:
        pass  # read-only home: numba falls back to compiling in memory


START_DELAY_S = 3.0  # let the first visitor's browser draw its page before compiling starts


def _run() -> None:
    """The thread: wait, drop to the lowest CPU priority (this thread only: on Linux a thread is a task
    with its own nice value, so visitors' script runs win the cores), then warm up."""
    preload.wait(hurry=False)  # the latent page can be drawn before the preload is over: never import beside it
    time.sleep(START_DELAY_S)
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass
    _warm()


def _warm() -> None:
    import numpy as np
    import sklearn.decomposition  # noqa: F401
    import sklearn.neighbors  # noqa: F401

    from vae_core.projection import fit_projection

    z = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    fit_projection(z, "umap", n_neighbors=10).transform(z[:5])  # compiles fit and transform paths
    import openTSNE  # noqa: F401  (no JIT, but its import is slow too)

    from vae_core import kernels

    kernels.load()  # the training step's C (vae_core/kernels.py): built once per machine, 0.3 s


@st.cache_resource(show_spinner=False)
def start_background_warmup() -> threading.Thread:
    """Once per server process: a daemon thread compiles UMAP (and loads openTSNE) while visitors read."""
    # Two threads importing the same packages at once (sklearn -> narwhals, pandas, altair) can
    # deadlock on Python's per-module import locks: the shared ones are imported before the thread
    # starts, by the preload (ui/preload.py; the thread waits for it) or here when there is none.
    # scikit-learn itself, about a second of imports, is left to the thread so it never delays the
    # first page.
    thread = threading.Thread(target=_run, name="latent-lab-warmup", daemon=True)
    if os.environ.get("LATENT_LAB_WARMUP", "1") == "0":  # the test suite turns it off to save CPU
        return thread
    if not preload.pending():
        import altair  # noqa: F401
        import pandas  # noqa: F401
    thread.start()
    return thread
