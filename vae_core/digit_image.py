"""Untrusted digit images (uploads, drawings) -> one MNIST-style tensor; everything unsafe is refused.

The one entry point for image bytes a user controls. Size limits are checked before any pixel is
decoded, and only the PNG, JPEG, BMP, GIF and WebP decoders are ever tried. The steps then follow
MNIST's own preprocessing (LeCun et al. 1998, "Gradient-based learning applied to document
recognition", Section III.A): the digit's bounding box is scaled to fit a 20x20 box keeping its
aspect ratio, placed in a 28x28 canvas, and shifted so its centre of mass is in the middle.
Other canvas sizes scale the box by the same 20/28 unless `fill` says otherwise.

Decision: an image with no ink (blank, uniform, or 1x1, which is all border) raises
DigitImageError("no ink found ...") rather than returning a blank canvas: it holds no digit.
"""

from __future__ import annotations

import contextlib
import io
import math
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, ImageStat, UnidentifiedImageError

from .errors import LatentLabError

__all__ = [
    "ALLOWED_FORMATS",
    "INK_THRESHOLD",
    "MAX_IMAGE_BYTES",
    "MAX_PIXELS",
    "MNIST_FILL",
    "STEP_NAMES",
    "DigitImageError",
    "PreprocessStep",
    "load_digit_image",
    "preprocess_steps",
]

MAX_IMAGE_BYTES = 5 * 2**20  # a phone photo is 2-4 MB; checked before decoding anything
MAX_PIXELS = 25_000_000  # width * height from the header, checked before load(): a 24 MP photo fits
ALLOWED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")  # the only decoders PIL may even try
_ACCEPTED = {*ALLOWED_FORMATS, "MPO"}  # PIL's JPEG decoder calls a phone photo with a depth map MPO
MNIST_FILL = 20 / 28  # digit's longer side over the canvas's shorter side: MNIST's 20x20 box in 28x28
INK_THRESHOLD = 32  # of 255, after the background is set to black: JPEG noise stays below it
LIGHT_BORDER = 128  # a border median at or above this means dark ink on light paper
MAX_SIDE = 1024  # of the output canvas; far above any model here
WORK_PIXELS = 2**20  # a larger image is shrunk to this many pixels on decoding: the steps stay fast and small
STEP_NAMES = ("decoded", "grayscale", "inverted", "cropped", "resized", "padded", "centred")
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}
_DISPLAY_MODES = {"1", "L", "LA", "P", "RGB", "RGBA"}  # modes any PNG writer and browser can show
_READABLE = "PNG, JPEG, BMP, GIF or WebP"
# PIL reports a bad file with many exception types, depending on the plugin and the stage.
_PIL_ERRORS = (OSError, SyntaxError, ValueError, struct.error, EOFError, MemoryError, IndexError, KeyError)
_MAGIC = {  # first bytes, only to name the file in a refusal; never used to pick a decoder
    b"\x89PNG": "PNG",
    b"\xff\xd8": "JPEG",
    b"BM": "BMP",
    b"GIF8": "GIF",
    b"%!PS": "PostScript/EPS",
    b"\xc5\xd0\xd3\xc6": "EPS",
    b"%PDF": "PDF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"<svg": "SVG",
    b"<?xml": "SVG/XML",
    b"8BPS": "Photoshop",
}


class DigitImageError(LatentLabError):
    """An uploaded or drawn image that cannot be turned into a digit. The message says why."""


@dataclass(frozen=True, eq=False)
class PreprocessStep:
    name: str  # one of STEP_NAMES
    image: Image.Image  # in a mode from _DISPLAY_MODES, so any page can show it
    note: str  # what this step did to this particular image, for a caption


def load_digit_image(data: bytes, size: tuple[int, int] = (28, 28), *, fill: float = MNIST_FILL) -> torch.Tensor:
    """Bytes of a PNG, JPEG, BMP, GIF or WebP -> (1, 1, H, W) float32 in [0, 1], white digit on black.

    `size` is (H, W), like VAEConfig.image_shape. `fill` is the digit's longer side over the
    canvas's shorter side (MNIST: 20/28; scikit-learn's 8x8 digits fill their canvas: use 1.0).
    Raises DigitImageError (a ValueError) for anything refused; no other exception escapes for
    bad bytes.
    """
    final = preprocess_steps(data, size, fill=fill)[-1].image
    array = np.asarray(final, dtype=np.float32) / 255  # (H, W)
    return torch.from_numpy(array)[None, None]  # (1, 1, H, W)


def preprocess_steps(
    data: bytes, size: tuple[int, int] = (28, 28), *, fill: float = MNIST_FILL
) -> list[PreprocessStep]:
    """Every intermediate image, named as in STEP_NAMES; the last is what load_digit_image returns."""
    data = _check_request(data, size, fill)
    decoded, decoded_note = _decode(data)
    gray = _to_grayscale(decoded)
    flattened = ", transparency flattened" if decoded.has_transparency_data else ""
    gray_note = f"{decoded.mode} to 8-bit luminance{flattened}"
    inverted, inverted_note = _normalise_background(gray)
    cropped = _crop_to_ink(inverted)
    box = max(1, round(fill * min(size)))
    resized, resized_note = _fit_box(cropped, box)
    canvas = (size[1], size[0])  # PIL sizes are (W, H)
    box_centred = tuple((c - r) // 2 for c, r in zip(canvas, resized.size, strict=True))
    return [
        PreprocessStep("decoded", _displayable(decoded), decoded_note),
        PreprocessStep("grayscale", gray, gray_note),
        PreprocessStep("inverted", inverted, inverted_note),
        PreprocessStep("cropped", cropped, f"to the ink's bounding box, {cropped.width}x{cropped.height}"),
        PreprocessStep("resized", resized, resized_note),
        PreprocessStep("padded", _place(resized, canvas, box_centred), f"box centred in {canvas[0]}x{canvas[1]}"),
        PreprocessStep("centred", _place(resized, canvas, _mass_centred(resized, canvas)), "centre of mass centred"),
    ]


def _check_request(data: bytes, size: tuple[int, int], fill: float) -> bytes:
    """The cheap checks, before PIL sees a byte."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"expected the image file's bytes, not {type(data).__name__}")
    if len(size) != 2 or not all(isinstance(s, int) and 1 <= s <= MAX_SIDE for s in size):
        raise ValueError(f"size must be (H, W) with sides from 1 to {MAX_SIDE}, not {size!r}")
    if not 0 < fill <= 1:
        raise ValueError(f"fill must be in (0, 1], not {fill!r}")
    data = bytes(data)
    if not data:
        raise DigitImageError("the file is empty; upload a PNG or JPEG of a digit")
    if len(data) > MAX_IMAGE_BYTES:
        mb, limit = len(data) / 2**20, MAX_IMAGE_BYTES / 2**20
        raise DigitImageError(f"the file is {mb:.1f} MB, over the {limit:.0f} MB limit; crop or shrink it")
    return data


@contextlib.contextmanager
def _pil_errors() -> Iterator[None]:
    """One clear DigitImageError for whatever PIL raises; bomb warnings become errors, here only."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DigitImageError(f"the image has too many pixels (a decompression bomb?): {exc}") from exc
        except _PIL_ERRORS as exc:
            raise DigitImageError(f"the image file is corrupt or truncated: {exc}") from exc


def _decode(data: bytes) -> tuple[Image.Image, str]:
    """The first frame, EXIF orientation applied. Sizes are checked on the header, before load()."""
    image = _open(data)
    _check_header(image)
    note = f"{image.format} {image.mode}, {image.width}x{image.height}"
    with _pil_errors():
        if image.format == "JPEG":  # decodes at 1/2, 1/4 or 1/8 scale, never below the size asked for
            image.draft(image.mode, _work_size(image.size))
        image.load()  # frame 0 only: later frames are decoded only when seeked to
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        upright = ImageOps.exif_transpose(image)  # a new single-frame image
        if upright.width * upright.height > WORK_PIXELS:  # a 24 MP photo would make every step 24 MP
            upright = _shrink(upright)
            note += f", shrunk to {upright.width}x{upright.height}"
    return upright, note + (f", EXIF orientation {orientation} applied" if orientation != 1 else "")


def _work_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size with at most WORK_PIXELS pixels and the same aspect ratio. (Shrinking by area, not by the
    longer side, keeps a thin strip's ink: a 10000 x 20 strip is left alone, not cut to 1024 x 2.)"""
    scale = min(1.0, math.sqrt(WORK_PIXELS / (size[0] * size[1])))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _shrink(image: Image.Image) -> Image.Image:
    """To WORK_PIXELS, by area averaging; modes PIL cannot resize that way are converted first."""
    if image.mode in ("1", "P"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    elif image.mode not in ("L", "LA", "RGB", "RGBA", "La", "RGBa"):
        image = _displayable(image)  # 16-bit, float, CMYK and the like: to L, RGB or RGBA
    return image.resize(_work_size(image.size), Image.Resampling.BOX)


def _open(data: bytes) -> Image.Image:
    with _pil_errors():
        try:
            return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)  # lazy: reads the header only
        except UnidentifiedImageError:
            pass
    kind = _sniff(data)
    if kind in _ACCEPTED:  # PIL turns a plugin's "broken header" into "unidentified"
        raise DigitImageError(f"this looks like a {kind} file, but it is corrupt or truncated")
    found = f"this looks like {kind}" if kind else "the file is not a recognised image"
    raise DigitImageError(f"{found}; only {_READABLE} images are accepted")


def _sniff(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        return "HEIC/AVIF"  # iPhone photos: the ISO media container
    return next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)


def _check_header(image: Image.Image) -> None:
    if image.format not in _ACCEPTED:  # cannot happen with formats=..., but cheap to be sure
        raise DigitImageError(f"{image.format} images are not accepted; only {_READABLE}")
    width, height = image.size
    if width < 1 or height < 1:
        raise DigitImageError(f"the image is {width}x{height} pixels: it has no pixels")
    if width * height > MAX_PIXELS:
        raise DigitImageError(
            f"the image is {width}x{height} = {width * height:,} pixels, over the {MAX_PIXELS:,} pixels "
            "limit (a decompression bomb?); shrink it first"
        )


def _to_grayscale(image: Image.Image) -> Image.Image:
    """Any PIL mode -> "L" luminance: transparency flattened, 16-bit and float scaled, not clipped."""
    if image.mode in _SIXTEEN_BIT or image.mode in ("I", "F"):
        return _scale_to_8bit(image)
    if image.has_transparency_data:
        return _flatten_alpha(image)
    if image.mode == "LAB":
        image = image.convert("RGB")  # PIL converts LAB only to RGB(A)
    try:
        return image.convert("L")
    except ValueError as exc:
        raise DigitImageError(f"images in colour mode {image.mode} are not supported") from exc


def _scale_to_8bit(image: Image.Image) -> Image.Image:
    """PIL's convert("L") clips every 16-bit value above 255 to white; scale by the nominal range
    instead (65535 for 16-bit; for I and F the smallest of 1, 255, 65535 holding the values),
    falling back to the actual range for negative or larger values."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float32), posinf=0, neginf=0)  # (H, W)
    low, high = float(values.min()), float(values.max())
    ranges = (65535.0,) if image.mode in _SIXTEEN_BIT else (1.0, 255.0, 65535.0)
    full = next((r for r in ranges if low >= 0 and high <= r), None)
    if full is None:
        values, full = values - low, max(high - low, 1e-30)
    return Image.fromarray(np.round(values * (255 / full)).clip(0, 255).astype(np.uint8), mode="L")


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite onto a background that contrasts with the opaque pixels, so that black strokes on a
    transparent canvas become black on white and white strokes become white on black."""
    if image.mode == "La":
        image = image.convert("LA")  # PIL converts premultiplied La only to LA
    rgba = image.convert("RGBA")  # applies a palette's or a colour's "transparency" too
    gray, alpha = rgba.convert("L"), rgba.getchannel("A")
    opaque = alpha.point(lambda a: 255 if a >= 128 else 0)
    ink_is_dark = ImageStat.Stat(gray, mask=opaque).mean[0] < LIGHT_BORDER  # 0 when all transparent
    return Image.composite(gray, Image.new("L", gray.size, 255 if ink_is_dark else 0), alpha)


def _normalise_background(gray: Image.Image) -> tuple[Image.Image, str]:
    """White ink on black with the background at 0: invert when the border (mostly paper) is light,
    then stretch so the paper's own grey becomes black (a photo of paper is rarely pure white)."""
    pixels = np.asarray(gray)  # (H, W) uint8
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    median = int(np.median(border))
    invert = median >= LIGHT_BORDER
    background = 255 - median if invert else median  # at most 127
    lut = [max(0, round(((255 - v if invert else v) - background) * 255 / (255 - background))) for v in range(256)]
    note = f"{'light background, inverted' if invert else 'dark background, kept'} (border median {median})"
    return gray.point(lut), note + (f"; background level {background} set to black" if background else "")


def _crop_to_ink(image: Image.Image) -> Image.Image:
    bbox = image.point(lambda v: 255 if v > INK_THRESHOLD else 0).getbbox()
    if bbox is None:
        raise DigitImageError("no ink found: the image is blank or too faint; draw or upload a digit")
    return image.crop(bbox)


def _fit_box(image: Image.Image, box: int) -> tuple[Image.Image, str]:
    """Longer side to `box`, aspect ratio kept (MNIST's 20x20 box), in float; then the peak ink level
    is restored: a pen stroke in a phone photo is ~1% of the digit's height (MNIST's are ~10%) and
    would otherwise average out to grey."""
    scale = box / max(image.size)
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR  # BOX: area average
    values = np.asarray(image.convert("F").resize(target, method))  # (h, w)
    gain = max(1.0, image.getextrema()[1] / max(float(values.max()), 1e-30))
    resized = Image.fromarray(np.round(values * gain).clip(0, 255).astype(np.uint8), mode="L")
    brightened = f"; faint strokes brightened x{gain:.1f}" if gain > 1.05 else ""
    return resized, f"longer side scaled to {box} px, {resized.width}x{resized.height}{brightened}"


def _mass_centred(image: Image.Image, canvas: tuple[int, int]) -> tuple[int, int]:
    """Where to paste `image` so its centre of mass is mid-canvas, clamped so no ink is cut off."""
    values = np.asarray(image, dtype=np.float64)  # (h, w)
    total = max(values.sum(), 1e-30)
    ys, xs = np.indices(values.shape)
    centre = ((xs * values).sum() / total, (ys * values).sum() / total)
    spans = zip(canvas, image.size, centre, strict=True)
    return tuple(min(max(round((side - 1) / 2 - c), 0), side - extent) for side, extent, c in spans)


def _place(image: Image.Image, canvas: tuple[int, int], at: tuple[int, int]) -> Image.Image:
    result = Image.new("L", canvas, 0)
    result.paste(image, at)
    return result


def _displayable(image: Image.Image) -> Image.Image:
    """The decoded image in a mode a browser can show: 16-bit, CMYK and the like are converted."""
    if image.mode in _DISPLAY_MODES:
        return image
    if image.mode in _SIXTEEN_BIT or image.mode in ("I", "F", "La"):
        return _to_grayscale(image)
    return image.convert("RGBA" if image.has_transparency_data else "RGB")
