"""The VAE loss as a pure function: reconstruction, KL and total, in nats per image."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["LossTerms", "kl_divergence", "vae_loss"]


@dataclass(frozen=True)
class LossTerms:
    """Each term summed over the batch; divide by the batch size for nats per image."""

    reconstruction: torch.Tensor  # scalar: summed Bernoulli negative log-likelihood
    kl: torch.Tensor  # scalar: summed KL(q(z|x) || N(0, I))
    total: torch.Tensor  # reconstruction + beta * kl (kl is reported even when beta = 0)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per dimension, (B, Z).

    Closed form from Kingma & Welling 2014, Appendix B: -1/2 (1 + log sigma^2 - mu^2 - sigma^2).
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def vae_loss(
    x: torch.Tensor,
    recon_logits: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float = 1.0,
    include_kl: bool = True,
) -> LossTerms:
    """x, recon_logits: (B, 1, H, W); mu, logvar: (B, Z).

    The KL term is always measured, so a beta = 0 VAE still reports how far its codes are from the
    prior; beta only weights it in the total. include_kl=False is for a plain autoencoder, whose fixed
    log-variance makes a KL value meaningless: it is reported as 0.
    """
    reconstruction = F.binary_cross_entropy_with_logits(recon_logits, x, reduction="sum")
    if not include_kl:
        return LossTerms(reconstruction, torch.zeros((), device=x.device), reconstruction)
    kl = kl_divergence(mu, logvar).sum()
    if not beta:  # reported only: kept out of the graph, and total is exactly the reconstruction
        return LossTerms(reconstruction, kl.detach(), reconstruction)
    return LossTerms(reconstruction, kl, reconstruction + beta * kl)
