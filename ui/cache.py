"""Cached wrappers around vae_core. Keys: a model fingerprint plus every parameter that matters."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from vae_core.bundled import bundled_model_paths
from vae_core.data import read_local_labels
from vae_core.errors import LatentLabError
from vae_core.precompute import PRECOMPUTED_METHODS, load_sidecar
from vae_core.projection import Projection, dimension_order, fit_projection, pca_variance_ratio
from vae_core.subset import subset_indices

from . import thumbs
from .state import ModelEntry, engine

if TYPE_CHECKING:  # the rest of vae_core imports torch: see state.engine()
    import torch

    from vae_core import Dataset

CACHE_TTL_S = 3600  # derived arrays expire after an hour unused
MAX_ENTRIES = 32  # per cached function: bounds server memory with many visitors
# A fitted UMAP of 10,000 points holds about 30 MB, and a visitor can ask for any parameters in the URL.
MAX_FITS = 16
# One t-SNE or UMAP fit at a time across all sessions: each takes both cores for seconds, and running
# several at once would only make all of them, and every page, slower (as _RUNS does for training).
_FITTING = threading.Lock()
TRAINING_SET = "training set"  # train_images' source when it searched the real training set


@st.cache_resource(show_spinner="Loading test images…")
def test_set(dataset: str) -> Dataset:
    """The test split of a data set (read-only, shared). Offline, MNIST comes from the bundled files."""
    engine()
    from vae_core.data import load_dataset

    return load_dataset(dataset, "test")


def test_split(entry: ModelEntry) -> Dataset:
    """The test split a model's pages show: its own (a model trained here on a folder) or its data set's."""
    return entry.test_data if entry.test_data is not None else test_set(entry.dataset)


def test_labels(entry: ModelEntry) -> np.ndarray:
    """The classes of test_split(entry), (N,) int64. Read from the IDX file alone when the data set's
    test split is on disk (no PyTorch, no images: a bundled model's first scatter needs only these)."""
    if entry.test_data is None:
        labels = _local_test_labels(entry.dataset)
        if labels is not None:
            return labels
    return test_split(entry).labels.numpy()


@st.cache_resource(show_spinner=False)
def _local_test_labels(dataset: str) -> np.ndarray | None:
    labels = read_local_labels(dataset, "test")
    if labels is not None:
        labels.flags.writeable = False  # shared by every visitor
    return labels


@st.cache_data(ttl=CACHE_TTL_S, max_entries=MAX_ENTRIES, show_spinner="Encoding the test split…")
def latents(fingerprint: str, _entry: ModelEntry) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) of the whole test split, (N, Z) each: shipped with a bundled model, else encoded."""
    shipped = precomputed(_entry.id, fingerprint, _entry) if _entry.source == "bundled" else {}
    if "mu" in shipped and "logvar" in shipped and len(shipped["mu"]) == len(test_labels(_entry)):
        return shipped["mu"], shipped["logvar"]
    engine()
    from vae_core.latents import encode_dataset

    mu, logvar = encode_dataset(_entry.model, test_split(_entry))
    return mu.numpy(), logvar.numpy()


@st.cache_data(ttl=CACHE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def raw_axes(fingerprint: str, _entry: ModelEntry) -> tuple[int, int]:
    """The raw view's axes until the visitor picks others: the model's two most informative latent
    dimensions (largest average KL; an autoencoder's, the widest spread of μ). Dimensions 0 and 1 may
    be ones the model left unused, every point at 0 along them."""
    if _entry.config.latent_dim <= 2:
        return (0, 1)
    mu, logvar = latents(fingerprint, _entry)
    first, second = dimension_order(mu, logvar, autoencoder=_entry.config.kind == "ae")[:2]
    return int(first), int(second)


@st.cache_data(ttl=CACHE_TTL_S, max_entries=MAX_ENTRIES, show_spinner="Computing the test loss…")
def test_loss(fingerprint: str, _entry: ModelEntry) -> dict[str, float]:
    """The model's loss on its test split now: {"recon", "kl", "loss"}, nats per image."""
    engine()
    from vae_core.train import evaluate

    return evaluate(_entry.model, test_split(_entry).as_float())


@st.cache_resource(show_spinner=False)
def precomputed(model_id: str, fingerprint: str, _entry: ModelEntry) -> dict[str, np.ndarray]:
    """What a bundled model ships for its whole test split, read once: PCA / t-SNE / UMAP coordinates
    by method, and "mu" and "logvar" (empty if stale). Not its hover images: ui/thumbs.py holds those."""
    shipped, _ = load_sidecar(bundled_model_paths()[model_id], _entry.weights_hash)
    return {key: value for key, value in shipped.items() if not key.startswith("thumbs_")}


@contextmanager
def _one_fit_at_a_time(method: str):
    if method in ("raw", "pca"):  # milliseconds: never queued behind a long fit
        yield
        return
    with _FITTING:
        yield


@st.cache_resource(ttl=CACHE_TTL_S, max_entries=MAX_FITS, show_spinner=False)
def projection(
    fingerprint: str, _entry: ModelEntry, method: str, n: int, params: tuple, exact: bool = False
) -> Projection:
    """The projection of the fixed subset of n test points, as an object that can place new points.

    For bundled models with default parameters, PCA, t-SNE and UMAP come from the shipped coordinates
    (fitted on the whole test split); new points are then placed by that PCA, or by their nearest
    neighbours for t-SNE and UMAP.
    exact=True skips the shipped UMAP coordinates and fits UMAP on the subset, so new points are placed
    by its own transform (t-SNE has none, so it keeps the shipped ones).
    """
    mu, _ = latents(fingerprint, _entry)
    idx = subset_indices(len(mu), n)
    if has_shipped(_entry, method, params) and not (exact and method == "umap"):  # t-SNE has no transform anyway
        shipped = precomputed(_entry.id, fingerprint, _entry)
        if method == "pca":
            # Fitted on the whole split. Its map places new points exactly; scikit-learn is imported
            # (1.5 s on the first page otherwise) only when a layer needs it. The map holds the shipped
            # mu, one array for every cached n, not this call's copy from latents().
            fitted = dict(params, precomputed=True, explained_variance_ratio=pca_variance_ratio(mu))
            return Projection(method, shipped[method][idx], fitted, mu[idx], _pca_map(shipped.get("mu", mu)))
        return Projection(method, shipped[method][idx], dict(params, precomputed=True), mu[idx])  # by neighbours
    fit = dict(params)
    if exact and method == "umap" and has_shipped(_entry, method, params):
        # Fitted here for its transform, but started from the shipped layout: the view keeps its clusters
        # where they were without the extra points (a fit from scratch drew another map).
        fit["init"] = precomputed(_entry.id, fingerprint, _entry)[method][idx]
    if method != "raw":
        engine()  # scikit-learn, openTSNE or UMAP: never imported beside the preload (the caller has a spinner)
    with _one_fit_at_a_time(method):
        return fit_projection(mu[idx], method, **fit)


def _pca_map(mu: np.ndarray):
    """The PCA fitted on the whole test split (as the shipped coordinates were), fitted on first use."""
    fitted: list[Projection] = []

    def transform(new: np.ndarray) -> np.ndarray:
        if not fitted:
            fitted.append(fit_projection(mu, "pca"))
        return fitted[0].transform(new)

    return transform


def has_shipped(entry: ModelEntry, method: str, params: tuple) -> bool:
    """Whether this projection comes with the bundled model (its default parameters), and the model's
    sidecar really holds its coordinates for the whole test split: then it is not fitted here."""
    if entry.source != "bundled" or dict(params) != PRECOMPUTED_METHODS.get(method):
        return False
    shipped = precomputed(entry.id, entry.fingerprint, entry).get(method)
    return shipped is not None and len(shipped) == len(test_labels(entry))


@st.cache_data(ttl=CACHE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def thumbnails(fingerprint: str, _entry: ModelEntry, n: int) -> list[str]:
    """Tooltip images for the subset: each test digit beside its reconstruction from μ, as URLs. A
    bundled model ships them for the default subset (vae_core/precompute.py), and the server serves
    them (ui/thumbs.py): no decoding on a cold first page, and no images in the chart's data. Any
    other model or subset: data URLs of images made here."""
    n_total = len(test_labels(_entry))
    idx = subset_indices(n_total, n)
    if _entry.source == "bundled":  # shipped for subset_indices(N, TOOLTIP_POINTS): the same points if as many
        found = thumbs.shipped(_entry.id)
        whole = len(precomputed(_entry.id, fingerprint, _entry).get("mu", ())) == n_total  # the whole split
        if found is not None and found.owner == _entry.weights_hash and whole and len(found.pngs) == len(idx):
            return thumbs.urls(_entry.id, found.version, len(idx))
    mu, _ = latents(fingerprint, _entry)
    engine()
    import torch

    from vae_core.images import data_urls
    from vae_core.latents import tooltip_pngs

    data = test_split(_entry)
    return data_urls(tooltip_pngs(_entry.model, data.images[idx], torch.from_numpy(mu[idx])))


@st.cache_data(ttl=CACHE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def tsne_placed(
    fingerprint: str, _entry: ModelEntry, n: int, params: tuple, _layout: np.ndarray, _extra: np.ndarray, key: str
) -> np.ndarray:
    """Where the extra codes go in the t-SNE view on screen (its layout unchanged); `key` names the layout
    and the codes (the arrays themselves are not hashed)."""
    mu, _ = latents(fingerprint, _entry)
    engine()
    from vae_core.projection import tsne_place

    with _one_fit_at_a_time("tsne"):
        return tsne_place(mu[subset_indices(len(mu), n)], _layout, _extra, **dict(params))


# A training set as floats is 188 MB for MNIST: at most two data sets held, each dropped after an hour unused.
@st.cache_resource(show_spinner="Loading the training set…", ttl=CACHE_TTL_S, max_entries=2)
def train_images(dataset: str) -> tuple[torch.Tensor, str]:
    """(N, H*W) float training images for nearest-neighbour checks, or the test split when the
    training set cannot be had here (offline without its files), named in the second element."""
    engine()
    from vae_core.data import load_dataset

    try:
        data, source = load_dataset(dataset, "train"), TRAINING_SET
    except LatentLabError:
        data, source = test_set(dataset), "test split (the training set is not on this machine)"
    return data.images.flatten(1).float().div_(255.0), source


def nearest_training_images(dataset: str, images: torch.Tensor) -> tuple[torch.Tensor, str]:
    """For each image (N, 1, H, W), the closest training image in pixel space, same shape."""
    from vae_core.analysis import nearest_rows

    reference, source = train_images(dataset)
    idx, _ = nearest_rows(images.flatten(1).numpy(), reference.numpy())
    return reference[idx].view_as(images), source


def decode_np(entry: ModelEntry, z: np.ndarray) -> torch.Tensor:
    engine()
    import torch

    from vae_core.latents import decode

    return decode(entry.model, torch.as_tensor(z, dtype=torch.float32))
