#!/usr/bin/env bash
# Rebuild the bundled models from MNIST IDX files: bash models/make.sh [DATA_DIR]
# (default DATA_DIR: ../shared/data/mnist). Takes about 25 minutes on two CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/mnist}
PY=${PYTHON:-.venv/bin/python}
$PY -m vae_core.train --dataset mnist --data-dir "$DATA" --latent-dim 20 --hidden 512 \
  --epochs 30 --lr 1e-3 --lr-schedule cosine --batch-size 128 --seed 1 --device cpu --precision fp32 \
  --out models/mnist-vae-z20.safetensors
$PY -m vae_core.train --dataset mnist --data-dir "$DATA" --latent-dim 2 --hidden 512 256 \
  --epochs 40 --lr 1e-3 --lr-schedule cosine --batch-size 128 --seed 1 --device cpu --precision fp32 \
  --out models/mnist-vae-z2.safetensors
$PY -m vae_core.train --dataset mnist --data-dir "$DATA" --latent-dim 2 --hidden 512 256 --kind ae \
  --epochs 40 --lr 1e-3 --lr-schedule cosine --batch-size 128 --seed 1 --device cpu --precision fp32 \
  --out models/mnist-ae-z2.safetensors
$PY -m vae_core.train --dataset digits --latent-dim 2 --hidden 256 \
  --epochs 300 --lr 1e-3 --lr-schedule cosine --batch-size 64 --seed 1 --device cpu --precision fp32 \
  --out models/digits-vae-z2.safetensors
# Ship the PCA / t-SNE / UMAP coordinates of each model's whole test split and the latent page's hover images (models/projections/).
$PY -m vae_core.precompute models/mnist-vae-z20.safetensors models/mnist-vae-z2.safetensors \
  models/mnist-ae-z2.safetensors models/digits-vae-z2.safetensors
