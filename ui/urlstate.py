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


def write(target: dict[str, str]) -> None:
    """Make the query string exactly `target`, in one message and only if it changes: the browser adds a
    history entry for every change, so one write per key made Back take several presses per page."""
    if target != st.query_params.to_dict():
        st.query_params.from_dict(target)


def publish(values: dict[str, object]) -> None:
    """Write this page's state to the URL and drop other pages' keys."""
    shared = {key: value for key, value in st.query_params.to_dict().items() if key in SHARED_KEYS}
    own = {key: str(value) for key, value in values.items()}
    for key, text in own.items():
        st.session_state[_seen(key)] = text
    write(shared | own)


def link_box() -> None:
    """The current address, with Streamlit's copy button, to share this exact view. The model and the
    projection are spelled out even at their defaults (the address bar leaves those out), so the link
    keeps its meaning if the defaults change."""
    pinned = {key: st.session_state[key] for key in SHARED_KEYS if key in st.session_state}
    query = "&".join(f"{k}={v}" for k, v in (pinned | st.query_params.to_dict()).items())
    base = (st.context.url or "").split("?")[0]
    with st.popover("Copy link to this view", icon=":material/link:"):
        st.code(f"{base}?{query}" if query else base, language=None)
        st.caption("Opens this page with the same model, projection and settings.")
