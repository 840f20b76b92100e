"""The hosted demo's requirements (deploy/requirements-cloud.txt) pin the same runtime as requirements.txt."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pins(path: Path, stop_at: str | None = None) -> dict[str, str]:
    """name -> version of every `name==version` line, up to the line `stop_at` (comments dropped)."""
    out = {}
    for line in path.read_text().splitlines():
        if stop_at and line.strip() == stop_at:
            break
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[name.lower()] = version.split("+", 1)[0]  # 2.14.1+cpu is the CPU build of 2.14.1
    return out


def test_cloud_requirements_pin_the_same_runtime_packages() -> None:
    runtime = pins(ROOT / "requirements.txt", stop_at="# Tests.")
    cloud = pins(ROOT / "deploy" / "requirements-cloud.txt")
    assert {"torch", "torchvision", "streamlit", "pandas"} <= set(runtime)
    assert cloud == runtime


def test_every_direct_dependency_is_pinned() -> None:
    pinned = pins(ROOT / "requirements.txt")
    for name in ("torch", "torchvision", "streamlit", "altair", "scikit-learn", "umap-learn", "pillow"):
        assert name in pinned, name
    for name in ("safetensors", "pytest", "pandas", "pyarrow", "playwright", "hypothesis", "opentsne"):
        assert name in pinned, name
