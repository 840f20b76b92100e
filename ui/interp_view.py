"""Interpolation page pieces: the digit pickers, both paths, their strips and diagnostics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
import torch

from vae_core.analysis import nearest_rows
from vae_core.latents import INTERPOLATION_MODES, interpolate
from vae_core.projection import KNN_PLACE_K

from . import cache, state, views

MODE_LABELS = {"linear": "linear", "slerp": "spherical (slerp)"}


@dataclass
class Paths:
    """Both interpolations between two codes, decoded, with what they pass near."""

    codes: dict[str, np.ndarray]  # mode -> (steps, Z)
    images: dict[str, torch.Tensor]  # mode -> (steps, 1, H, W)
    table: pd.DataFrame  # step, path, norm, nearest (distance to the closest test μ)


def pick(col, tag: str, data, names: list[str], default_class: int) -> int:
    """One digit: by class and example, or by test index."""
    how = col.radio(f"Digit {tag}", ["by class", "by test index"], horizontal=True, key=f"how_{tag}")
    if how == "by test index":
        return int(col.number_input("test index", 0, len(data) - 1, default_class, key=f"idx_{tag}"))
    cls = col.selectbox("class", range(len(names)), default_class, format_func=names.__getitem__, key=f"cls_{tag}")
    members = torch.nonzero(data.labels == cls).flatten()
    if len(members) == 0:
        col.warning(f"No test digit of class {names[cls]}.")
        return 0
    k = col.number_input(f"example (0-{len(members) - 1})", 0, len(members) - 1, 0, key=f"ex_{tag}")
    return int(members[int(k)])


def select_indices(a: int, b: int) -> None:
    """Before the pickers are drawn: show these two test indices."""
    st.session_state.update({"how_A": "by test index", "idx_A": int(a), "how_B": "by test index", "idx_B": int(b)})


def both_paths(entry: state.ModelEntry, mu: np.ndarray, i0: int, i1: int, steps: int) -> Paths:
    z0, z1 = torch.from_numpy(mu[i0]), torch.from_numpy(mu[i1])
    codes = {m: interpolate(z0, z1, steps, m).numpy() for m in INTERPOLATION_MODES}
    images = {m: cache.decode_np(entry, c) for m, c in codes.items()}
    rows = []
    for mode, c in codes.items():
        _, dist = nearest_rows(c, mu)
        for step, (norm, d) in enumerate(zip(np.linalg.norm(c, axis=1), dist, strict=True)):
            rows.append({"step": step, "path": mode, "norm": float(norm), "nearest": float(d)})
    return Paths(codes, images, pd.DataFrame(rows))


def strip(data, i0: int, i1: int, decoded: torch.Tensor) -> torch.Tensor:
    """original A, the path, original B: (steps + 2, 1, H, W). The path's ends are μ_A and μ_B, so its
    first and last images are the two reconstructions (a tile of each beside them showed them twice)."""
    originals = data.as_float()[[i0, i1]]
    return torch.cat([originals[:1], decoded, originals[1:]])


def placement_text(method: str, placement: str) -> str:
    """How the path's steps are put into the current view, in words for the caption."""
    if placement == views.TSNE_TRANSFORM:
        return (
            "into this t-SNE layout, which stays as it is: each step goes where its nearest test digits' "
            "affinities put it (openTSNE's transform). t-SNE keeps no room between clusters, so the steps "
            "gather in the clusters their nearest digits are in, and the line jumps between them"
        )
    if placement != "exact":
        return (
            f"by its {KNN_PLACE_K} nearest test digits in latent space (this view cannot map new points), "
            "so each step sits at the weighted mean of its neighbours' positions"
        )
    return "by the transform of a UMAP fitted on these points" if method == "umap" else "exactly (the same map)"
