"""The models that ship with the repo, and how to label any model for a picker."""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLED_MODELS_DIR", "DEFAULT_MODEL", "bundled_model_paths", "model_label"]

BUNDLED_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = "mnist-vae-z2"  # 2-D latent space: the scatter needs no projection to be read
DATASET_TITLES = {"mnist": "MNIST", "digits": "digits 8x8", "fashion-mnist": "Fashion-MNIST", "kmnist": "KMNIST"}


def bundled_model_paths() -> dict[str, Path]:
    """Model id (file stem) -> path, for every bundled .safetensors model."""
    return {p.stem: p for p in sorted(BUNDLED_MODELS_DIR.glob("*.safetensors"))}


def model_label(config_kind: str, latent_dim: int, dataset: str, suffix: str = "") -> str:
    """E.g. 'MNIST VAE, Z=20'."""
    kind = "autoencoder" if config_kind == "ae" else "VAE"
    title = DATASET_TITLES.get(dataset, dataset or "unknown data")
    return f"{title} {kind}, Z={latent_dim}" + (f" ({suffix})" if suffix else "")
