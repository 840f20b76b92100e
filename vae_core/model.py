"""The VAE (and its plain-autoencoder twin): an MLP like the classic PyTorch example, any input size."""

from __future__ import annotations

import torch
from torch import nn

from .config import MODEL_KINDS, VAEConfig

__all__ = ["VAEConfig", "VAE", "MODEL_KINDS"]

LOGVAR_RANGE = (-12.0, 8.0)  # sigma in [0.0025, 55]: keeps exp(logvar) finite at any learning rate


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """encode(x) -> (mu, logvar); reparameterize; decode(z); forward(x) -> (recon, mu, logvar)."""

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or VAEConfig()
        hidden = list(config.hidden_sizes)
        self.encoder = nn.Sequential(_mlp([config.n_pixels, *hidden]), nn.ReLU())
        self.to_mu = nn.Linear(hidden[-1], config.latent_dim)
        self.to_logvar = nn.Linear(hidden[-1], config.latent_dim)
        self.decoder = _mlp([config.latent_dim, *reversed(hidden), config.n_pixels])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 1, H, W) in [0, 1] -> mu, logvar: (B, Z) each. An "ae" has logvar = -inf-like floor."""
        h = self.encoder(x.flatten(1))
        mu = self.to_mu(h)
        if self.config.kind == "ae":
            return mu, torch.full_like(mu, LOGVAR_RANGE[0])
        return mu, self.to_logvar(h).clamp(*LOGVAR_RANGE)

    def reparameterize(
        self, mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2014, section 2.4). (B, Z).
        eps comes from `generator`, or torch's global generator (the draws randn_like(mu) makes)."""
        if self.config.kind == "ae":
            return mu
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, Z) -> Bernoulli logits (B, 1, H, W); the loss uses logits for stability."""
        return self.decoder(z).view(-1, 1, *self.config.image_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, Z) -> images (B, 1, H, W) in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (B, 1, H, W) -> (recon (B, 1, H, W) in [0, 1], mu (B, Z), logvar (B, Z))."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    @property
    def beta(self) -> float:
        """The KL weight training uses: 0 for a plain autoencoder."""
        return 0.0 if self.config.kind == "ae" else float(self.config.beta)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
