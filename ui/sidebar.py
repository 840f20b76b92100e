"""The sidebar every page shares: the current model and the projection, both kept in the URL."""

from __future__ import annotations

import streamlit as st

from . import state, urlstate

DEFAULT_PROJECTION = "raw"


def _seed_from_url(key: str, options: list[str], default: str) -> bool:
    """Before the widget exists: take its value from the URL when the URL changed (a link, Back), else
    keep the session's (a change of page empties the query string). Returns whether the URL asked for a
    value that is not among the options (a model of an ended session)."""
    url_value = st.query_params.get(key)
    unknown = False
    if key not in st.session_state or st.session_state.get(urlstate.seen(key)) != url_value:
        st.session_state[urlstate.seen(key)] = url_value
        if url_value in options:
            st.session_state[key] = url_value
        elif url_value is not None:
            unknown = True
    if st.session_state.get(key) not in options:
        st.session_state[key] = default
    return unknown


def render(write_url: bool = True) -> None:
    """write_url: put the model and the projection in the URL now; False when the page will, together
    with its own settings (urlstate.publish), so that a run changes the address, a history entry, once."""
    state.collect_kept()  # a training run stopped by the click that started this run: its model first
    pending = st.session_state.pop(state.PENDING_MODEL, None)
    if pending:
        st.session_state[state.MODEL] = pending
        st.session_state[urlstate.seen(state.MODEL)] = st.query_params.get(state.MODEL)  # not the URL's to undo
    ids = state.model_ids()
    if _seed_from_url(state.MODEL, ids, state.default_model_id()):
        st.toast(
            "The model this address names is not here: a model trained or uploaded lives only in the session "
            f"that made it, and only its last four. Showing {state.label_of(st.session_state[state.MODEL])}.",
            icon=":material/info:",
        )
    _seed_from_url(state.PROJECTION, list(state.PROJECTION_LABELS), DEFAULT_PROJECTION)
    with st.sidebar:
        labels = {model_id: state.label_of(model_id) for model_id in ids}  # computed here, in the run
        st.selectbox(
            "Model",
            ids,
            key=state.MODEL,
            format_func=labels.__getitem__,
            help="Bundled models, plus any you trained or uploaded in this session (only you see those).",
        )
        st.selectbox(
            "Projection to 2-D",
            list(state.PROJECTION_LABELS),
            key=state.PROJECTION,
            format_func=state.PROJECTION_LABELS.get,
            help="How the Z-dimensional means are drawn in two dimensions.",
        )
    if write_url:
        shared = urlstate.shared_values()
        urlstate.write(st.query_params.to_dict() | shared, shared)
