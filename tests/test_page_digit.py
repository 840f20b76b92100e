"""Your-own-digit page: an uploaded digit is preprocessed, encoded and placed; bad images are refused."""

from __future__ import annotations

import io
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from vae_core.digit_image import STEP_NAMES

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def digit_png(background: int = 255, ink: int = 0) -> bytes:
    img = Image.new("L", (200, 200), background)
    ImageDraw.Draw(img).line([(100, 30), (100, 170)], fill=ink, width=18)  # a "1"
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def open_digit_page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["digit_points"] = 200
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    at.switch_page("pages/digit.py")
    return at.run()


def test_an_uploaded_digit_is_shown_step_by_step_and_placed_on_the_map() -> None:
    at = open_digit_page()
    assert not at.exception
    at.file_uploader(key="digit_upload").set_value(("one.png", digit_png(), "image/png")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    captions = " ".join(c.value for c in at.caption)
    assert "black cross is your digit's μ, placed exactly" in captions
    # σ beside a yardstick: the test digits' median mean σ of this model (the bundled Z = 2 VAE)
    from ui import cache, state

    entry = state.get_entry("mnist-vae-z2")
    _, logvar = cache.latents(entry.fingerprint, entry)
    typical = np.median(np.exp(0.5 * logvar).mean(1))
    assert f"against a median of {typical:.2f} for the test digits" in captions
    assert len(at.get("vega_lite_chart")) == 1
    assert len(at.get("image")) >= 7 + 3  # the preprocessing steps, input, reconstruction, neighbours
    assert [d.label for d in at.download_button] == [
        "Download preprocessing steps (PNG)",
        "Download input and reconstruction (PNG)",
        "Download nearest test digits (PNG)",
    ]


def test_the_preprocessing_strip_is_one_png_with_every_step_at_one_height() -> None:
    from ui import digit_view
    from vae_core.digit_image import preprocess_steps

    steps = preprocess_steps(digit_png())
    strip = Image.open(io.BytesIO(digit_view.steps_png(steps)))
    assert strip.format == "PNG" and strip.height == digit_view.STRIP_HEIGHT
    widths = [round(s.image.width * digit_view.STRIP_HEIGHT / s.image.height) for s in steps]
    assert strip.width == sum(widths) + digit_view.STRIP_GAP * (len(steps) - 1)


def test_a_hostile_image_gives_a_clear_error_and_the_page_keeps_working() -> None:
    at = open_digit_page()
    at.file_uploader(key="digit_upload").set_value(("bad.png", b"%PDF-1.4 not an image", "image/png")).run()
    assert not at.exception
    assert "This image was not used" in at.error[0].value
    at.switch_page("pages/latent.py")
    at.run()
    assert not at.exception


class FakeCanvasResult:
    """What streamlit_drawable_canvas's st_canvas returns with return_image_data=True: the canvas as an
    RGBA array (image_data) and as PNG bytes (image_bytes)."""

    def __init__(self, rgba: np.ndarray, strokes: int = 1) -> None:
        self.json_data = {"objects": [{"type": "path"}] * strokes}
        self.image_data = rgba
        buf = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buf, "PNG")
        self.image_bytes = buf.getvalue()


def drawn_seven(background_alpha: int) -> np.ndarray:
    """A 280 x 280 canvas with a black "7" on white (opaque, or transparent where nothing was drawn)."""
    img = Image.new("RGBA", (280, 280), (255, 255, 255, background_alpha))
    ImageDraw.Draw(img).line([(60, 60), (220, 60), (120, 230)], fill=(0, 0, 0, 255), width=22)
    return np.asarray(img)


def fake_canvas(monkeypatch, result: FakeCanvasResult) -> None:
    canvas = types.ModuleType("streamlit_drawable_canvas")
    canvas.st_canvas = lambda **kwargs: result
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", canvas)


@pytest.mark.parametrize("background_alpha", [255, 0], ids=["opaque", "transparent"])
def test_a_drawn_digit_is_shown_step_by_step_with_its_sigma_ellipse(monkeypatch, background_alpha: int) -> None:
    fake_canvas(monkeypatch, FakeCanvasResult(drawn_seven(background_alpha)))
    at = open_digit_page()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not any("unavailable" in i.value for i in at.info)
    step_captions = [c for image in at.get("image") for c in image.captions]
    for name in STEP_NAMES:
        assert any(c.startswith(f"{name}: ") for c in step_captions), name
    layers = json.loads(at.get("vega_lite_chart")[0].proto.spec)["layer"]
    assert any(layer["mark"]["type"] == "line" for layer in layers)  # the 1σ ellipse
    mark = layers[-1]["mark"]  # drawn last, large and white-rimmed, to stand out in a dense cluster
    assert mark["shape"] == "cross" and mark["size"] >= 300 and mark["stroke"] == "white"
    caption = next(c.value for c in at.caption if "your digit's μ" in c.value)
    assert "1σ ellipse (σ = " in caption


def test_a_cleared_canvas_asks_for_a_digit_instead_of_refusing_a_blank_image(monkeypatch) -> None:
    blank = np.full((280, 280, 4), 255, dtype=np.uint8)
    fake_canvas(monkeypatch, FakeCanvasResult(blank, strokes=0))
    at = open_digit_page()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Draw a digit or upload an image" in i.value for i in at.info)


def test_under_tsne_your_digit_is_placed_by_opentsnes_transform() -> None:
    """t-SNE has no map for new points: the cross goes where openTSNE's transform puts it in the layout."""
    at = open_digit_page({"projection": "tsne"})
    at.file_uploader(key="digit_upload").set_value(("one.png", digit_png(), "image/png")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    captions = " ".join(c.value for c in at.caption)
    assert "black cross is your digit's μ, placed into this t-SNE layout by openTSNE's transform" in captions
