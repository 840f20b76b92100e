"""From images to latent codes and back: encode a data set, sample the prior, decode, interpolate."""

from __future__ import annotations

import torch

from .data import Dataset
from .errors import ConfigError
from .model import VAE
from .subset import subset_indices  # noqa: F401 (re-exported: it was defined here)

__all__ = [
    "encode_dataset",
    "sample_prior",
    "decode",
    "interpolate",
    "latent_grid",
    "subset_indices",
    "tooltip_pngs",
    "INTERPOLATION_MODES",
]

INTERPOLATION_MODES = ("linear", "slerp")
BATCH = 2000  # images per forward pass when encoding or decoding many


def tooltip_pngs(model: VAE, images: torch.Tensor, mu: torch.Tensor) -> list[bytes]:
    """The scatter's hover images: each digit (N, H, W) uint8 beside its reconstruction from its mean mu
    (N, Z), dark ink on white, as PNG files."""
    from .images import gray_pngs

    recon = decode(model, mu)[:, 0]
    original = images.float() / 255.0
    gap = torch.ones(len(images), original.shape[1], 2)  # a white bar between the two (after inversion)
    return gray_pngs(torch.cat([original, 1 - gap, recon], dim=2), invert=True)


@torch.no_grad()
def encode_dataset(model: VAE, dataset: Dataset | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All images -> (mu (N, Z), logvar (N, Z)). Accepts a Dataset or float images (N, 1, H, W)."""
    x = dataset.as_float() if isinstance(dataset, Dataset) else dataset
    model.eval()
    parts = [model.encode(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]
    if not parts:
        z = torch.zeros(0, model.config.latent_dim)
        return z, z.clone()
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def sample_prior(n: int, latent_dim: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
    """n draws of z ~ N(0, temperature^2 I), reproducible from the seed. (n, Z)."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(n, latent_dim, generator=gen) * float(temperature)


@torch.no_grad()
def decode(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """z (N, Z) -> images (N, 1, H, W) in [0, 1], in one batch per BATCH codes."""
    model.eval()
    return torch.cat([model.decode(z[i : i + BATCH]) for i in range(0, len(z), BATCH)]) if len(z) else z


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str = "linear") -> torch.Tensor:
    """`steps` codes from z0 to z1 inclusive, (steps, Z).

    linear: straight line; its middle passes close to the origin, where the prior has little
    volume in high dimension. slerp: along the great circle between the directions, with the
    norm moving linearly from |z0| to |z1|, so every step keeps a typical norm.
    """
    if mode not in INTERPOLATION_MODES:
        raise ConfigError(f"mode must be one of {INTERPOLATION_MODES}, not {mode!r}")
    if steps < 2:
        raise ConfigError(f"steps must be at least 2, not {steps}")
    z0, z1 = z0.reshape(-1).float(), z1.reshape(-1).float()
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    linear = (1 - t) * z0 + t * z1
    n0, n1 = z0.norm(), z1.norm()
    if mode == "linear" or n0 < 1e-8 or n1 < 1e-8:
        return linear
    u0, u1 = z0 / n0, z1 / n1
    omega = torch.arccos((u0 @ u1).clamp(-1.0, 1.0))
    if torch.sin(omega) < 1e-6:  # (anti)parallel: the great circle is not defined; go straight
        return linear
    direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / torch.sin(omega)
    return direction * ((1 - t) * n0 + t * n1)


def latent_grid(n: int) -> torch.Tensor:
    """(n*n, 2) codes at evenly spaced quantiles of N(0, 1) in each axis (Kingma & Welling 2014,
    fig. 4), row-major with z2 decreasing down the rows so the grid reads like a plot."""
    if n < 1:
        raise ConfigError(f"n must be at least 1, not {n}")
    q = torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(n) + 0.5) / n)
    z1 = q.repeat(n)
    z2 = q.flip(0).repeat_interleave(n)
    return torch.stack([z1, z2], dim=1)
