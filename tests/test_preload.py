"""ui/preload.py: `streamlit run app.py` starts an st.App whose lifespan imports the heavy packages."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import time
from pathlib import Path

from streamlit.web.server.app_discovery import discover_asgi_app

from ui import preload

ROOT = Path(__file__).resolve().parent.parent


def test_streamlit_run_finds_the_app_with_its_lifespan():
    found = discover_asgi_app(ROOT / "app.py")
    assert found.is_asgi_app and found.import_string == "app:app"


def test_preload_imports_only_the_standard_library():
    tree = ast.parse((ROOT / "ui" / "preload.py").read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert names <= set(sys.stdlib_module_names) | {"__future__"}


def test_every_preloaded_module_exists():
    for name in preload.FIRST_PAGE_MODULES:
        importlib.import_module(name)


def test_lifespan_imports_torch_in_the_background_and_wait_returns_after():
    """In a fresh interpreter: the lifespan returns at once, and wait() ends once torch is imported."""
    code = (
        "import asyncio, sys, time\n"
        "from ui import preload\n"
        "async def main():\n"
        "    t0 = time.perf_counter()\n"
        "    async with preload.lifespan(None):\n"
        "        entered = time.perf_counter() - t0\n"
        "    busy = preload.pending()\n"
        "    preload.wait()\n"
        "    print(entered, 'torch' in sys.modules, 'altair' in sys.modules, busy, preload.pending())\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    entered, has_torch, has_altair, busy, still_busy = out.stdout.split()
    assert float(entered) < 0.5, "the lifespan must not block the server's start"
    assert has_torch == "True"
    assert has_altair == "True", "imported for the other pages and before ui/warmup.py's thread starts"
    assert (busy, still_busy) == ("True", "False"), "pending() is what app.py shows the renderer warm-up by"


def test_the_light_phase_imports_no_torch_and_ends_before_torch_is_imported(monkeypatch):
    """In a fresh interpreter, the light modules load without torch (nor Altair, PIL, scikit-learn);
    and the preload marks its light phase over before it asks for torch."""
    code = (
        "import importlib, sys\n"
        "from ui import preload\n"
        "for name in preload.LIGHT_MODULES:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in ('torch', 'altair', 'PIL', 'sklearn', 'torchvision') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

    seen = []
    monkeypatch.setattr(preload, "_light", type(preload._light)())
    monkeypatch.setattr(preload, "_done", type(preload._done)())
    monkeypatch.setattr(preload, "HEAVY_DELAY_S", 0.0)
    monkeypatch.setattr(preload, "_import", lambda name: seen.append((name, preload._light.is_set())))
    preload._import_all()
    light = [name for name, after in seen if not after]
    assert light == list(preload.LIGHT_MODULES)
    assert ("torch", True) in seen and preload._done.is_set()


def test_wait_returns_at_once_without_a_preload():
    assert preload._started.is_set() or not preload.pending()
    t0 = time.perf_counter()
    if not preload._started.is_set():
        preload.wait()
    assert time.perf_counter() - t0 < 0.1


def test_freed_memory_can_be_trimmed_on_linux():
    if not sys.platform.startswith("linux"):
        return
    assert preload.trim_memory(), "glibc's malloc_trim should be callable on Linux"


def test_malloc_arenas_can_be_capped_on_linux():
    if not sys.platform.startswith("linux"):
        return
    assert preload.limit_arenas(), "glibc's mallopt(M_ARENA_MAX) should be callable on Linux"


def test_the_heavy_phase_waits_until_a_script_run_needs_it(monkeypatch):
    """The first latent page is drawn while torch is not being imported; a run that needs torch (or
    HEAVY_DELAY_S) starts it. The warm-up thread's wait does not."""
    import threading

    seen = []
    for name in ("_light", "_done", "_wanted", "_started"):
        monkeypatch.setattr(preload, name, threading.Event())
    monkeypatch.setattr(preload, "HEAVY_DELAY_S", 60.0)
    monkeypatch.setattr(preload, "_import", seen.append)
    preload._started.set()
    thread = threading.Thread(target=preload._import_all, daemon=True)
    thread.start()
    preload.wait_light()
    preload.wait(timeout_s=0.3, hurry=False)
    assert seen == list(preload.LIGHT_MODULES) and preload.pending() and not preload.light_pending()
    preload.wait(timeout_s=10)
    assert seen == list(preload.FIRST_PAGE_MODULES) and not preload.pending()
    thread.join(10)


def test_a_request_for_a_page_that_needs_torch_starts_the_heavy_phase(monkeypatch):
    """While the browser loads the front end (before any script run), by the page's URL only."""
    import asyncio
    import threading

    calls = []

    async def inner(scope, receive, send):
        calls.append(scope["path"])

    hurry = preload.HurryFor(inner, pages=frozenset({"samples", "train"}))
    for path, hurried in (
        ("/", False),
        ("/latent", False),
        ("/static/js/index.js", False),
        ("/_stcore/health", False),
        ("/api/thumbs/mnist-vae-z2/abc/7.png", False),
        ("/samples", True),
        ("/demo/train/", True),  # under a base URL path
    ):
        monkeypatch.setattr(preload, "_wanted", threading.Event())
        asyncio.run(hurry({"type": "http", "path": path}, None, None))
        assert preload._wanted.is_set() == hurried, path
    assert len(calls) == 7, "every request goes on to the app"


def test_the_server_hurries_for_every_page_but_the_light_ones():
    import app
    from ui import shell

    urls = {page.url for page in shell.PAGES}
    assert set(shell.LIGHT_PAGES) == {"", "latent"} <= urls and all((ROOT / p.file).is_file() for p in shell.PAGES)
    (hurry,) = [m for m in app.app._user_middleware if m.cls is preload.HurryFor]
    assert hurry.kwargs["pages"] == urls - {"", "latent"}
