"""The engine's import hygiene: no streamlit, heavy optional libraries only on demand, honest __all__."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ENGINE = ("data", "model", "losses", "train", "checkpoint", "latents", "projection", "errors")
MODULES = ["vae_core", *(f"vae_core.{name}" for name in ENGINE)]


def test_importing_the_engine_does_not_import_streamlit_or_heavy_optional_libraries():
    """A fresh interpreter: this test session may have streamlit loaded already."""
    code = (
        "import sys, vae_core, vae_core.projection\n"
        "loaded = [m for m in ('streamlit', 'umap', 'openTSNE', 'numba') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_only_real_names(name):
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == [] and len(set(module.__all__)) == len(module.__all__)


def test_errors_are_value_errors_under_one_base():
    import vae_core

    errors = ("DatasetError", "DatasetNotFoundError", "CorruptDatasetError", "CheckpointError", "ConfigError")
    for name in (*errors, "TrainingDivergedError"):
        cls = getattr(vae_core, name)
        assert issubclass(cls, vae_core.LatentLabError) and issubclass(cls, ValueError)


# The names issue 2 promises other tools; a missing one breaks them even if every module's __all__ is honest.
PUBLIC_API = (
    "load_dataset",
    "VAEConfig",
    "VAE",
    "TrainConfig",
    "train",
    "save_checkpoint",
    "load_checkpoint",
    "project",
    "encode_dataset",
    "sample_prior",
    "decode",
    "interpolate",
    "latent_grid",
    "load_digit_image",
)


@pytest.mark.parametrize("name", PUBLIC_API)
def test_promised_public_api_is_exported_from_the_package(name):
    import vae_core

    assert name in vae_core.__all__
    assert callable(getattr(vae_core, name))
