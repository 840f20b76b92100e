"""The training step's elementwise passes in C (kernels.c), compiled on first use with the machine's C
compiler and loaded with ctypes.

Why: a bfloat16 step of the 784-400-20 model is about half matrix multiplies; much of the rest is some
thirty small torch calls on the loss and the latent head, each a pass over memory with its own
dispatch. kernels.c does that work in three passes, and in bfloat16 it also does Adam together with the
two casts around it (on torch's own OpenMP threads). Where no compiler is found, compiling fails, or
LATENT_LAB_KERNELS=0 is set, `load()` returns None and backprop.py uses torch's calls, which compute the
same (tests/test_kernels.py compares the two).

The library is built with -march=native, so its file name carries a hash of the source, the flags and
this CPU's model and feature flags: a cache folder moved to another machine builds anew instead of
running instructions the CPU lacks.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

__all__ = ["Kernels", "load", "cache_dir"]

SOURCE = Path(__file__).with_name("kernels.c")
FLAGS = [
    "-O3",
    "-march=native",
    # Let the compiler vectorise the loops (if-conversion, the float partial sums) without
    # -ffast-math, which would also let it assume no NaN, and the step relies on seeing them.
    "-fno-trapping-math",
    "-fno-math-errno",
    "-fassociative-math",
    "-fno-signed-zeros",
    "-fPIC",
    "-shared",
]
_lock = threading.Lock()
_log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """$LATENT_LAB_KERNEL_DIR, else the per-user cache (not $VAE_DATA_DIR: that may be a data folder of
    the user's own, where nothing else belongs)."""
    env = os.environ.get("LATENT_LAB_KERNEL_DIR")
    if env:
        return Path(env).expanduser()
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no HOME and no passwd entry: a throwaway folder
        base = Path(tempfile.gettempdir())
    return base / "latent-lab" / "kernels"


def _cpu_id() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine() + platform.processor()
    lines = [line for line in text.splitlines() if line.split(":")[0].strip() in ("model name", "flags", "Features")]
    return "\n".join(sorted(set(lines)))


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _is_gcc(compiler: str) -> bool:
    """clang's -fopenmp links LLVM's libomp, a second pool beside torch's libgomp: only gcc's is shared."""
    try:
        out = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Free Software Foundation" in out and "clang" not in out.lower()


def _torch_uses_gomp() -> bool:
    """Whether torch's threads are GNU OpenMP's (libgomp.so.1 loaded in this process), which a library
    built with -fopenmp then shares: one pool, not two fighting over the cores."""
    if platform.system() != "Linux" or "OpenMP" not in torch.__config__.parallel_info():
        return False
    try:
        return "libgomp" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def _build(compiler: str, flags: list[str], folder: Path) -> Path:
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join([compiler, *flags]).encode() + _cpu_id().encode()).hexdigest()[:16]
    target = folder / f"kernels-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out = Path(tmp) / target.name
        subprocess.run([compiler, *flags, "-o", str(out), str(SOURCE)], check=True, capture_output=True, timeout=120)
        os.replace(out, target)  # atomic: another process building at the same time writes the same bytes
    return target


class Kernels:
    """The compiled functions, with torch tensors for arguments (contiguous, on the CPU)."""

    def __init__(self, lib: ctypes.CDLL, threaded: bool) -> None:
        p, i64, f32, f64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_double
        self.threaded = threaded  # adam_bf16 runs on torch's OpenMP threads (else on one: slower than torch's)
        self._adam = lib.adam_bf16
        self._adam.argtypes, self._adam.restype = [p] * 5 + [i64] + [f32] * 7 + [ctypes.c_int], ctypes.c_int
        self._fn = {}
        for suffix in ("bf16", "f32"):
            bce = getattr(lib, f"bce_{suffix}")
            bce.argtypes, bce.restype = [p, p, p, i64], f64
            fwd = getattr(lib, f"head_forward_{suffix}")
            fwd.argtypes, fwd.restype = [p, p, p, p, i64, i64, f32, f32], f64
            bwd = getattr(lib, f"head_backward_{suffix}")
            bwd.argtypes, bwd.restype = [p, p, p, i64, i64, f32, f32, f32], None
            self._fn[suffix] = (bce, fwd, bwd)

    def _of(self, t: torch.Tensor) -> tuple:
        if t.dtype == torch.bfloat16:
            return self._fn["bf16"]
        if t.dtype == torch.float32:
            return self._fn["f32"]
        raise TypeError(f"kernels take bfloat16 or float32, not {t.dtype}")

    @staticmethod
    def _check(*tensors: torch.Tensor) -> None:
        for t in tensors:
            if t.device.type != "cpu" or not t.is_contiguous():
                raise ValueError("kernels take contiguous CPU tensors")

    def bce(self, logits: torch.Tensor, x: torch.Tensor, grad: torch.Tensor) -> float:
        """sum(softplus(l) - x l) over every pixel; writes sigmoid(l) - x into grad (logits' dtype)."""
        self._check(logits, x, grad)
        if x.dtype != torch.float32 or grad.dtype != logits.dtype or not logits.numel() == x.numel() == grad.numel():
            raise ValueError("bce: x is float32, grad has the logits' dtype, all three the same size")
        return self._of(logits)[0](logits.data_ptr(), x.data_ptr(), grad.data_ptr(), logits.numel())

    def head_forward(self, head, eps, saved, z, lo: float, hi: float) -> float:
        """head (B, 2Z), eps (B, Z) float32 -> saved (4, B, Z) float32 = [mu, raw, sigma^2, sigma eps],
        z (B, Z) in head's dtype; returns KL."""
        self._check(head, eps, saved, z)
        b, zd = eps.shape
        if head.shape != (b, 2 * zd) or saved.shape != (4, b, zd) or z.shape != (b, zd) or z.dtype != head.dtype:
            raise ValueError("head_forward: shapes (B, 2Z), (B, Z), (4, B, Z), (B, Z)")
        if eps.dtype != torch.float32 or saved.dtype != torch.float32:
            raise ValueError("head_forward: eps and saved are float32")
        fn = self._of(head)[1]
        return fn(head.data_ptr(), eps.data_ptr(), saved.data_ptr(), z.data_ptr(), b, zd, lo, hi)

    def head_backward(self, dz, saved, dhead, beta: float, lo: float, hi: float) -> None:
        """dz (B, Z) and head_forward's saved -> dhead (B, 2Z), in dz's dtype."""
        self._check(dz, saved, dhead)
        b, zd = dz.shape
        if saved.shape != (4, b, zd) or dhead.shape != (b, 2 * zd) or dhead.dtype != dz.dtype:
            raise ValueError("head_backward: shapes (B, Z), (4, B, Z), (B, 2Z)")
        self._of(dz)[2](dz.data_ptr(), saved.data_ptr(), dhead.data_ptr(), b, zd, beta, lo, hi)

    def adam_bf16(self, p, g, m, v, w, step: int, lr: float, beta1: float, beta2: float, eps: float) -> bool:
        """One Adam update of float32 p, m, v from bfloat16 gradients g (torch's fused Adam's arithmetic);
        writes p's bfloat16 copy into w. step counts this update, from 1. If a gradient is infinite or
        NaN, writes nothing and returns False."""
        self._check(p, g, m, v, w)
        if not p.numel() == g.numel() == m.numel() == v.numel() == w.numel():
            raise ValueError("adam_bf16: five buffers of one size")
        if {p.dtype, m.dtype, v.dtype} != {torch.float32} or {g.dtype, w.dtype} != {torch.bfloat16}:
            raise ValueError("adam_bf16: p, m, v float32; g, w bfloat16")
        bc1, bc2_sqrt = 1 - beta1**step, math.sqrt(1 - beta2**step)
        args = (p.data_ptr(), g.data_ptr(), m.data_ptr(), v.data_ptr(), w.data_ptr(), p.numel())
        threads = torch.get_num_threads()  # explicit: a new thread's OpenMP default can differ from torch's
        return bool(self._adam(*args, lr, 1 - beta1, beta2, 1 - beta2, eps, bc1, bc2_sqrt, threads))


@functools.cache
def _load() -> Kernels | None:
    compiler = _compiler()
    if compiler is None:
        return None
    # With OpenMP where torch's threads are libgomp's; without, if that build fails or does not load
    # (say, a libgomp.so.1 in torch older than the compiler's).
    failed: Exception | None = None
    for threaded in (True, False) if _torch_uses_gomp() and _is_gcc(compiler) else (False,):
        flags = [*FLAGS, "-fopenmp"] if threaded else FLAGS
        try:
            try:
                path = _build(compiler, flags, cache_dir())
            except OSError:  # a read-only home: build for this process only
                path = _build(compiler, flags, Path(tempfile.mkdtemp(prefix="latent-lab-kernels-")))
            return Kernels(ctypes.CDLL(str(path)), threaded)
        except Exception as exc:  # whatever fails here, training goes on with torch's calls
            failed = exc
    if isinstance(failed, subprocess.CalledProcessError):
        failed = failed.stderr.decode(errors="replace").strip()[-500:]
    _log.warning("vae_core/kernels.c not built (%s); training uses torch's calls, a little slower", failed)
    return None  # a compiler that fails, a library that does not load: torch's calls instead


def load() -> Kernels | None:
    """The compiled kernels, built once per machine (about a second), or None: use torch's calls."""
    if os.environ.get("LATENT_LAB_KERNELS", "1") == "0":
        return None
    with _lock:
        return _load()
