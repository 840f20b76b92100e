"""Page state in the URL query string, so a copied link reopens the same view."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

SHARED_KEYS = ("model", "projection")  # the sidebar's: on every page (a change of page empties the URL)


def seen(key: str) -> str:
    """Session key of the value this session last read from or wrote to the URL for `key`."""
    return "_url_" + key


def shared_values() -> dict[str, str]:
    """The sidebar's choices (model, projection), as the URL spells them."""
    return {key: str(st.session_state[key]) for key in SHARED_KEYS if key in st.session_state}


def restore(spec: dict[str, Callable[[str], object]]) -> dict[str, object]:
    """Values from the URL that this session has not applied yet, parsed; bad values are ignored."""
    fresh = {}
    for key, cast in spec.items():
        raw = st.query_params.get(key)
        if raw is None or st.session_state.get(seen(key)) == raw:
            continue
        st.session_state[seen(key)] = raw
        try:
            fresh[key] = cast(raw)
        except (TypeError, ValueError):
            continue  # a hand-edited link with a bad value: keep the page's default
    return fresh


def write(target: dict[str, str], mine: dict[str, str]) -> None:
    """Make the query string exactly `target`, in one message and only if it changes: the browser adds a
    history entry for every change, so one write per key made Back take several presses per page.
    mine: the values this writer owns, noted as applied (other keys may be a deep link still to apply)."""
    for key, value in mine.items():
        st.session_state[seen(key)] = value
    if target != st.query_params.to_dict():
        st.query_params.from_dict(target)


def publish(values: dict[str, object]) -> None:
    """Write the sidebar's choices and this page's state to the URL, in one write; other pages' keys go."""
    mine = shared_values() | {key: str(value) for key, value in values.items()}
    write(mine, mine)


def link_box() -> None:
    """The current address, with Streamlit's copy button, to share this exact view."""
    query = "&".join(f"{k}={v}" for k, v in (st.query_params.to_dict() | shared_values()).items())
    base = (st.context.url or "").split("?")[0]
    with st.popover("Link to this view", icon=":material/link:"):
        st.code(f"{base}?{query}" if query else base, language=None)
        st.caption("Opens this page with the same model, projection and settings.")
