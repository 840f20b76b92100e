"""The sidebar every page shares: the current model and the projection, both kept in the URL."""

from __future__ import annotations

import streamlit as st

from . import state, urlstate

DEFAULT_PROJECTION = "raw"


def _seed_from_url(key: str, options: list[str], default: str) -> str | None:
    """Before the widget exists: take its value from the URL when the URL changed (a link, Back), else
    keep the session's. No value in the URL means the default, so Back to such an address goes back to it.
    Returns a value the URL asked for that is not among the options (a model of an ended session)."""
    url_value = st.query_params.get(key)
    unknown = None
    if key not in st.session_state or st.session_state.get(_seen(key), None) != url_value:
        st.session_state[_seen(key)] = url_value
        if url_value is None:
            st.session_state[key] = default
        elif url_value in options:
            st.session_state[key] = url_value
        else:
            unknown = url_value
    if st.session_state.get(key) not in options:
        st.session_state[key] = default
    return unknown


def _seen(key: str) -> str:
    return "_url_" + key


def _write_to_url(defaults: dict[str, str]) -> None:
    """The pickers' values into the URL, a default one as no value at all, in one write if anything changed."""
    target = st.query_params.to_dict()
    for key, default in defaults.items():
        value = st.session_state[key]
        st.session_state[_seen(key)] = None if value == default else value
        if value == default:
            target.pop(key, None)
        else:
            target[key] = value
    urlstate.write(target)


def render() -> None:
    state.collect_kept()  # a training run stopped by the click that started this run: its model first
    pending = st.session_state.pop(state.PENDING_MODEL, None)
    if pending:
        st.session_state[state.MODEL] = pending
        st.session_state[_seen(state.MODEL)] = st.query_params.get(state.MODEL)  # the URL is written below
    ids = state.model_ids()
    if gone := _seed_from_url(state.MODEL, ids, state.default_model_id()):
        st.toast(
            f"The model in this address ({gone[:40]}) is not here: models trained or uploaded live only in "
            f"the session that made them. Showing {state.label_of(st.session_state[state.MODEL])}.",
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
    _write_to_url({state.MODEL: state.default_model_id(), state.PROJECTION: DEFAULT_PROJECTION})
