"""The bundled models' hover images over HTTP: the latent page's tooltips link them by URL instead of
carrying them in the chart's data.

As data URLs, the default 2,000 images are 1.8 MB of text in every chart sent to a visitor, held in
the session too: the browser drew the first scatter about 0.3 s later with them (README, "How
fast"). A bundled model's sidecar ships them as PNG files (vae_core/precompute.py); this route
serves each one from the server's memory. The URL names the model's fingerprint and a hash of the
images, so the browser may keep them for good. A model trained or uploaded in a session keeps data
URLs: its images exist only in that session.

The URLs are relative ("api/thumbs/…"): every page is one level deep (/latent), so they resolve under
Streamlit's base URL path, where the route is mounted too. app.py builds the route when the server
starts, so this module imports only the standard library and Starlette (which Streamlit's server has
already loaded); the sidecars are read on first use, once the preload's light phase is over (no torch).
"""

from __future__ import annotations

import functools
import hashlib
from typing import NamedTuple

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import preload

__all__ = ["PATH", "Shipped", "routes", "serve", "shipped", "urls"]

PATH = "api/thumbs"
TEMPLATE = PATH + "/{model_id}/{version}/{k}.png"
CACHE_CONTROL = "public, max-age=31536000, immutable"  # the version changes with the model or its images
MAX_DIGITS = 6  # an image number is 0 to 999,999, written without leading zeros


class Shipped(NamedTuple):
    owner: str  # the fingerprint of the model the sidecar belongs to (vae_core.precompute.fingerprint)
    version: str  # the URL's version: the owner and a hash of the images
    pngs: list[bytes]


def urls(model_id: str, version: str, n: int) -> list[str]:
    """The URLs of a bundled model's first n shipped hover images, in the shipped order."""
    return [TEMPLATE.format(model_id=model_id, version=version, k=k) for k in range(n)]


def routes() -> list[Route]:
    """The route, under the base URL path the server runs with (server.baseUrlPath)."""
    from streamlit import config

    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    prefix = f"/{base}" if base else ""
    return [Route(f"{prefix}/{TEMPLATE}", serve, methods=["GET"])]


def serve(request: Request) -> Response:
    """One PNG, or 404; 503 while the server is still starting (its page cannot be drawn yet either).
    Not async: Starlette runs it in a worker thread, as reading a sidecar the first time takes a while."""
    if preload.light_pending():
        return Response(status_code=503, headers={"Retry-After": "1", "Cache-Control": "no-store"})
    params, k = request.path_params, request.path_params["k"]
    if not (k.isascii() and k.isdigit() and len(k) <= MAX_DIGITS and str(int(k)) == k):
        return Response(status_code=404)
    found = shipped(params["model_id"])
    if found is None or params["version"] != found.version or int(k) >= len(found.pngs):
        return Response(status_code=404)
    return Response(found.pngs[int(k)], media_type="image/png", headers={"Cache-Control": CACHE_CONTROL})


def shipped(model_id: str) -> Shipped | None:
    """What a bundled model's sidecar ships as hover images, read once; None for any other id."""
    return _read(model_id) if model_id in _bundled() else None


@functools.cache
def _bundled() -> dict:
    preload.wait_light()  # never import the project's modules while the preload thread imports them
    from vae_core.bundled import bundled_model_paths

    return bundled_model_paths()


@functools.cache
def _read(model_id: str) -> Shipped | None:
    from vae_core.precompute import read_shipped_pngs

    found = read_shipped_pngs(_bundled()[model_id])  # 1.1 to 1.3 MB a model
    if found is None:
        return None
    owner, pngs = found
    digest = hashlib.sha256(b"".join(pngs)).hexdigest()[:8]
    return Shipped(owner, f"{owner}-{digest}", pngs)
