"""The sidebar every page shares: the current model and the projection, both kept in the URL."""

from __future__ import annotations

import streamlit as st

from . import state

DEFAULT_PROJECTION = "raw"


def _seed_from_url(key: str, options: list[str], default: str) -> None:
    """Before the widget exists: take its value from the URL once, else keep the session's."""
    url_value = st.query_params.get(key)
    if key not in st.session_state or st.session_state.get("_url_" + key) != url_value:
        if url_value in options:
            st.session_state[key] = url_value
        elif st.session_state.get(key) not in options:
            st.session_state[key] = default
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


def _write_to_url(key: str) -> None:
    value = st.session_state[key]
    st.query_params[key] = value
    st.session_state["_url_" + key] = value


def render() -> None:
    state.collect_kept()  # a training run stopped by the click that started this run: its model first
    pending = st.session_state.pop(state.PENDING_MODEL, None)
    if pending:
        st.session_state[state.MODEL] = pending
        st.query_params[state.MODEL] = pending
    ids = state.model_ids()
    _seed_from_url(state.MODEL, ids, state.default_model_id())
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
    _write_to_url(state.MODEL)
    _write_to_url(state.PROJECTION)
