"""Page state in the URL query string, so a copied link reopens the same view."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

SHARED_KEYS = ("model", "projection")  # written by the sidebar on every page


def _seen(key: str) -> str:
    return "_url_" + key


def restore(spec: dict[str, Callable[[str], object]]) -> dict[str, object]:
    """Values from the URL that this session has not applied yet, parsed; bad values are ignored."""
    fresh = {}
    for key, cast in spec.items():
        raw = st.query_params.get(key)
        if raw is None or st.session_state.get(_seen(key)) == raw:
            continue
        st.session_state[_seen(key)] = raw
        try:
            fresh[key] = cast(raw)
        except (TypeError, ValueError):
            continue  # a hand-edited link with a bad value: keep the page's default
    return fresh


def publish(values: dict[str, object]) -> None:
    """Write this page's state to the URL and drop other pages' keys."""
    for key in list(st.query_params):
        if key not in SHARED_KEYS and key not in values:
            del st.query_params[key]
    for key, value in values.items():
        text = str(value)
        st.query_params[key] = text
        st.session_state[_seen(key)] = text


def link_box() -> None:
    """The current address, with Streamlit's copy button, to share this exact view."""
    query = "&".join(f"{k}={v}" for k, v in st.query_params.items())
    base = (st.context.url or "").split("?")[0]
    with st.popover("Copy link to this view", icon=":material/link:"):
        st.code(f"{base}?{query}" if query else base, language=None)
        st.caption("Opens this page with the same model, projection and settings.")
