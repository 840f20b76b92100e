"""What the latent space holds: posterior samples, per-dimension KL, traversals, nearest neighbours."""

from __future__ import annotations

import numpy as np
import torch

from .latents import decode
from .model import VAE
from .projection import kl_per_dimension  # NumPy, so the raw view can rank dimensions without torch

__all__ = [
    "sample_posterior",
    "kl_per_dimension",
    "ACTIVE_KL_NATS",
    "traversal_codes",
    "nearest_rows",
    "sigma_ellipses",
    "decode_np",
]

ACTIVE_KL_NATS = 0.01  # average KL below this: the dimension carries no information (collapsed)
ELLIPSE_VERTICES = 24  # enough for a smooth 1-sigma outline


def sample_posterior(mu: np.ndarray, logvar: np.ndarray, seed: int = 0) -> np.ndarray:
    """One z ~ N(mu, sigma^2) per row: the cloud the decoder actually sees in training. (N, Z)."""
    eps = np.random.default_rng(seed).standard_normal(mu.shape).astype(np.float32)
    return mu + np.exp(0.5 * logvar) * eps


def traversal_codes(
    base: np.ndarray, dim: int, mu: np.ndarray, steps: int, width: float = 2.0, min_spread: float = 0.0
) -> np.ndarray:
    """Copies of `base` (Z,) with dimension `dim` swept over mean ± width x std of mu[:, dim], the std
    taken as at least `min_spread` (1, the prior's: a dimension the encoder leaves unused, whose μ barely
    varies, is then swept as far as the others, so its row shows whether the decoder ignores it). (steps, Z)."""
    centre, spread = float(mu[:, dim].mean()), max(float(mu[:, dim].std()), min_spread)
    codes = np.repeat(base[None, :].astype(np.float32), steps, axis=0)
    codes[:, dim] = np.linspace(centre - width * spread, centre + width * spread, steps)
    return codes


def nearest_rows(queries: np.ndarray, reference: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the index of and Euclidean distance to the nearest reference row."""
    # No copy of the reference (60,000 MNIST rows are 188 MB as float32) and no squared temporary of it
    ref = np.asarray(reference, dtype=np.float32).reshape(len(reference), -1)
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    idx, dist = [], []
    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk].reshape(-1, ref.shape[1]).astype(np.float32)
        d2 = (q**2).sum(1)[:, None] - 2 * q @ ref.T + ref_sq[None, :]
        best = d2.argmin(1)
        idx.append(best)
        dist.append(np.sqrt(np.maximum(d2[np.arange(len(q)), best], 0)))
    return np.concatenate(idx), np.concatenate(dist)


def sigma_ellipses(centres: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Outlines of the axis-aligned 1-sigma ellipses: (N * ELLIPSE_VERTICES, 2), in order."""
    angles = np.linspace(0, 2 * np.pi, ELLIPSE_VERTICES)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (V, 2)
    return (centres[:, None, :] + sigmas[:, None, :] * ring[None]).reshape(-1, 2)


@torch.no_grad()
def decode_np(model: VAE, z: np.ndarray) -> np.ndarray:
    """Codes (N, Z) -> images (N, H, W) float in [0, 1]."""
    return decode(model, torch.as_tensor(z, dtype=torch.float32))[:, 0].numpy()
