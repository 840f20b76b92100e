"""latent-lab's engine: data, the VAE, training, checkpoints, latents, projections and images.

Never imports streamlit, so everything here runs from a shell or the command line.

Every name below is imported from its module on first use (PEP 562), so `import vae_core.charts`
does not import PyTorch: the app draws a bundled model's first scatter with the torch-free modules
(config, errors, data's label reader, checkpoint's header reader, precompute's sidecar reader,
projection, charts) while the server is still importing torch (ui/preload.py).
"""

import importlib

# name -> the module that defines it
_WHERE = {
    "DATASET_NAMES": "data",
    "Dataset": "data",
    "load_dataset": "data",
    "VAE": "model",
    "VAEConfig": "config",
    "LossTerms": "losses",
    "kl_divergence": "losses",
    "vae_loss": "losses",
    "TrainConfig": "train",
    "train": "train",
    "evaluate": "train",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "checkpoint_bytes": "checkpoint",
    "project": "projection",
    "encode_dataset": "latents",
    "sample_prior": "latents",
    "decode": "latents",
    "interpolate": "latents",
    "latent_grid": "latents",
    "LatentLabError": "errors",
    "DatasetError": "errors",
    "DatasetNotFoundError": "errors",
    "CorruptDatasetError": "errors",
    "CheckpointError": "errors",
    "ConfigError": "errors",
    "TrainingDivergedError": "errors",
    "DigitImageError": "digit_image",
    "load_digit_image": "digit_image",
    "preprocess_steps": "digit_image",
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'vae_core' has no attribute {name!r}")
    where = _WHERE[name]
    module = importlib.import_module(f".{where}", __name__)
    # Importing a submodule binds its name here (vae_core.train is the module): every name exported
    # from it is bound now, so that the function wins and `vae_core.train` is train(). (A direct
    # `import vae_core.train` before any such lookup leaves the module there, as it always did.)
    globals().update({n: getattr(module, n) for n, w in _WHERE.items() if w == where})
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
