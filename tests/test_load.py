"""Smoke test of tests/load.py: two browser visitors for about 15 s, every page, no errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"  # what tests/load.py launches
SMOKE_ARGS = ["--visitors", "2", "--seconds", "15", "--settle", "1", "--no-warmup", "--min-rounds", "1"]
PAGES = {"home", "latent-raw", "latent-pca", "latent-tsne", "latent-umap", "samples", "interpolate", "train"}
PAGES |= {"compare", "digit", "dimensions"}
TIMEOUT_S = 180  # the load test bounds itself; this only guards against a hung interpreter


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.mark.slow
def test_two_visitors_open_every_page_without_errors() -> None:
    if not os.path.exists(CHROMIUM):
        if _in_ci():
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run installs it with apt-get")
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    # Run as a user would (python -m tests.load): its own event loop, and the exit status is checked too.
    done = subprocess.run(
        [sys.executable, "-m", "tests.load", *SMOKE_ARGS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"no output; stderr:\n{done.stderr[-3000:]}"
    result = json.loads(lines[-1])
    assert result["errors"] == 0, result["error_samples"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert set(result["per_page"]) == PAGES
    for name, page in result["per_page"].items():
        assert page["loads"] >= 1 and page["p50_s"] is not None, f"no page time for {name}: {page}"
    memory = result["memory_mb"]
    assert memory["peak"] >= memory["start"] > 0
