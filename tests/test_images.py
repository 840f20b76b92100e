"""vae_core.images: grids, thumbnails and the animated GIF export."""

from __future__ import annotations

import io

import torch
from PIL import Image

from vae_core.images import thumbnail_urls, to_gif_bytes, to_pil_grid, to_png_bytes


def test_grid_has_the_expected_size() -> None:
    img = to_pil_grid(torch.rand(16, 1, 28, 28), nrow=4, scale=2)
    assert img.size == (2 * (4 * 30 + 2), 2 * (4 * 30 + 2))
    assert Image.open(io.BytesIO(to_png_bytes(img))).format == "PNG"


def test_gif_plays_forth_and_back() -> None:
    frames = torch.linspace(0, 1, 5).view(5, 1, 1, 1).expand(5, 1, 8, 8).contiguous()
    gif = Image.open(io.BytesIO(to_gif_bytes(frames, scale=2)))
    assert gif.format == "GIF" and gif.n_frames == 8  # 5 forth, 3 back
    assert gif.info["loop"] == 0


def test_thumbnails_are_png_data_urls() -> None:
    urls = thumbnail_urls(torch.randint(0, 255, (3, 28, 28), dtype=torch.uint8))
    assert len(urls) == 3 and all(u.startswith("data:image/png;base64,") for u in urls)
