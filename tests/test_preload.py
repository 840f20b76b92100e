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
    assert has_altair == "False", "no module of the first page imports Altair at import time (vae_core/charts.py)"
    assert (busy, still_busy) == ("True", "False"), "pending() is what app.py shows the renderer warm-up by"


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
