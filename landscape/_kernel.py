"""Building and loading the fused kernel: ``_fused.c`` compiled on first use with the machine's C
compiler (``$CC``, else ``cc``) into ``$LANDSCAPE_CACHE`` (default ``~/.cache/landscape``), keyed
by its sources, flags and CPU, written atomically (concurrent builds are safe), and loaded with
ctypes. Without a compiler the kernel is unavailable and ``landscape.fused`` says why."""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import tempfile
import threading

__all__ = ["build", "available", "unavailable_reason", "library"]

_SOURCES = ("_fused.c", "_fused_body.h", "_fused_units.h")
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-fPIC",
          "-shared"]
_LIBS = ["-lmvec", "-lm"]
_lock = threading.Lock()
_state: dict = {}


def _cache_dir() -> str:
    return os.environ.get("LANDSCAPE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "landscape")


def _cpu_id() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = []
    return platform.machine() + "".join(lines)


def _library_path() -> str:
    here = os.path.dirname(__file__)
    h = hashlib.sha256()
    for name in _SOURCES:
        with open(os.path.join(here, name), "rb") as f:
            h.update(f.read())
    h.update(" ".join(_FLAGS + _LIBS + [os.environ.get("CC", "cc"), _cpu_id()]).encode())
    return os.path.join(_cache_dir(), f"fused-{h.hexdigest()[:16]}.so")


def build() -> str:
    """Compile the kernel into the cache (once; atomic, so concurrent builds are safe)."""
    path = _library_path()
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", prefix=".tmp-fused-", dir=os.path.dirname(path))
    os.close(fd)
    src = os.path.join(os.path.dirname(__file__), "_fused.c")
    cmd = [os.environ.get("CC", "cc"), *_FLAGS, "-o", tmp, src, *_LIBS]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def library():
    """The loaded library, or None with the reason kept for unavailable_reason()."""
    with _lock:
        if "lib" not in _state:
            try:
                lib = ctypes.CDLL(build())
                for suffix in ("f32", "f64", "f32w", "f64w"):
                    fn = getattr(lib, f"ls_run_{suffix}")
                    real = ctypes.c_float if suffix.startswith("f32") else ctypes.c_double
                    P, L = ctypes.c_void_p, ctypes.c_long
                    # cell, objective, N, T, P, theta, x, xs_g, xs_n, rows, y, ys_g, len, x0, g0, g1, hT, grad
                    fn.argtypes = [ctypes.c_int, ctypes.c_int, L, L, L, P, P, L, L, P, P, L, P, real, L, L,
                                   P, P]
                    fn.restype = ctypes.c_int
                    if suffix in ("f32", "f64"):  # models of H > 1 units
                        # cell, objective, H, N, T, P, theta, x, xs_g, xs_n, rows, y, ys_g, len, g0, g1,
                        # hT, grad
                        fn = getattr(lib, f"ls_units_{suffix}")
                        fn.argtypes = [ctypes.c_int, ctypes.c_int, L, L, L, L, P, P, L, L, P, P, L, P, L, L,
                                       P, P]
                        fn.restype = ctypes.c_int
                _state["lib"], _state["why"] = lib, ""
            except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                _state["lib"], _state["why"] = None, str(e) or type(e).__name__
        return _state["lib"]


def available() -> bool:
    """Whether the fused kernel can run here (builds it on first call)."""
    return library() is not None


def unavailable_reason() -> str:
    library()
    return _state.get("why", "")
