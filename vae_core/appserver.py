"""Run `streamlit run app.py` on a free loopback port: shared by the benchmark, the load test and the browser test."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(log_path: Path, port: int | None = None, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start the app on 127.0.0.1 only; output goes to a file, so a pipe nobody reads can never block it."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 90, poll_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(poll_s)
    raise TimeoutError(f"streamlit was not healthy after {timeout_s:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def log_tail(log_path: Path, chars: int = 3000) -> str:
    try:
        return log_path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@contextmanager
def running(log_path: Path, timeout_s: float = 90, env: dict | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """The app, healthy, for the length of the block; stopped afterwards whatever happens."""
    proc, url = start(log_path, env=env)
    try:
        try:
            wait_healthy(url, proc, timeout_s)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n--- server log tail ---\n{log_tail(log_path)}") from exc
        yield proc, url
    finally:
        stop(proc)
