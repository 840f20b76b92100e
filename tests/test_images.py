"""vae_core.images: grids, thumbnails and the animated GIF export."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core.images import GRID_PADDING, thumbnail_urls, tile, to_gif_bytes, to_pil_grid, to_png_bytes


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


@pytest.mark.parametrize(
    ("n", "nrow", "pad_value"), [(1, 8, 1.0), (2, 8, 0.0), (7, 3, 1.0), (9, 3, 0.5), (10, 10, 1.0)]
)
def test_grid_is_laid_out_as_torchvisions_make_grid(n, nrow, pad_value) -> None:
    from torchvision.utils import make_grid

    images = torch.rand(n, 1, 5, 4, generator=torch.Generator().manual_seed(n))
    want = make_grid(images, nrow=nrow, padding=GRID_PADDING, pad_value=pad_value)[0].numpy()
    got = tile(images[:, 0].numpy(), nrow, GRID_PADDING, pad_value)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape", [(3, 28, 28), (2, 5, 7), (1, 1, 1)])
@pytest.mark.parametrize("invert", [True, False])
def test_thumbnails_decode_to_the_same_pixels(shape, invert) -> None:
    """The hand-written PNG writer: PIL reads every thumbnail back as an 8-bit grayscale image with
    the very pixels it was given (inverted by default: dark ink on white)."""
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for url, image in zip(thumbnail_urls(images, invert=invert), images, strict=True):
        decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        decoded.load()  # checks every chunk's CRC and the compressed data
        assert decoded.mode == "L" and decoded.size == (shape[2], shape[1])
        want = 255 - image.numpy() if invert else image.numpy()
        np.testing.assert_array_equal(np.asarray(decoded), want)


def test_float_thumbnails_match_their_rounded_bytes() -> None:
    images = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    as_bytes = (images * 255).round().to(torch.uint8)[:, 0]
    assert thumbnail_urls(images) == thumbnail_urls(as_bytes)


def test_traversal_rows_are_labelled_in_the_picture() -> None:
    """label_rows: a margin at the left with one label per row, its ink centred on the row it names, so a
    downloaded grid keeps them; the tiles themselves unchanged."""
    import torch
    from PIL import Image

    from vae_core.images import label_rows, to_pil_grid

    tiles = torch.zeros(3 * 4, 1, 28, 28)  # 3 rows of 4 black tiles
    grid = to_pil_grid(tiles, nrow=4, scale=2)
    labelled = label_rows(grid.copy(), ["z6 · KL 2.08", "z2 · KL 1.98", "z7 · KL 1.93 · off"], 28, 2)
    margin = labelled.width - grid.width
    assert margin > 40 and labelled.height == grid.height
    assert np.array_equal(np.asarray(labelled)[:, margin:], np.asarray(grid))
    ink = np.asarray(labelled)[:, :margin] < 128
    rows = [np.flatnonzero(ink[2 * (2 + r * 30) : 2 * (2 + r * 30 + 28)].any(1)) for r in range(3)]
    assert all(len(r) for r in rows)  # every row has its label
    assert not ink[: 2 * 2].any() and not ink[2 * 30 : 2 * 32].any()  # nothing in the gaps between rows
    assert isinstance(labelled, Image.Image) and labelled.mode == "L"
