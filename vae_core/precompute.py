"""Precomputed 2-D coordinates of a model's whole test split, shipped beside the bundled models.

`python -m vae_core.precompute models/mnist-vae-z2.safetensors` writes
models/projections/mnist-vae-z2.safetensors: one (N, 2) tensor per method, the test split's encoder
outputs mu and logvar (N, Z) (so the app's first page need not run the encoder over 10,000 images),
the hover images of the latent page's default subset of test digits as PNG files (digit beside
reconstruction: 0.3 to 0.5 s of a cold first page otherwise), and in the header the model's
fingerprint and each method's parameters, so the app can tell they still belong together.
`--thumbnails-only` adds or renews the hover images of existing sidecars without refitting.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from safetensors.numpy import load_file, save_file

from .config import VAEConfig
from .projection import fit_projection
from .subset import subset_indices

if TYPE_CHECKING:
    from .model import VAE

__all__ = [
    "PRECOMPUTED_METHODS",
    "fingerprint",
    "fingerprint_arrays",
    "sidecar_path",
    "compute",
    "load_precomputed",
    "load_latents",
    "load_sidecar",
    "shipped_pngs",
    "read_shipped_pngs",
    "TOOLTIP_POINTS",
    "main",
]

PRECOMPUTED_METHODS = {"pca": {}, "tsne": {"perplexity": 30}, "umap": {"n_neighbors": 15, "min_dist": 0.1}}
TOOLTIP_POINTS = 2000  # the latent page's default number of points (ui/views.py; a test checks)


def fingerprint(model: VAE) -> str:
    """A hash of the config and weights: changes whenever the model does."""
    return fingerprint_arrays(model.config, {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})


def fingerprint_arrays(config: VAEConfig, weights: dict[str, np.ndarray]) -> str:
    """fingerprint() of the model with this config and these weights (a checkpoint read without torch)."""
    digest = hashlib.sha256(repr(config).encode())
    for name, array in sorted(weights.items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def sidecar_path(checkpoint: str | Path) -> Path:
    checkpoint = Path(checkpoint)
    return checkpoint.parent / "projections" / checkpoint.name


def compute(model: VAE, mu: np.ndarray, log=print) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Each method in PRECOMPUTED_METHODS on all of mu; returns (coords, parameters used)."""
    coords, used = {}, {}
    for method, params in PRECOMPUTED_METHODS.items():
        t0 = time.perf_counter()
        proj = fit_projection(mu, method, **params)
        coords[method], used[method] = proj.embedding, proj.params
        log(f"{method}: {time.perf_counter() - t0:.1f} s")
    return coords, used


def load_precomputed(checkpoint: str | Path, model: VAE) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """The sidecar's coordinates if it exists and belongs to this very model, else empty dicts."""
    tensors, params = load_sidecar(checkpoint, model)
    return {k: v for k, v in tensors.items() if k in PRECOMPUTED_METHODS}, params


def load_latents(checkpoint: str | Path, model: VAE) -> tuple[np.ndarray, np.ndarray] | None:
    """The sidecar's (mu, logvar) of the test split, (N, Z) each, if it belongs to this model."""
    tensors, _ = load_sidecar(checkpoint, model)
    if "mu" not in tensors or "logvar" not in tensors:
        return None
    return tensors["mu"], tensors["logvar"]


def load_sidecar(checkpoint: str | Path, model: VAE | str) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Everything the sidecar ships (coordinates by method, "mu", "logvar") and the methods' parameters,
    if it exists and belongs to this very model (or the model with this fingerprint), else empty dicts."""
    path = sidecar_path(checkpoint)
    if not path.is_file():
        return {}, {}
    header = _sidecar_header(path)
    if header.get("fingerprint") != (model if isinstance(model, str) else fingerprint(model)):
        return {}, {}
    return load_file(str(path)), json.loads(header.get("params", "{}"))


def _sidecar_header(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return f.metadata() or {}


def pack_pngs(pngs: list[bytes]) -> dict[str, np.ndarray]:
    """PNG files as two arrays a safetensors file can hold: all bytes in a row, and where each ends."""
    return {
        "thumbs_png": np.frombuffer(b"".join(pngs), dtype=np.uint8).copy(),
        "thumbs_end": np.cumsum([len(p) for p in pngs], dtype=np.int64),
    }


def shipped_pngs(tensors: dict[str, np.ndarray]) -> list[bytes] | None:
    """The hover images a sidecar ships (for the first TOOLTIP_POINTS subset), or None."""
    if "thumbs_png" not in tensors or "thumbs_end" not in tensors:
        return None
    data, ends = tensors["thumbs_png"].tobytes(), tensors["thumbs_end"].tolist()
    return [data[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def read_shipped_pngs(checkpoint: str | Path) -> tuple[str, list[bytes]] | None:
    """(the fingerprint of the model they belong to, the hover images) from a checkpoint's sidecar,
    without loading the model; None if it ships none."""
    path = sidecar_path(checkpoint)
    if not path.is_file():
        return None
    owner, pngs = _sidecar_header(path).get("fingerprint"), shipped_pngs(load_file(str(path)))
    return None if owner is None or pngs is None else (owner, pngs)


def main(argv: list[str] | None = None) -> int:
    import argparse

    import torch

    from .checkpoint import load_checkpoint
    from .data import load_dataset
    from .latents import encode_dataset, tooltip_pngs

    parser = argparse.ArgumentParser(prog="python -m vae_core.precompute", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="bundled .safetensors models")
    parser.add_argument(
        "--thumbnails-only", action="store_true", help="add the hover images to existing sidecars, refit nothing"
    )
    args = parser.parse_args(argv)
    for checkpoint in args.checkpoints:
        model, meta = load_checkpoint(checkpoint)
        if model.config.latent_dim < 2:
            print(f"{checkpoint}: Z < 2, nothing to project", file=sys.stderr)
            continue
        test = load_dataset(meta.get("dataset", "mnist"), "test")
        if args.thumbnails_only:
            coords, used = load_sidecar(checkpoint, model)
            if "mu" not in coords:
                parser.error(f"{checkpoint} has no sidecar that matches it; run without --thumbnails-only")
        else:
            mu, logvar = encode_dataset(model, test)
            coords, used = compute(model, mu.numpy(), log=lambda m, c=checkpoint: print(f"{c} {m}", file=sys.stderr))
            coords.update(mu=mu.numpy(), logvar=logvar.numpy())
        idx = subset_indices(len(test), TOOLTIP_POINTS)
        coords.update(pack_pngs(tooltip_pngs(model, test.images[idx], torch.from_numpy(coords["mu"][idx]))))
        out = sidecar_path(checkpoint)
        out.parent.mkdir(parents=True, exist_ok=True)
        header = {"fingerprint": fingerprint(model), "params": json.dumps(used)}
        save_file({k: np.ascontiguousarray(v) for k, v in coords.items()}, str(out), header)
        print(json.dumps({"out": str(out), "points": int(len(coords["mu"])), "params": used}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
