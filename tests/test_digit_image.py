"""vae_core/digit_image.py: hostile files refused with a reason, every mode read correctly, MNIST framing."""

from __future__ import annotations

import io
import random
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

from vae_core.digit_image import (
    MAX_IMAGE_BYTES,
    MAX_PIXELS,
    STEP_NAMES,
    DigitImageError,
    _to_grayscale,
    load_digit_image,
    preprocess_steps,
)
from vae_core.errors import LatentLabError

# ---------------------------------------------------------------- building images


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def ell_mask(width: int = 60, height: int = 80, stroke: int = 8) -> np.ndarray:
    """(H, W) bool: an asymmetric "L" (a vertical stroke and a foot to the right), so rotations show."""
    mask = np.zeros((height, width), dtype=bool)
    left, top, bottom, right = width * 3 // 10, height * 15 // 100, height * 85 // 100, width * 3 // 4
    mask[top:bottom, left : left + stroke] = True
    mask[bottom - stroke : bottom, left:right] = True
    return mask


MASK = ell_mask()
BAR = np.zeros_like(MASK)  # a bar in the top-right corner, where the "L" has no ink
BAR[5:15, 40:58] = True


def gray(ink: int = 0, paper: int = 255, mask: np.ndarray = MASK) -> Image.Image:
    return Image.fromarray(np.where(mask, ink, paper).astype(np.uint8), mode="L")


def channels(ink: tuple, paper: tuple, mode: str, mask: np.ndarray = MASK) -> Image.Image:
    """A multi-band image: `ink` where the mask is set, `paper` elsewhere."""
    array = np.where(mask[..., None], np.array(ink), np.array(paper)).astype(np.uint8)
    return Image.fromarray(array, mode=mode)


def sixteen_bit(ink: int, paper: int = 0, mask: np.ndarray = MASK) -> Image.Image:
    image = Image.fromarray(np.where(mask, ink, paper).astype(np.uint16))
    assert image.mode == "I;16"
    return image


def palette_with_transparency() -> bytes:
    """Index 0 transparent black, index 1 opaque black: only the alpha tells ink from paper."""
    image = Image.fromarray(MASK.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 0, 0, 0])
    return encode(image, "PNG", transparency=0)


def animated(fmt: str, **params) -> bytes:
    """Frame 0 is the digit; frame 1 is a bar elsewhere, so using it would show."""
    frames = [gray(mask=MASK).convert("RGB"), gray(mask=BAR).convert("RGB")]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, **params)


def with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return encode(image, "JPEG", quality=95, exif=exif)


def thin(width: int, height: int) -> bytes:
    """A dash spanning almost the whole of a very thin image."""
    mask = np.zeros((height, width), dtype=bool)
    if width > height:
        mask[height // 4 : -height // 4, width // 100 : -width // 100] = True
    else:
        mask[height // 100 : -height // 100, width // 4 : -width // 4] = True
    return encode(gray(mask=mask))


def png_header(width: int, height: int, bit_depth: int = 1) -> bytes:
    """A PNG that declares any size: its IHDR is all Image.open reads, so a bomb costs nothing."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def gif_screen(width: int, height: int) -> bytes:
    """A valid 1x1 GIF whose logical screen claims width x height: PIL allocates the whole screen."""
    data = bytearray(encode(Image.new("P", (1, 1)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def noisy_png() -> bytes:
    return encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)))


def corrupt(data: bytes, at: int, length: int = 8) -> bytes:
    return data[:at] + bytes(b ^ 0xFF for b in data[at : at + length]) + data[at + length :]


def assert_digit(tensor: torch.Tensor, size: tuple[int, int] = (28, 28)) -> None:
    """Shape, dtype, range, some ink, and its centre of mass within a pixel of the canvas centre."""
    assert tensor.shape == (1, 1, *size) and tensor.dtype == torch.float32
    assert 0 <= tensor.min() and tensor.max() <= 1
    assert tensor.max() > 0.3, "no ink"
    values = tensor[0, 0].double()
    ys, xs = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    centre = ((ys * values).sum() / values.sum(), (xs * values).sum() / values.sum())
    for c, side in zip(centre, size, strict=True):
        assert abs(c - (side - 1) / 2) <= 1.0, f"centre of mass {centre} is off-centre"


REFERENCE = encode(gray())  # black "L" on white, lossless

# ---------------------------------------------------------------- refused

HOSTILE = {
    "zero bytes": (b"", "empty"),
    "random bytes": (random.Random(0).randbytes(2000), "not a recognised image"),
    "text": (b"I am a seven, honestly.\n" * 10, "not a recognised image"),
    "truncated PNG": (noisy_png()[:3000], "corrupt or truncated"),
    "truncated JPEG": (encode(gray(), "JPEG")[:400], "corrupt or truncated"),
    "PNG header CRC broken": (corrupt(REFERENCE, 29, 4), "corrupt or truncated"),
    "PNG data scrambled": (corrupt(noisy_png(), 2000, 64), "corrupt or truncated"),
    "EPS": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nnewpath 0 0 moveto showpage\n", "EPS"),
    "PDF": (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n", "PDF"),
    "TIFF": (encode(gray(), "TIFF"), "TIFF"),
    "ICO": (encode(gray().convert("RGBA"), "ICO"), "PNG, JPEG, BMP, GIF or WebP"),
    "PPM": (encode(gray(), "PPM"), "PNG, JPEG, BMP, GIF or WebP"),
    "TGA": (encode(gray(), "TGA"), "PNG, JPEG, BMP, GIF or WebP"),
    "SVG": (b'<svg xmlns="http://www.w3.org/2000/svg"><text>7</text></svg>', "SVG"),
    "HEIC": (b"\x00\x00\x00\x18ftypheic" + bytes(64), "HEIC"),
    "over the byte cap": (REFERENCE + bytes(MAX_IMAGE_BYTES), "MB limit"),
    "PNG bomb, 100000 x 100000": (png_header(100_000, 100_000), "pixels"),
    "PNG bomb, 1-bit 10000 x 10000": (png_header(10_000, 10_000), "pixels"),
    "PNG just over MAX_PIXELS": (png_header(5001, 5000), "pixels"),
    "GIF bomb, 65535 x 65535 screen": (gif_screen(65535, 65535), "pixels"),
    "GIF bomb, 6000 x 6000 screen": (gif_screen(6000, 6000), "pixels"),
    "1x1 black": (encode(Image.new("L", (1, 1), 0)), "no ink"),
    "1x1 white": (encode(Image.new("RGB", (1, 1), "white")), "no ink"),
    "blank white": (encode(Image.new("L", (64, 64), 255)), "no ink"),
    "blank black JPEG": (encode(Image.new("RGB", (64, 64)), "JPEG"), "no ink"),
    "uniform grey": (encode(Image.new("L", (64, 64), 128)), "no ink"),
    "fully transparent": (encode(Image.new("RGBA", (64, 64))), "no ink"),
    "too faint": (encode(gray(ink=240)), "no ink"),
}


@pytest.mark.parametrize("data, reason", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_images_are_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DigitImageError, match=reason):
        load_digit_image(data)


def test_refusals_are_value_errors() -> None:
    assert issubclass(DigitImageError, LatentLabError) and issubclass(DigitImageError, ValueError)


def test_each_bomb_is_caught_before_its_pixels_are_decoded() -> None:
    """The three routes: PIL's own error, PIL's warning (made an error locally), and MAX_PIXELS."""
    causes = {}
    for name, data in [("error", png_header(100_000, 100_000)), ("warning", png_header(10_000, 10_000))]:
        with pytest.raises(DigitImageError) as info:
            load_digit_image(data)
        causes[name] = type(info.value.__cause__)
    assert causes == {"error": Image.DecompressionBombError, "warning": Image.DecompressionBombWarning}
    assert 5001 * 5000 > MAX_PIXELS >= 5000 * 5000
    assert load_digit_image(encode(gray().resize((5000, 5000)), "PNG", compress_level=1)).shape == (1, 1, 28, 28)


def test_no_global_pil_or_warnings_state_changes() -> None:
    limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    for data in (png_header(10_000, 10_000), REFERENCE):
        try:
            load_digit_image(data)
        except DigitImageError:
            pass
    assert Image.MAX_IMAGE_PIXELS == limit and warnings.filters == filters


def test_other_decoders_are_never_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    """EPS runs Ghostscript and others have had CVEs: a refused format must not reach its plugin."""
    Image.init()

    def boom(*args, **kwargs):
        raise AssertionError("a decoder outside the allowlist was tried")

    for name in set(Image.OPEN) - {"PNG", "JPEG", "BMP", "GIF", "WEBP"}:
        monkeypatch.setitem(Image.OPEN, name, (boom, boom))
    for name in ("EPS", "TIFF", "ICO", "PPM", "TGA", "random bytes"):
        with pytest.raises(DigitImageError):
            load_digit_image(HOSTILE[name][0])


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        load_digit_image("a path, not bytes")  # type: ignore[arg-type]
    for size in [(0, 28), (28,), (28, 28, 1), (2000, 28)]:
        with pytest.raises(ValueError, match="size"):
            load_digit_image(REFERENCE, size)
    for fill in (0, 1.5):
        with pytest.raises(ValueError, match="fill"):
            load_digit_image(REFERENCE, fill=fill)


# ---------------------------------------------------------------- accepted

# Lossless encodings of the same black "L" on white: each must give the reference tensor exactly.
SAME_DIGIT = {
    "L PNG": REFERENCE,
    "white on black (no inversion needed)": encode(gray(ink=255, paper=0)),
    "RGBA transparent, black stroke": encode(channels((0, 0, 0, 255), (0, 0, 0, 0), "RGBA")),
    "RGBA transparent white, black stroke": encode(channels((0, 0, 0, 255), (255, 255, 255, 0), "RGBA")),
    "RGBA transparent, white stroke": encode(channels((255, 255, 255, 255), (0, 0, 0, 0), "RGBA")),
    "LA transparent, black stroke": encode(channels((0, 255), (0, 0), "LA")),
    "P with transparency": palette_with_transparency(),
    "1-bit PNG": encode(gray().convert("1")),
    "1-bit BMP": encode(gray().convert("1"), "BMP"),
    "RGB BMP": encode(gray().convert("RGB"), "BMP"),
    "GIF": encode(gray(), "GIF"),
    "WebP lossless": encode(gray().convert("RGB"), "WEBP", lossless=True),
    "I;16 full range": encode(sixteen_bit(65535)),
    "I;16 black on white": encode(sixteen_bit(0, paper=65535)),
    "animated GIF": animated("GIF"),
    "animated PNG": animated("PNG"),
    "animated WebP": animated("WEBP", lossless=True),
}


@pytest.mark.parametrize("data", SAME_DIGIT.values(), ids=SAME_DIGIT.keys())
def test_lossless_encodings_give_the_same_digit(data: bytes) -> None:
    tensor = load_digit_image(data)
    assert_digit(tensor)
    torch.testing.assert_close(tensor, load_digit_image(REFERENCE), atol=1 / 255, rtol=0)


def test_animation_uses_the_first_frame_only() -> None:
    second = load_digit_image(encode(gray(mask=BAR)))
    assert (load_digit_image(animated("GIF")) - second).abs().max() > 0.5


ACCEPTED = {
    "RGB JPEG": encode(gray().convert("RGB"), "JPEG", quality=90),
    "CMYK JPEG": encode(channels((0, 0, 0, 255), (0, 0, 0, 0), "CMYK"), "JPEG", quality=95),
    "L JPEG, grey paper": encode(gray(ink=20, paper=180), "JPEG"),
    "YCbCr JPEG": encode(gray().convert("YCbCr"), "JPEG"),
    "WebP lossy": encode(gray().convert("RGB"), "WEBP", quality=80),
    "3x3 with one ink pixel": encode(Image.fromarray(np.pad(np.array([[255]], np.uint8), 1))),
    "10000x20": thin(10_000, 20),
    "20x10000": thin(20, 10_000),
    "big photo, thin pen": encode(gray(mask=ell_mask(1500, 2000, stroke=12)), compress_level=1),
}


@pytest.mark.parametrize("data", ACCEPTED.values(), ids=ACCEPTED.keys())
@pytest.mark.parametrize("size", [(28, 28), (8, 8), (32, 24)])
def test_accepted_images_give_a_centred_digit(data: bytes, size: tuple[int, int]) -> None:
    assert_digit(load_digit_image(data, size), size)


def test_lossy_encodings_are_close_to_the_reference() -> None:
    reference = load_digit_image(REFERENCE)
    for name in ("RGB JPEG", "CMYK JPEG", "L JPEG, grey paper", "WebP lossy"):
        assert (load_digit_image(ACCEPTED[name]) - reference).abs().mean() < 0.03, name


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    """PIL's convert("L") clips 16-bit values to 255: a mid-grey stroke would come out white, and a
    stroke at 300 of 65535 (near black) would be full ink instead of too faint."""
    peak = load_digit_image(encode(sixteen_bit(32768))).max().item()
    assert peak == pytest.approx(128 / 255, abs=2 / 255)
    with pytest.raises(DigitImageError, match="no ink"):
        load_digit_image(encode(sixteen_bit(300)))


def test_light_and_dark_backgrounds_give_the_same_digit() -> None:
    for ink, paper in [(0, 255), (30, 220)]:
        light = load_digit_image(encode(gray(ink=ink, paper=paper)))
        dark = load_digit_image(encode(gray(ink=255 - ink, paper=255 - paper)))
        assert torch.equal(light, dark)


@pytest.mark.parametrize(
    "orientation, stored_as",
    [(3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)],
)
def test_exif_orientation_is_applied(orientation: int, stored_as: Image.Transpose) -> None:
    """A camera stores the pixels sideways and says how to turn them; the digit must come out upright."""
    upright = gray().convert("RGB")
    expected = load_digit_image(encode(upright, "JPEG", quality=95))
    sideways = upright.transpose(stored_as)
    assert (load_digit_image(with_orientation(sideways, orientation)) - expected).abs().mean() < 0.02
    assert (load_digit_image(encode(sideways, "JPEG", quality=95)) - expected).abs().mean() > 0.05


def test_thin_pen_strokes_stay_bright() -> None:
    """A 12 px stroke on a 2000 px digit is 0.12 px at 20 px: without the peak restore it is grey."""
    assert load_digit_image(ACCEPTED["big photo, thin pen"]).max() > 0.95


def inked_rows(tensor: torch.Tensor) -> int:
    return int((tensor[0, 0].amax(dim=1) > 0.1).sum())


def test_size_8x8_and_fill() -> None:
    """The digit is taller than wide, so its height is the box: round(8 * 20/28) = 6, or 8 at fill=1."""
    assert inked_rows(load_digit_image(REFERENCE, (8, 8))) == 6
    assert inked_rows(load_digit_image(REFERENCE, (8, 8), fill=1.0)) == 8
    assert inked_rows(load_digit_image(REFERENCE)) == 20


def test_steps_are_named_displayable_and_end_in_the_tensor() -> None:
    for data in (ACCEPTED["CMYK JPEG"], encode(sixteen_bit(32768)), REFERENCE):
        steps = preprocess_steps(data)
        assert tuple(s.name for s in steps) == STEP_NAMES
        assert all(s.image.mode in {"1", "L", "LA", "P", "RGB", "RGBA"} and s.note for s in steps)
        final = torch.from_numpy(np.asarray(steps[-1].image, dtype=np.float32) / 255)
        assert torch.equal(final[None, None], load_digit_image(data))
    assert steps[-2].image.size == steps[-1].image.size == (28, 28)


@pytest.mark.parametrize(
    "mode",
    [
        "1",
        "L",
        "P",
        "RGB",
        "RGBA",
        "RGBX",
        "RGBa",
        "LA",
        "La",
        "PA",
        "CMYK",
        "YCbCr",
        "LAB",
        "HSV",
        "I",
        "F",
        "I;16",
        "I;16B",
        "I;16L",
        "I;16N",
    ],
)
def test_every_pil_mode_becomes_grayscale(mode: str) -> None:
    image = Image.frombytes(mode, (5, 3), bytes(range(200, 256)) * 10)
    result = _to_grayscale(image)
    assert result.mode == "L" and result.size == (5, 3)


# ---------------------------------------------------------------- properties

VALID_SMALL = [encode(gray().resize((12, 16)), fmt) for fmt in ("PNG", "GIF", "JPEG", "BMP", "WEBP")]
MAGIC = [b"\x89PNG\r\n\x1a\n", b"GIF89a", b"GIF87a", b"\xff\xd8\xff", b"BM", b"RIFF\x00\x01\x00\x00WEBPVP8 "]


def check_contract(data: bytes) -> None:
    """Either a valid (1, 1, 28, 28) tensor in [0, 1] or a ValueError, never anything else."""
    try:
        tensor = load_digit_image(data)
    except ValueError:
        return
    assert tensor.shape == (1, 1, 28, 28) and tensor.dtype == torch.float32
    assert torch.isfinite(tensor).all() and 0 <= tensor.min() and tensor.max() <= 1


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data: bytes) -> None:
    check_contract(data)


@FUZZ
@given(st.sampled_from(MAGIC), st.binary(max_size=512))
def test_arbitrary_bytes_behind_a_real_signature(magic: bytes, rest: bytes) -> None:
    check_contract(magic + rest)


@FUZZ
@given(st.sampled_from(VALID_SMALL), st.data())
def test_mutated_valid_files(data: bytes, draw: st.DataObject) -> None:
    cut = draw.draw(st.integers(1, len(data)))
    edits = draw.draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=6))
    mutated = bytearray(data[:cut] if draw.draw(st.booleans()) else data)
    for at, value in edits:
        if at < len(mutated):
            mutated[at] = value
    check_contract(bytes(mutated))


MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "CMYK", "YCbCr", "I", "F", "LAB", "HSV", "PA"]


@st.composite
def small_images(draw: st.DrawFn) -> bytes:
    """Any mode, any small size, any pixels, in any allowed format that can hold that mode."""
    mode = draw(st.sampled_from(MODES))
    size = (draw(st.integers(1, 16)), draw(st.integers(1, 16)))
    length = len(Image.new(mode, size).tobytes())
    image = Image.frombytes(mode, size, draw(st.binary(min_size=length, max_size=length)))
    try:
        return encode(image, draw(st.sampled_from(["PNG", "JPEG", "BMP", "GIF", "WEBP"])))
    except (OSError, ValueError, KeyError):
        reject()  # this format cannot hold this mode


@FUZZ
@given(small_images())
def test_arbitrary_small_images(data: bytes) -> None:
    check_contract(data)


@pytest.mark.parametrize("fmt, mode", [("PNG", "L"), ("PNG", "RGBA"), ("JPEG", "RGB"), ("PNG", "I;16"), ("GIF", "P")])
def test_a_large_photo_is_shrunk_on_decoding_and_gives_the_same_digit(fmt: str, mode: str) -> None:
    def image(mask: np.ndarray) -> Image.Image:
        return sixteen_bit(0, 65535, mask) if mode == "I;16" else gray(mask=mask).convert(mode)

    small, large = image(MASK), image(np.kron(MASK, np.ones((50, 50), dtype=bool)))  # 3000 x 4000: a photo
    steps = preprocess_steps(encode(large, fmt))
    assert steps[0].image.size == (887, 1182) and "3000x4000, shrunk to 887x1182" in steps[0].note
    assert all(step.image.width * step.image.height <= 2**20 for step in steps)
    big_digit = load_digit_image(encode(large, fmt))
    assert_digit(big_digit)
    assert (big_digit - load_digit_image(encode(small, fmt))).abs().max() < 0.25  # the same "L"
