"""The VAE (and its plain-autoencoder twin): an MLP like the classic PyTorch example, any input size."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .errors import ConfigError

__all__ = ["VAEConfig", "VAE", "MODEL_KINDS"]

MODEL_KINDS = ("vae", "ae")  # "ae": deterministic encoder, no KL term (for comparison)
# Bounds for configs, also used to validate untrusted checkpoint metadata before building a model.
MAX_LATENT_DIM = 512
MAX_HIDDEN = 4096
MAX_HIDDEN_LAYERS = 4
MAX_IMAGE_SIDE = 128
MAX_BETA = 1000.0
LOGVAR_RANGE = (-12.0, 8.0)  # sigma in [0.0025, 55]: keeps exp(logvar) finite at any learning rate


@dataclass(frozen=True)
class VAEConfig:
    """Architecture. The defaults are the classic PyTorch example: 784-400-Z-400-784."""

    image_shape: tuple[int, int] = (28, 28)  # (H, W) of the single-channel input
    hidden_sizes: tuple[int, ...] = (400,)  # encoder widths; the decoder mirrors them
    latent_dim: int = 20  # Z: the number of (mu, sigma) pairs per image
    beta: float = 1.0  # weight of the KL term (1 = the ELBO; >1 = beta-VAE)
    kind: str = "vae"  # "vae" or "ae"

    def __post_init__(self) -> None:
        # Checked before any conversion: configs also arrive from untrusted checkpoint metadata.
        if not isinstance(self.image_shape, (tuple, list)) or len(self.image_shape) != 2:
            raise ConfigError(f"image_shape must be (H, W), not {self.image_shape!r}")
        if not isinstance(self.hidden_sizes, (tuple, list)):
            raise ConfigError(f"hidden_sizes must be a list of whole numbers, not {self.hidden_sizes!r}")
        for side in self.image_shape:
            _check_range("image side", side, 2, MAX_IMAGE_SIDE)
        _check_range("hidden layers", len(self.hidden_sizes), 1, MAX_HIDDEN_LAYERS)
        for h in self.hidden_sizes:
            _check_range("hidden size", h, 1, MAX_HIDDEN)
        _check_range("latent_dim", self.latent_dim, 1, MAX_LATENT_DIM)
        beta = self.beta
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta <= MAX_BETA:
            raise ConfigError(f"beta must be a number from 0 to {MAX_BETA}, not {beta!r}")
        if self.kind not in MODEL_KINDS:
            raise ConfigError(f"kind must be one of {MODEL_KINDS}, not {self.kind!r}")
        object.__setattr__(self, "image_shape", tuple(self.image_shape))
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        object.__setattr__(self, "beta", float(beta))

    @property
    def n_pixels(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _check_range(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be a whole number from {lo} to {hi}, not {value!r}")


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

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2014, section 2.4). (B, Z)."""
        if self.config.kind == "ae":
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

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
