"""The latent page's plain scatter with every projection ready in it: the buttons under the chart switch
between them in the browser, at once, and the server hears of the choice afterwards (sidebar, URL).

A switch through the sidebar is a full rerun: Streamlit's round trip, then a new chart view. A button
redraws the chart in the browser at once; the rerun that follows (to update the sidebar, the URL and
the captions) then has the browser rebuild the view once, on the same picture (see spec()). README,
"How fast", has both measured.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from vae_core.charts import SWITCH_PARAM, switch_scatter_spec
from vae_core.precompute import PRECOMPUTED_METHODS

from . import cache, state, views
from .latent_view import PLOT_ERRORS

KEY = "latent_switch"  # the chart's widget key (plus its revision): its state holds the buttons' choice
SHOWN = "_switch_shown"  # the choice the browser's chart shows, as far as the server knows
SENT = "_switch_sent"  # (spec template key, revision) of the chart the browser has
HINT = " The buttons under the plot redraw the same μ in each projection at once: follow one cluster from raw to UMAP."
LAYERED_HINT = " The projection buttons are on the plain view (μ, no layers); here the sidebar switches projection."
READY = "_switch_ready"  # (fingerprint, method, n, params) -> coordinates of t-SNE / UMAP fitted in this session
MAX_READY = 8  # kept per visitor: 80 kB each at 10,000 points


def applies(layers) -> bool:
    """Only the plain view of μ (latent_view.Layers all off): the others are fitted for one projection
    at a time."""
    return not (layers.sampled or layers.sigma or layers.prior or layers.manifold)


def on_choice(key: str) -> None:
    """The buttons were used: the chart already shows the choice; make it the session's projection, so
    the sidebar, the URL and the rest of the page follow in the rerun that comes next."""
    event = st.session_state.get(key) or {}
    chosen = (event.get("selection") or {}).get(SWITCH_PARAM) or []
    method = chosen[0].get("projection") if chosen else None
    if method in state.PROJECTION_LABELS:
        st.session_state[state.PROJECTION] = method
        st.session_state[SHOWN] = method


def params_of(method: str, entry: state.ModelEntry) -> dict:
    """A projection's parameters when its controls are not on the page: whatever the session holds
    for them (the last run's controls, or a link's values), else the defaults. Raw dimensions that
    this model does not have (left from a larger model) fall back to its default axes."""
    get = st.session_state.get
    if method == "raw":
        latent_dim = entry.config.latent_dim
        if latent_dim <= 2:
            return {"dims": (0, 1)}
        first, second = views.default_axes(entry)
        if get(views.AXES_OF) != entry.fingerprint:  # the session's axes are another model's, or none
            return {"dims": (first, second)}
        dims = (int(get("dim_x", first)), int(get("dim_y", second)))
        return {"dims": dims if max(dims) < latent_dim else (first, second)}
    if method == "tsne":
        return {"perplexity": get("perp", PRECOMPUTED_METHODS["tsne"]["perplexity"])}
    if method == "umap":
        defaults = PRECOMPUTED_METHODS["umap"]
        return {"n_neighbors": get("nn", defaults["n_neighbors"]), "min_dist": get("md", defaults["min_dist"])}
    return {}


def ready(entry: state.ModelEntry, n: int, method: str, params: dict, embedding: np.ndarray) -> dict:
    """method -> (coordinates, parameters) for each projection that appears without waiting: the one
    chosen (already fitted), raw and PCA (milliseconds), and t-SNE / UMAP if shipped or fitted earlier
    in this session. The others are offered too, and computed when chosen; one that fails here is
    left out (its button says it is not computed) rather than taking the page down.

    The session keeps the coordinates of its own fits rather than trusting the server's cache to still
    hold them: with many visitors that cache drops entries, and a t-SNE refitted here would stall the
    page without a word."""
    done = st.session_state.setdefault(READY, {})
    own = (entry.fingerprint, method, n, tuple(sorted(params.items())))
    if method in ("tsne", "umap") and not cache.has_shipped(entry, method, own[3]):
        done.pop(own, None)
        done[own] = embedding  # the most recent last: the oldest goes first
        while len(done) > MAX_READY:
            del done[next(iter(done))]
    out = {}
    for other in state.PROJECTION_LABELS:
        if other == method:
            out[other] = (embedding, params)
            continue
        p = params_of(other, entry)
        key = (entry.fingerprint, other, n, tuple(sorted(p.items())))
        if key in done:
            done[key] = done.pop(key)
            out[other] = (done[key], p)
        elif other in ("raw", "pca") or cache.has_shipped(entry, other, key[3]):
            try:
                out[other] = (cache.projection(entry.fingerprint, entry, other, n, key[3]).embedding, p)
            except PLOT_ERRORS:
                continue
    return out


def frame_of(entry: state.ModelEntry, n: int, coords: dict) -> pd.DataFrame:
    """class, index, image, then x_<method>, y_<method> in the sidebar's order."""
    first = next(iter(coords.values()))[0]
    frame = views.scatter_frame_for(entry, first, n).drop(columns=["x", "y"])
    for method in state.PROJECTION_LABELS:
        if method in coords:
            xy = coords[method][0]
            frame[f"x_{method}"] = xy[:, 0].astype(float)
            frame[f"y_{method}"] = xy[:, 1].astype(float)
    return frame


def choices(coords: dict) -> dict[str, tuple[str, str, str]]:
    """Every projection as a button: label and axis titles (a projection not computed yet keeps its
    method's titles; raw's name its dimensions only once they are known)."""
    out = {}
    for method, label in state.PROJECTION_LABELS.items():
        params = coords[method][1] if method in coords else {"dims": (0, 1)}
        out[method] = (label, *views.axis_titles(method, params))
    return out


def spec(entry: state.ModelEntry, frame: pd.DataFrame, methods: dict, method: str) -> tuple[dict, str]:
    """The chart's spec, opening on `method`, and its widget key.

    The key stays while the browser's chart already shows `method` (it was chosen with the buttons, or
    nothing changed): after a button choice, the spec's opening choice catches up with it, and the
    browser rebuilds the view on that same picture. Otherwise (the sidebar, another page, another
    model, new columns) the key changes too. Two things in Streamlit's front end make this necessary:
    it rebuilds a chart whose spec text changed, and it restores a rebuilt chart's last selection when
    the key is the same (also when it goes full screen). A rebuilt chart whose spec still opened on an
    older choice would draw that one while the restored selection, the sidebar and the URL held the
    newer; and with a restored selection equal to a later click's choice, Streamlit would not report
    that click.
    """
    template = (entry.fingerprint, tuple(frame.columns), tuple(entry.class_names), tuple(methods.items()))
    sent = st.session_state.get(SENT)  # (template, revision) of the last run's chart
    on_page = sent is not None and f"{KEY}-{sent[1]}" in st.session_state  # else the browser makes a new view
    if on_page and sent[0] == template and st.session_state.get(SHOWN) == method:
        revision = sent[1]
    else:
        revision = sent[1] + 1 if sent else 0
    st.session_state[SENT] = (template, revision)
    st.session_state[SHOWN] = method
    return switch_scatter_spec(frame, entry.class_names, methods, method, revision), f"{KEY}-{revision}"


def show(where, entry: state.ModelEntry, n: int, method: str, params: dict, embedding: np.ndarray) -> pd.DataFrame:
    """Draw the switchable scatter; returns the shown projection's coordinates as a table (for the CSV)."""
    coords = ready(entry, n, method, params, embedding)
    frame = frame_of(entry, n, coords)
    chart, key = spec(entry, frame, choices(coords), method)
    where.vega_lite_chart(
        chart, width="stretch", key=key, on_select=partial(on_choice, key), selection_mode=[SWITCH_PARAM]
    )
    table = frame[["class", "index"]].copy()
    table["x"], table["y"] = frame[f"x_{method}"], frame[f"y_{method}"]
    return table[["x", "y", "class", "index"]]
