"""The bundled models' hover images over HTTP: the latent page's tooltips link them by URL instead of
carrying them in the chart's data.

As data URLs, the default 2,000 images are 1.8 MB of text in every chart sent to a visitor, held in
the session too: the browser drew the first scatter 0.25 s later with them than without (README,
"How fast"). A bundled model's sidecar ships them as PNG files (vae_core/precompute.py); this route
serves each one from the server's memory, with a URL that names the model's fingerprint, so the
browser may keep it for good. A model trained or uploaded in a session keeps data URLs: its images
exist only in that session.

The URLs are relative ("api/thumbs/…"): every page is one level deep (/latent), so they resolve under
Streamlit's base URL path, where the route is mounted too. app.py builds the route when the server
starts, so this module imports only the standard library and Starlette (which Streamlit's server has
already loaded); the sidecars are read on the first request, once the preload is over.
"""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import preload

__all__ = ["PATH", "routes", "serve", "urls"]

PATH = "api/thumbs"
CACHE_CONTROL = "public, max-age=31536000, immutable"  # the URL changes with the model's fingerprint


def urls(model_id: str, fingerprint: str, n: int) -> list[str]:
    """The URLs of a bundled model's first n shipped hover images, in the shipped order."""
    return [f"{PATH}/{model_id}/{fingerprint}/{k}.png" for k in range(n)]


def routes() -> list[Route]:
    """The route, under the base URL path the server runs with (server.baseUrlPath)."""
    from streamlit import config

    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    prefix = f"/{base}" if base else ""
    return [Route(f"{prefix}/{PATH}/{{model_id}}/{{fingerprint}}/{{k:int}}.png", serve, methods=["GET"])]


def serve(request: Request) -> Response:
    """One PNG, or 404. Not async: Starlette runs it in a worker thread, where waiting for the preload
    (a request that comes during the first seconds after a start) blocks nobody else."""
    params = request.path_params
    shipped = _shipped(params["model_id"]) if params["model_id"] in _bundled() else None
    if shipped is None or params["fingerprint"] != shipped[0] or not 0 <= params["k"] < len(shipped[1]):
        return Response(status_code=404)
    return Response(shipped[1][params["k"]], media_type="image/png", headers={"Cache-Control": CACHE_CONTROL})


@functools.cache
def _bundled() -> dict:
    preload.wait()  # never import the project's modules while the preload thread imports them
    from vae_core.bundled import bundled_model_paths

    return bundled_model_paths()


@functools.cache
def _shipped(model_id: str) -> tuple[str, list[bytes]] | None:
    """(fingerprint, PNG files) a bundled model's sidecar ships, read once: 1.1 to 1.3 MB a model."""
    from vae_core.precompute import read_shipped_pngs

    return read_shipped_pngs(_bundled()[model_id])
