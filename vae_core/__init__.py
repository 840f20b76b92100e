"""latent-lab's engine: data, the VAE, training, checkpoints, latents, projections and images.

Never imports streamlit, so everything here runs from a shell or the command line.
"""

import importlib

from .checkpoint import checkpoint_bytes, load_checkpoint, save_checkpoint
from .data import DATASET_NAMES, Dataset, load_dataset
from .digit_image import DigitImageError, load_digit_image, preprocess_steps
from .errors import (
    CheckpointError,
    ConfigError,
    CorruptDatasetError,
    DatasetError,
    DatasetNotFoundError,
    LatentLabError,
    TrainingDivergedError,
)
from .latents import decode, encode_dataset, interpolate, latent_grid, sample_prior
from .losses import LossTerms, kl_divergence, vae_loss
from .model import VAE, VAEConfig
from .projection import project

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "load_dataset",
    "VAE",
    "VAEConfig",
    "LossTerms",
    "kl_divergence",
    "vae_loss",
    "TrainConfig",
    "train",
    "evaluate",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_bytes",
    "project",
    "encode_dataset",
    "sample_prior",
    "decode",
    "interpolate",
    "latent_grid",
    "LatentLabError",
    "DatasetError",
    "DatasetNotFoundError",
    "CorruptDatasetError",
    "CheckpointError",
    "ConfigError",
    "TrainingDivergedError",
    "DigitImageError",
    "load_digit_image",
    "preprocess_steps",
]

_LAZY = {"TrainConfig", "train", "evaluate"}  # from .train, loaded on first use so that
# `python -m vae_core.train` does not find its own module already imported


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(".train", __name__)  # binds vae_core.train to the module...
        globals().update({n: getattr(module, n) for n in _LAZY})  # ...so rebind it to the function
        return globals()[name]
    raise AttributeError(f"module 'vae_core' has no attribute {name!r}")
