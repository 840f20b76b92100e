"""The shipped t-SNE / UMAP / PCA coordinates belong to the bundled models they sit beside."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from starlette.requests import Request

from vae_core import encode_dataset, load_checkpoint, load_dataset
from vae_core.bundled import bundled_model_paths
from vae_core.precompute import PRECOMPUTED_METHODS, fingerprint, load_latents, load_precomputed, sidecar_path
from vae_core.projection import project

PROJECTED = [m for m, p in bundled_model_paths().items() if sidecar_path(p).is_file()]


def test_every_bundled_model_with_z_at_least_2_ships_coordinates() -> None:
    for model_id, path in bundled_model_paths().items():
        model, _ = load_checkpoint(path)
        if model.config.latent_dim >= 2:
            assert model_id in PROJECTED, f"run: python -m vae_core.precompute {path}"


@pytest.mark.parametrize("model_id", PROJECTED)
def test_shipped_coordinates_match_their_model(model_id: str) -> None:
    path = bundled_model_paths()[model_id]
    model, meta = load_checkpoint(path)
    coords, params = load_precomputed(path, model)
    assert set(coords) == set(PRECOMPUTED_METHODS)
    test = load_dataset(meta["dataset"], "test")
    mu, _ = encode_dataset(model, test)
    for method, xy in coords.items():
        assert xy.shape == (len(test), 2) and np.isfinite(xy).all()
        assert params[method]["seed"] == 0
    # PCA is deterministic: recomputing it from the model's means gives the shipped coordinates
    np.testing.assert_allclose(coords["pca"], project(mu.numpy(), "pca"), atol=1e-3)


@pytest.mark.parametrize("model_id", list(bundled_model_paths()))
def test_the_fingerprint_read_without_torch_is_the_models(model_id: str) -> None:
    """The app names a bundled model, and checks its sidecar, from the file alone (ui/state.py)."""
    from vae_core.checkpoint import read_checkpoint
    from vae_core.precompute import _sidecar_header, fingerprint_arrays

    path = bundled_model_paths()[model_id]
    config, meta, weights = read_checkpoint(path)
    model, loaded_meta = load_checkpoint(path)
    assert config == model.config and meta == loaded_meta
    assert fingerprint_arrays(config, weights) == fingerprint(model)
    if sidecar_path(path).is_file():
        assert _sidecar_header(sidecar_path(path))["fingerprint"] == fingerprint(model)


def test_coordinates_of_another_model_are_ignored() -> None:
    path = bundled_model_paths()[PROJECTED[0]]
    model, _ = load_checkpoint(path)
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)  # any change to the weights changes the fingerprint
    assert load_precomputed(path, model) == ({}, {})
    assert fingerprint(model) != fingerprint(load_checkpoint(path)[0])


@pytest.mark.parametrize("model_id", PROJECTED)
def test_shipped_latents_are_the_encoders_output_on_the_test_split(model_id: str) -> None:
    """The app's first page reads these instead of encoding 10,000 images: they must be what it would get."""
    path = bundled_model_paths()[model_id]
    model, meta = load_checkpoint(path)
    shipped = load_latents(path, model)
    assert shipped is not None, f"run: python -m vae_core.precompute {path}"
    mu, logvar = encode_dataset(model, load_dataset(meta["dataset"], "test"))
    np.testing.assert_allclose(shipped[0], mu.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(shipped[1], logvar.numpy(), rtol=1e-4, atol=1e-4)


def test_latents_of_another_model_are_ignored() -> None:
    path = bundled_model_paths()[PROJECTED[0]]
    model, _ = load_checkpoint(path)
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    assert load_latents(path, model) is None


def test_a_bundled_models_pca_is_the_shipped_one_and_its_map_places_points_exactly() -> None:
    """The page's PCA of a bundled model: the shipped coordinates (no scikit-learn on the first page),
    with the variance shares and an exact map for new points, both of the PCA that made them."""
    from ui import cache, state
    from vae_core.projection import fit_projection

    entry = state.get_entry("mnist-vae-z20")
    mu, _ = cache.latents(entry.fingerprint, entry)
    proj = cache.projection(entry.fingerprint, entry, "pca", 300, ())
    idx = cache.subset_indices(len(mu), 300)
    full = fit_projection(mu, "pca")
    np.testing.assert_allclose(proj.embedding, full.embedding[idx], atol=1e-4)
    assert (
        proj.params["precomputed"]
        and proj.params["explained_variance_ratio"] == full.params["explained_variance_ratio"]
    )
    assert proj.placement == "exact"
    np.testing.assert_allclose(proj.transform(mu[:7]), full.embedding[:7], atol=1e-4)


# --- shipped hover images ---------------------------------------------------------------------------


def url_pixels(url: str) -> np.ndarray:
    import base64

    return png_pixels(base64.b64decode(url.split(",", 1)[1]))


def png_pixels(png: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)


@pytest.mark.parametrize("model_id", PROJECTED)
def test_shipped_hover_images_are_the_models_digit_and_reconstruction(model_id: str) -> None:
    """The first page shows these instead of decoding and encoding 2,000 images: they must be what it
    would draw (pixels within one grey level: another CPU may round a reconstruction differently)."""
    from vae_core.latents import subset_indices, tooltip_pngs
    from vae_core.precompute import TOOLTIP_POINTS, load_sidecar, shipped_pngs

    path = bundled_model_paths()[model_id]
    model, meta = load_checkpoint(path)
    tensors, _ = load_sidecar(path, model)
    shipped = shipped_pngs(tensors)
    assert shipped is not None, f"run: python -m vae_core.precompute --thumbnails-only {path}"
    test = load_dataset(meta["dataset"], "test")
    idx = subset_indices(len(test), TOOLTIP_POINTS)
    mu, _ = encode_dataset(model, test.as_float()[idx])
    fresh = tooltip_pngs(model, test.images[idx], mu)
    assert len(shipped) == len(fresh) == min(TOOLTIP_POINTS, len(test))
    for a, b in zip(shipped, fresh, strict=True):
        diff = np.abs(png_pixels(a) - png_pixels(b))
        assert diff.shape == (test.image_shape[0], 2 * test.image_shape[1] + 2) and diff.max() <= 1


def test_the_shipped_subset_is_the_latent_pages_default() -> None:
    from ui.views import DEFAULT_POINTS
    from vae_core.precompute import TOOLTIP_POINTS

    assert TOOLTIP_POINTS == DEFAULT_POINTS


def test_png_files_survive_packing_into_arrays() -> None:
    from vae_core.precompute import pack_pngs, shipped_pngs

    pngs = [b"\x89PNG one", b"", b"three bytes and more"]
    assert shipped_pngs(pack_pngs(pngs)) == pngs
    assert shipped_pngs({"mu": np.zeros(2)}) is None


def test_a_bundled_model_serves_its_shipped_hover_images_and_computes_other_subsets(monkeypatch) -> None:
    import vae_core.latents
    from ui import cache, state, thumbs

    calls = []
    real = vae_core.latents.tooltip_pngs

    def counting(*args):
        calls.append(len(args[1]))
        return real(*args)

    monkeypatch.setattr(vae_core.latents, "tooltip_pngs", counting)  # ui/cache.py imports it when called
    entry = state.get_entry("mnist-vae-z2")
    links = cache.thumbnails.__wrapped__(entry.fingerprint, entry, 2000)
    version = thumbs.shipped("mnist-vae-z2").version
    assert calls == [] and version.startswith(entry.weights_hash + "-")
    assert links == [f"api/thumbs/mnist-vae-z2/{version}/{k}.png" for k in range(2000)]
    shipped = [served(link) for link in links]  # what the server's route answers for each link
    other = cache.thumbnails.__wrapped__(entry.fingerprint, entry, 500)
    assert calls == [500] and len(other) == 500 and other[0].startswith("data:image/png;base64,")
    # The 500 are among the 2,000 (the same subset), with the same images (within one grey level)
    at = np.searchsorted(cache.subset_indices(10000, 2000), cache.subset_indices(10000, 500))
    for url, i in zip(other, at, strict=True):
        assert np.abs(url_pixels(url) - png_pixels(shipped[i])).max() <= 1


def served(link: str, status: int = 200) -> bytes:
    """The body ui/thumbs.py's route answers for a relative link, checked against `status`."""
    from starlette.routing import Match

    from ui import thumbs

    (route,) = thumbs.routes()
    match, child = route.matches({"type": "http", "path": "/" + link, "method": "GET"})
    if match != Match.FULL:
        assert status == 404, link
        return b""
    response = thumbs.serve(Request({"type": "http", "method": "GET", "path": "/" + link, **child}))
    assert response.status_code == status, link
    if status == 200:
        assert response.media_type == "image/png" and "immutable" in response.headers["cache-control"]
    return response.body


def test_the_route_serves_only_the_shipped_images_of_the_current_version() -> None:
    from ui import thumbs
    from vae_core.precompute import read_shipped_pngs

    owner, pngs = read_shipped_pngs(bundled_model_paths()["mnist-vae-z20"])
    version = thumbs.shipped("mnist-vae-z20").version
    assert version == f"{owner}-{hashlib.sha256(b''.join(pngs)).hexdigest()[:8]}"  # renewed images: a new URL
    assert served(f"api/thumbs/mnist-vae-z20/{version}/0.png") == pngs[0]
    assert served(f"api/thumbs/mnist-vae-z20/{version}/{len(pngs) - 1}.png") == pngs[-1]
    for bad in (
        f"api/thumbs/mnist-vae-z20/{version}/{len(pngs)}.png",  # past the shipped ones
        f"api/thumbs/mnist-vae-z20/{version}/-1.png",
        f"api/thumbs/mnist-vae-z20/{version}/007.png",  # one image, one URL
        f"api/thumbs/mnist-vae-z20/{version}/{'9' * 5000}.png",  # no int() of 5,000 digits
        f"api/thumbs/mnist-vae-z20/{version}/x.png",
        f"api/thumbs/mnist-vae-z20/{owner}/0.png",  # an older URL, without the images' hash
        f"api/thumbs/mnist-vae-z20/{'0' * 16}-{version[-8:]}/0.png",  # weights changed since
        f"api/thumbs/no-such-model/{version}/0.png",
        f"api/thumbs/mnist-vae-z20/{version}/0.png/more",
    ):
        served(bad, 404)


def test_the_route_answers_503_while_the_server_is_starting(monkeypatch) -> None:
    from ui import preload, thumbs

    monkeypatch.setattr(preload, "light_pending", lambda: True)  # its images need no torch: not `pending`
    version = thumbs.shipped("mnist-vae-z2").version
    (route,) = thumbs.routes()
    _, child = route.matches({"type": "http", "path": f"/api/thumbs/mnist-vae-z2/{version}/0.png", "method": "GET"})
    response = thumbs.serve(Request({"type": "http", "method": "GET", **child}))
    assert response.status_code == 503 and response.headers["retry-after"] == "1"


def test_the_route_lives_under_the_servers_base_url_path(monkeypatch) -> None:
    from streamlit import config

    from ui import thumbs

    monkeypatch.setattr(config, "get_option", lambda key: "/demo/" if key == "server.baseUrlPath" else None)
    assert [r.path for r in thumbs.routes()] == ["/demo/api/thumbs/{model_id}/{version}/{k}.png"]


def test_thumbnails_only_adds_hover_images_without_refitting(tmp_path) -> None:
    import shutil

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from vae_core.precompute import main, shipped_pngs

    source = bundled_model_paths()["digits-vae-z2"]
    (tmp_path / "projections").mkdir()
    target = tmp_path / source.name
    shutil.copy(source, target)
    with safe_open(str(sidecar_path(source)), "pt") as f:
        header = f.metadata()
    before = {k: v for k, v in load_file(str(sidecar_path(source))).items() if not k.startswith("thumbs")}
    save_file(before, str(sidecar_path(target)), header)  # a sidecar from before hover images shipped
    assert main(["--thumbnails-only", str(target)]) == 0
    after = load_file(str(sidecar_path(target)))
    assert all(torch.equal(after[k], v) for k, v in before.items())
    made = shipped_pngs({k: v.numpy() for k, v in after.items()})
    shipped = shipped_pngs({k: v.numpy() for k, v in load_file(str(sidecar_path(source))).items()})
    assert len(made) == len(shipped) == 359
    assert all(np.abs(png_pixels(a) - png_pixels(b)).max() <= 1 for a, b in zip(made, shipped, strict=True))
