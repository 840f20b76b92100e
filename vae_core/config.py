"""A VAE's architecture as plain data: readable from a checkpoint's header without PyTorch.

The app's first page of a bundled model needs only this, the shipped arrays and the labels, so it can
be drawn while the server is still importing torch (ui/preload.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import ConfigError

__all__ = ["VAEConfig", "MODEL_KINDS"]

MODEL_KINDS = ("vae", "ae")  # "ae": deterministic encoder, no KL term (for comparison)
# Bounds for configs, also used to validate untrusted checkpoint metadata before building a model.
MAX_LATENT_DIM = 512
MAX_HIDDEN = 4096
MAX_HIDDEN_LAYERS = 4
MAX_IMAGE_SIDE = 128
MAX_BETA = 1000.0


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
