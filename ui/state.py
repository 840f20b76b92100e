"""Session-state keys and the model registry (bundled models shared, user models per session)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import streamlit as st
import torch

from vae_core import VAE, Dataset, load_checkpoint
from vae_core.bundled import DEFAULT_MODEL, bundled_model_paths, model_label
from vae_core.precompute import fingerprint

# Session-state keys, in one place.
MODEL = "model"  # id of the current model (sidebar picker, in the URL)
PROJECTION = "projection"  # "raw" | "pca" | "tsne" | "umap" (sidebar picker, in the URL)
USER_MODELS = "user_models"  # id -> ModelEntry: trained or uploaded in this session only
FLASH = "flash"  # a message to show once after a rerun
PENDING_MODEL = "pending_model"  # a new model to select before the picker is drawn next run

PROJECTION_LABELS = {"raw": "raw (two latent dims)", "pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
MAX_USER_MODELS = 4  # per session; the oldest is dropped beyond this, bounding memory


@dataclass
class ModelEntry:
    """A model with what the pages need to know about it."""

    id: str
    model: VAE = field(repr=False)
    meta: dict = field(repr=False)
    source: str  # "bundled" | "trained" | "uploaded"
    fingerprint: str  # hash of the weights: the cache key for everything derived from them
    test_data: Dataset | None = field(default=None, repr=False)  # a trained model's own test split (e.g. idx)

    @property
    def dataset(self) -> str:
        return self.meta.get("dataset", "mnist")

    @property
    def label(self) -> str:
        cfg = self.model.config
        suffix = "" if self.source == "bundled" else f"{self.source} here"
        return model_label(cfg.kind, cfg.latent_dim, self.dataset, suffix)

    @property
    def class_names(self) -> list[str]:
        return self.meta.get("class_names") or [str(i) for i in range(10)]


@st.cache_resource(show_spinner="Loading bundled model…")
def _bundled(model_id: str) -> ModelEntry:
    model, meta = load_checkpoint(bundled_model_paths()[model_id])
    for p in model.parameters():
        p.requires_grad_(False)  # shared across visitors: read-only
    return ModelEntry(model_id, model, meta, "bundled", fingerprint(model))


def user_models() -> dict[str, ModelEntry]:
    return st.session_state.setdefault(USER_MODELS, {})


def model_ids() -> list[str]:
    bundled = list(bundled_model_paths())
    bundled.sort(key=lambda m: m != DEFAULT_MODEL)
    return bundled + list(user_models())


def get_entry(model_id: str) -> ModelEntry:
    if model_id in user_models():
        return user_models()[model_id]
    return _bundled(model_id)


def label_of(model_id: str) -> str:
    return get_entry(model_id).label


def add_user_model(model: VAE, meta: dict, source: str) -> str:
    """Keep a trained or uploaded model in this session only, make it current, return its id."""
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise ValueError("a model with non-finite weights is never installed")
    model.eval()
    models = user_models()
    model_id = f"{source}-{uuid.uuid4().hex[:8]}"
    models[model_id] = ModelEntry(model_id, model, meta, source, fingerprint(model))
    while len(models) > MAX_USER_MODELS:
        models.pop(next(iter(models)))
    st.session_state[PENDING_MODEL] = model_id  # the picker already exists this run
    return model_id


def default_model_id() -> str:
    ids = model_ids()
    return DEFAULT_MODEL if DEFAULT_MODEL in ids else ids[0]


def current() -> ModelEntry:
    model_id = st.session_state.get(MODEL)
    return get_entry(model_id if model_id in model_ids() else default_model_id())


@torch.no_grad()
def n_params(entry: ModelEntry) -> int:
    return entry.model.n_parameters()
