"""latent-lab's engine: data, the VAE, training, checkpoints, latents, projections and images.

Never imports streamlit, so everything here runs from a shell or the command line.
"""

from .checkpoint import checkpoint_bytes, load_checkpoint, save_checkpoint
from .data import DATASET_NAMES, Dataset, load_dataset
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
from .train import TrainConfig, evaluate, train

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
]
