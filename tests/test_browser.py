"""Real-browser test: `streamlit run app.py` on a free loopback port, every page in headless Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from vae_core import appserver
from vae_core.bench import PIXELS_JS  # the chart's canvas, shrunk to 48 x 48, as a string

ROOT = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "tests" / "screenshots"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
# latent first: a deep link as the server's very first request (see ui/shell.py)
PAGES = {
    "latent": "/latent?projection=pca",
    "home": "/",
    "train": "/train",
    "samples": "/samples",
    "interpolate": "/interpolate",
    "compare": "/compare",
    "digit": "/digit",
    "dimensions": "/dimensions?model=mnist-vae-z20",
    # every layer at once (the README's first picture): 1σ ellipses, prior draws, the decoded manifold
    "hero": "/latent?model=mnist-vae-z2&projection=raw&prior=25&sigma=1&manifold=1",
}
STARTUP_S = 90


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs it with apt-get")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    log_path = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    with appserver.running(log_path, STARTUP_S) as (_, url):
        yield url


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1300}, accept_downloads=True)
        yield tab
        browser.close()


def _settle(tab) -> None:
    """Wait for the title, then for the script run to finish (the status widget goes away)."""
    tab.wait_for_selector("h1", timeout=90_000)
    tab.wait_for_selector('[data-testid="stSidebar"] [data-testid="stSelectbox"]', timeout=90_000)
    tab.wait_for_timeout(500)
    tab.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)
    tab.wait_for_timeout(1000)


@contextlib.contextmanager
def _fresh_tab(page, width: int = 1400, height: int = 1300):
    """A tab in a new browser context (its own history and session), closed afterwards."""
    context = page.context.browser.new_context(viewport={"width": width, "height": height})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_without_errors(server, page, name: str) -> None:
    page.goto(server + PAGES[name])
    _settle(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').count() == 2
    assert page.get_by_text("Start here").count() >= 1  # app.py's navigation, not file names
    if name in ("latent", "interpolate", "hero"):
        assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 1
    if name in ("samples", "interpolate", "compare", "dimensions"):
        assert page.locator('[data-testid="stImage"] img').count() >= 1


def test_choosing_a_projection_updates_the_url(server, page) -> None:
    page.goto(server + "/latent?projection=raw")
    _settle(page)
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1).click()
    page.get_by_role("option", name="PCA").click()
    page.wait_for_url("**projection=pca**", timeout=30_000)
    _settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("· PCA").count() == 1  # the scatter's caption names the new projection


# The chart's picture at the first animation frame in which it differs from now.
FIRST_CHANGE_JS = """(pixels) => { const drawn = eval('(' + pixels + ')'); const before = drawn();
  window.__firstChange = new Promise(resolve => { const tick = () => { const now = drawn();
    if (now !== before) resolve(now); else requestAnimationFrame(tick); }; requestAnimationFrame(tick); }); }"""
# Watches the chart from now on: "redrawn" once its canvas shows `target`, or "rebuilt" if Streamlit
# replaced the canvas (a new Vega view) before that.
FIRST_OF_JS = """([pixels, target]) => { const drawn = eval('(' + pixels + ')');
  const canvas = () => document.querySelector('[data-testid="stVegaLiteChart"] canvas');
  const first = canvas(), t0 = performance.now();
  window.__firstOf = new Promise(resolve => { const tick = () => {
    if (canvas() !== first) resolve('rebuilt');
    else if (drawn() === target) resolve('redrawn');
    else if (performance.now() - t0 > 20000) resolve('timeout');
    else requestAnimationFrame(tick); }; requestAnimationFrame(tick); }); }"""


def test_the_buttons_under_the_scatter_switch_it_and_the_server_follows(server, page) -> None:
    """A radio button under the chart: the points move in the browser, then the rerun it triggers makes
    the choice the session's (sidebar, URL, caption), and the chart is not rebuilt back to the old one."""
    page.goto(server + "/latent?model=mnist-vae-z20&projection=raw&points=500")
    _settle(page)
    chart = page.locator('[data-testid="stVegaLiteChart"]')
    drawn, flipped = {}, {}
    for label, method in (("t-SNE", "tsne"), ("UMAP", "umap"), ("raw (two latent dims)", "raw")):
        page.evaluate(FIRST_CHANGE_JS, PIXELS_JS)
        chart.get_by_label(label, exact=True).click()
        flipped[method] = page.evaluate("() => window.__firstChange")  # the redraw in the browser
        page.wait_for_url(f"**projection={method}**", timeout=30_000)
        _settle(page)
        assert page.get_by_text(f"· {label}").count() == 1  # the caption under the chart
        sidebar = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1)
        assert sidebar.locator("input").input_value() == label
        assert chart.get_by_label(label, exact=True).is_checked()
        drawn[method] = page.evaluate(PIXELS_JS)
    # A zoom belongs to one projection's axes: a button clears it, so the new projection comes whole.
    chart.locator("canvas").hover()
    for _ in range(4):
        page.mouse.wheel(0, -200)
        page.wait_for_timeout(100)
    zoomed = page.evaluate(PIXELS_JS)
    assert zoomed != drawn["raw"]
    page.evaluate(FIRST_OF_JS, [PIXELS_JS, flipped["tsne"]])
    chart.get_by_label("t-SNE", exact=True).click()
    # The whole t-SNE must come from the redraw in the browser, not from the rebuild after the rerun.
    assert page.evaluate("() => window.__firstOf") == "redrawn"
    # Full screen rebuilds the chart (on the spec's opening choice, with the selection Streamlit
    # restores): it must still show the buttons' last choice.
    page.wait_for_url("**projection=tsne**", timeout=30_000)
    _settle(page)
    chart.locator("canvas").hover()
    page.get_by_role("button", name="Fullscreen").click()
    page.wait_for_timeout(1500)
    assert chart.get_by_label("t-SNE", exact=True).is_checked()
    page.keyboard.press("Escape")
    page.wait_for_timeout(1500)
    assert chart.get_by_label("t-SNE", exact=True).is_checked()
    assert page.evaluate(PIXELS_JS) == drawn["tsne"]
    # The sidebar after the buttons: the chart is rebuilt on the sidebar's choice, not on the buttons' last.
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1).click()
    page.get_by_role("option", name="UMAP").click()
    page.wait_for_url("**projection=umap**", timeout=30_000)
    _settle(page)
    assert chart.get_by_label("UMAP", exact=True).is_checked()
    assert page.evaluate(PIXELS_JS) == drawn["umap"] != drawn["raw"]
    assert page.locator('[data-testid="stException"]').count() == 0


def test_hovering_a_point_shows_its_digit_served_by_the_apps_route(server, page) -> None:
    """A bundled model's tooltips link their images (ui/thumbs.py): the browser must load them."""
    page.goto(server + "/latent?model=mnist-vae-z2&projection=raw&points=2000")
    _settle(page)
    box = page.locator('[data-testid="stVegaLiteChart"] canvas').first.bounding_box()
    image = page.locator("#vg-tooltip-element.visible img")
    for fx, fy in ((x / 10, y / 10) for y in range(3, 8) for x in range(3, 8)):  # the clusters are central
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        page.wait_for_timeout(250)
        if image.count():
            break
    assert image.count() == 1, "no tooltip with an image over the scatter"
    loaded = "() => { const img = document.querySelector('#vg-tooltip-element img'); return img.naturalWidth; }"
    page.wait_for_function(loaded, timeout=10_000)
    assert "/api/thumbs/mnist-vae-z2/" in image.get_attribute("src")
    assert image.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [2 * 28 + 2, 28]  # digit | reconstruction
    shown = image.bounding_box()  # drawn three times as large (ui/shell.COMPACT_CSS), to be read from afar
    assert (round(shown["width"]), round(shown["height"])) == (3 * (2 * 28 + 2), 3 * 28)
    words = page.locator("#vg-tooltip-element").inner_text()
    assert "the test digit | its reconstruction from μ" in words  # which picture is which


@pytest.mark.parametrize(
    ("path", "label", "magic"),
    [
        ("/samples", "Download grid (PNG)", b"\x89PNG"),
        ("/interpolate", "linear (animated GIF)", b"GIF89a"),
        ("/latent?projection=pca&points=500", "Download these coordinates (CSV)", b"x,y,"),
        ("/train", "Download this model (.safetensors)", None),
    ],
)
def test_downloads_are_made_on_click(server, page, tmp_path, path: str, label: str, magic: bytes | None) -> None:
    """Download files are built only when clicked (nothing held per rerun); the file that arrives is whole."""
    page.goto(server + path)
    _settle(page)
    with page.expect_download(timeout=60_000) as caught:
        page.get_by_role("button", name=label).click()
    data = Path(caught.value.path()).read_bytes()
    if magic is None:  # a checkpoint: it must load as one
        from vae_core import load_checkpoint

        target = tmp_path / "model.safetensors"
        target.write_bytes(data)
        model, _ = load_checkpoint(target)
        assert model.config.latent_dim >= 2
    else:
        assert data.startswith(magic), data[:40]


def test_stop_during_training_keeps_the_epochs_done(server, page) -> None:
    """A click on Stop in the browser: Streamlit stops the run (with fast reruns, every st.* call in it
    then raises again), and the model of the last completed epoch must still become current."""
    import re

    page.goto(server + "/train")
    _settle(page)
    page.get_by_role("tab", name="Train").click()
    for label, value in (("Epochs", 100), ("Hidden size", 1024)):
        box = page.get_by_role("spinbutton", name=label)
        box.fill(str(value))
        box.press("Tab")
    page.get_by_role("button", name="Train", exact=True).click()
    progress = page.get_by_text(re.compile(r"epoch ([3-9]|\d\d)/100"))
    progress.first.wait_for(timeout=120_000)
    page.get_by_role("button", name="Stop (keeps the epochs done so far)").click()
    kept = page.get_by_text(re.compile(r"Stopped after epoch \d+ of 100; the new model is now current"))
    kept.wait_for(timeout=60_000)
    _settle(page)
    assert page.get_by_role("tab", name="Train").get_attribute("aria-selected") == "true"  # still open
    model = page.locator('[data-testid="stSidebar"] input[aria-label="Model"]').input_value()
    assert "trained here" in model, model
    assert page.locator('[data-testid="stException"]').count() == 0


def test_back_returns_to_the_previous_page(server, page) -> None:
    """Every query-string change is a browser history entry: the app writes the URL at most once a run
    (it used to write each key in turn, and Back then took about seven presses per page)."""
    with _fresh_tab(page) as tab:
        tab.goto(server + "/latent?model=mnist-vae-z20")
        _settle(tab)
        first = tab.evaluate("history.length")
        assert first <= 3, first  # the new tab's blank page, the page load, and one write of its settings
        tab.locator('[data-testid="stSidebarNav"] a', has_text="Random samples").click()
        _settle(tab)
        assert tab.locator("h1", has_text="Random samples").count() == 1
        assert tab.evaluate("history.length") - first <= 2, first  # the navigation, and one write
        # A change of page empties the query string; the session's model stays, and goes back into it.
        assert tab.locator('[data-testid="stSidebar"] input[aria-label="Model"]').input_value() == "MNIST VAE, Z=20"
        assert "model=mnist-vae-z20" in tab.url
        for _ in range(2):  # the first Back may land on the samples page under the latent page's settings
            tab.go_back()
            _settle(tab)
            if tab.locator("h1", has_text="Latent space").count():
                break
        assert tab.locator("h1", has_text="Latent space").count() == 1
        assert tab.locator('[data-testid="stException"]').count() == 0


def _box(tab, selector: str, nth: int = 0) -> dict:
    return tab.locator(selector).nth(nth).bounding_box()


@pytest.mark.parametrize("width", [800, 1024, 1400])
def test_a_projector_sized_window_gives_the_plot_the_width(server, page, width: int) -> None:
    """ui/shell.COMPACT_CSS: up to 1280 px the page's side margins shrink from 80 to 24 px; up to 900 px
    a column narrower than 240 px wraps onto a row of its own, so the latent page's controls go below
    the plot instead of squeezing it. Wider windows keep Streamlit's own layout."""
    with _fresh_tab(page, width, 900) as tab:
        tab.goto(server + "/latent?model=mnist-vae-z2&projection=raw")
        _settle(tab)
        main = _box(tab, '[data-testid="stMainBlockContainer"]')
        title = _box(tab, "h1")
        assert title["x"] - main["x"] == (24 if width <= 1280 else 80), title["x"] - main["x"]
        plot = _box(tab, '[data-testid="stMainBlockContainer"] [data-testid="stVegaLiteChart"]')
        slider = _box(tab, '[data-testid="stMainBlockContainer"] [data-testid="stSlider"]')  # Test digits to plot
        beside = slider["x"] > plot["x"] + plot["width"] - 1
        assert beside == (width > 900), (plot, slider)
        if not beside:
            assert slider["y"] > plot["y"] + plot["height"] - 1  # below it, at full width
            assert plot["width"] > 0.9 * (main["width"] - 48)
        assert tab.locator('[data-testid="stException"]').count() == 0


@pytest.mark.parametrize("width", [800, 1024, 1400])
def test_the_start_pages_links_are_never_cut_short(server, page, width: int) -> None:
    """Each link sits in a box of its own width and the boxes wrap (pages/home.py): four columns a row
    cut "Train or load a model" short at 1024 px with the sidebar open."""
    with _fresh_tab(page, width, 900) as tab:
        tab.goto(server + "/")
        _settle(tab)
        links = tab.locator('[data-testid="stMainBlockContainer"] [data-testid="stPageLink"] p')
        assert links.count() == 7
        cut = links.evaluate_all("els => els.filter(e => e.scrollWidth > e.clientWidth).map(e => e.innerText)")
        assert cut == [], cut
        assert tab.locator('[data-testid="stException"]').count() == 0


def test_back_undoes_a_projection_switch_made_with_the_buttons(server, page) -> None:
    """A switch by the buttons under the plot is a history entry like one by the sidebar: Back brings
    the previous projection back, in the URL, the sidebar and the chart's own buttons."""
    with _fresh_tab(page) as tab:
        tab.goto(server + "/latent?model=mnist-vae-z2&projection=raw")
        _settle(tab)
        chart = tab.locator('[data-testid="stVegaLiteChart"]')
        sidebar = tab.locator('[data-testid="stSidebar"] input[aria-label="Projection to 2-D"]')
        chart.get_by_label("PCA", exact=True).click()
        tab.wait_for_url("**projection=pca**", timeout=30_000)
        _settle(tab)
        assert sidebar.input_value() == "PCA"
        tab.go_back()
        tab.wait_for_url("**projection=raw**", timeout=30_000)
        _settle(tab)
        assert sidebar.input_value() == "raw (two latent dims)"
        assert chart.get_by_label("raw (two latent dims)", exact=True).is_checked()
        assert tab.get_by_text("· raw (two latent dims)").count() == 1  # the caption under the chart
        assert tab.locator('[data-testid="stException"]').count() == 0
