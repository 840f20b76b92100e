"""Who may make the server touch its own folders, and who sees its paths in messages.

LATENT_LAB_PUBLIC=1 (the hosted demo): nobody. LATENT_LAB_PUBLIC=0: every visitor (a trusted lab
server). Unset: only a visitor on this machine, so an app started without the switch and reached from
elsewhere does not open its folders to whoever has the link.
"""

from __future__ import annotations

import ipaddress
import os

import streamlit as st

__all__ = ["PUBLIC_ENV", "folders_allowed", "public_demo", "public_text"]

PUBLIC_ENV = "LATENT_LAB_PUBLIC"  # "1" on a public demo: no server folders, no 'idx' data set, no paths shown


def _switch() -> bool | None:
    value = os.environ.get(PUBLIC_ENV, "").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    return None


def public_demo() -> bool:
    """The app runs as a public demo (LATENT_LAB_PUBLIC=1)."""
    return _switch() is True


def _local_visitor() -> bool:
    """The visitor's browser runs on this machine. Streamlit gives no address for 127.0.0.1 and ::1
    (nor outside a session; AppTest's stand-in runtime gives a mock, not a string); an IPv4-mapped
    loopback address counts too."""
    ip = st.context.ip_address
    if not isinstance(ip, str):
        return not _proxied()
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (address.is_loopback or bool(mapped and mapped.is_loopback)) and not _proxied()


def _proxied() -> bool:
    """The request came through a reverse proxy that says so (nginx and the like): then a loopback address
    says nothing about where the visitor is. (A plain tunnel, such as ssh -L, cannot be told apart.)"""
    headers = st.context.headers
    try:
        return any(name in headers for name in ("X-Forwarded-For", "Forwarded", "X-Real-Ip"))
    except TypeError:  # AppTest's stand-in runtime
        return False


def folders_allowed() -> bool:
    """This visitor may name a server folder (the train page's IDX folder box and the 'idx' data set)."""
    switch = _switch()
    return not switch if switch is not None else _local_visitor()


def public_text(exc: BaseException) -> str:
    """An error's message for this visitor: without the server's paths unless they may use its folders."""
    return str(exc) if folders_allowed() else getattr(exc, "public", None) or str(exc)
