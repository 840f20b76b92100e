"""Exceptions a user can cause. Each message says what is wrong and what to do."""

from __future__ import annotations

__all__ = [
    "LatentLabError",
    "DatasetError",
    "DatasetNotFoundError",
    "CorruptDatasetError",
    "CheckpointError",
    "ConfigError",
    "TrainingDivergedError",
]


class LatentLabError(ValueError):
    """Base class: every error a user can cause. A ValueError, so callers may catch either.

    `public`: the same message without the server's paths, for visitors of a public demo (the message
    itself names folders and files so that whoever runs the app can fix them)."""

    def __init__(self, message: str = "", public: str | None = None) -> None:
        super().__init__(message)
        self.public = message if public is None else public


class DatasetError(LatentLabError):
    """A data set name or folder that cannot be used."""


class DatasetNotFoundError(DatasetError):
    """The data set is not on disk and cannot be downloaded."""


class CorruptDatasetError(DatasetError):
    """IDX files that exist but cannot be read as a labelled image set."""


class CheckpointError(LatentLabError):
    """A checkpoint file that is not a valid latent-lab safetensors checkpoint."""


class ConfigError(LatentLabError):
    """A model or training setting out of range."""


class TrainingDivergedError(LatentLabError):
    """Training produced non-finite losses several steps in a row."""
