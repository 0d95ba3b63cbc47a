"""Building and loading the fused kernel, and its one door: ``_fused.c`` compiled on first use with
the machine's C compiler (``$CC``, else ``cc``) into ``$LANDSCAPE_CACHE`` (default
``~/.cache/landscape``), keyed by its sources, the generated table of cells, flags and CPU,
written atomically (concurrent builds are safe), and loaded with ctypes. Every call goes through
``call(Args(...))``: one structure of int64 sizes and pointers, mirrored by ``ls_args`` in C, which
checks it and answers with a code that becomes an exception here. Without a compiler the kernel
is unavailable and ``landscape.engine.fused`` says why.

Nothing in the cache is trusted by its name, since loading a library runs its code. The cache
folder is used only if it belongs to this user and no one else may write to it (as ssh and pip
treat theirs); otherwise the kernel is built into a private folder of this process, and a line on
stderr says so. A cached library is loaded only if it is a regular file of this user, not
writable by others, whose SHA-256 matches the record written beside it when it was built; after
loading, its symbols and ABI version are checked. Any mismatch builds it again (or, without a
compiler, falls back to the reference path), with one line saying so: loading never crashes the
process and never runs a file that was not built here.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import threading

__all__ = [
    "build",
    "available",
    "unavailable_reason",
    "library",
    "probe",
    "Args",
    "call",
    "vmath",
    "KernelError",
]

from .table import ABI, ERRORS, GATES, header

_SOURCES = ("_fused.c", "_fused_body.h", "_fused_units.h", "_cell_math.h", "_vmath.h")
_SYMBOLS = ("ls_run", "ls_vmath", "ls_args_size", "ls_abi", "ls_compiler")
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
# The vector exp/tanh are the kernel's own (_vmath.h), so any compiler vectorizes them at the
# machine's width (-march=native: AVX-512 where there is one) and no vector math library is needed.
_FLAGS = [
    "-O3",
    "-march=native",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fopenmp-simd",
    "-fPIC",
    "-shared",
]
_LIBS = ["-lm"]
_lock = threading.Lock()
_state: dict = {}
_LOADED: list[int] = []  # descriptors of the libraries loaded, kept open (see _verified)


def _cache_dir() -> str:
    return os.environ.get("LANDSCAPE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "landscape"
    )


def _cpu_id() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = []
    return platform.machine() + "".join(lines)


def _key(gate: str = "sigmoid") -> str:
    here = os.path.dirname(__file__)
    h = hashlib.sha256()
    for name in _SOURCES:
        with open(os.path.join(here, name), "rb") as f:
            h.update(f.read())
    h.update(header().encode())
    h.update(" ".join(_FLAGS + _LIBS + [_define(gate), os.environ.get("CC", "cc"), _cpu_id()]).encode())
    return f"fused-{h.hexdigest()[:16]}.so"


def _define(gate: str) -> str:
    """The compiler flag that builds the kernel for one gate function (one library each)."""
    return f"-DLS_GATE={GATES[gate]}"


def _library_path(gate: str = "sigmoid") -> str:
    return os.path.join(_cache_dir(), _key(gate))


def _unsafe(st: os.stat_result) -> str:
    """Why a cache entry with this status may not be trusted, or ''."""
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return "owned by another user"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    return ""


def _folder() -> tuple[str, str]:
    """The cache folder to build into and load from, and a note when it is not the configured one."""
    folder = _cache_dir()
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        st = os.stat(folder)
        why = "not a folder" if not stat.S_ISDIR(st.st_mode) else _unsafe(st)
    except OSError as e:
        why = e.strerror or str(e)
    if not why:
        return folder, ""
    private = _private_folder()
    return private, f"kernel cache {folder} is {why}: not loaded from; built into {private}"


def _private_folder() -> str:
    """A folder of this process alone (mode 0700), removed at exit with what was built in it."""
    if "private" not in _state:
        _state["private"] = tempfile.mkdtemp(prefix="landscape-kernel-")
        atexit.register(shutil.rmtree, _state["private"], ignore_errors=True)
    return _state["private"]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _open_own(path: str) -> int:
    """A descriptor of ``path`` if it is a regular file of this user that no one else may write
    (not a link), or OSError saying why not."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    st = os.fstat(fd)
    why = "not a regular file" if not stat.S_ISREG(st.st_mode) else _unsafe(st)
    if why:
        os.close(fd)
        raise OSError(why)
    return fd


def _verified(path: str) -> tuple[ctypes.CDLL | None, str]:
    """The library at ``path`` if it is the one built here (its bytes match its record, then its
    symbols and ABI), else None and why not. Nothing is loaded before the bytes are checked."""
    try:
        fd = _open_own(path)
    except OSError as e:
        return None, "a symbolic link" if os.path.islink(path) else (e.strerror or str(e))
    try:
        with os.fdopen(_open_own(path + ".sha256"), "rb") as f:
            record = f.read(1024).decode("ascii", "replace").strip()
    except OSError as e:
        os.close(fd)
        return None, f"no trusted record of its content ({e.strerror or e})"
    try:
        with os.fdopen(os.dup(fd), "rb") as f:
            if _digest(f.read()) != record:
                os.close(fd)
                return None, "its content does not match its record"
        # load the very file just checked: through its descriptor where the system has /proc. The
        # descriptor then stays open for the life of the process: the loader knows a library by
        # the name it was opened under, so a name /proc/self/fd/N used again for another file
        # (another gate function, another compiler, a rebuilt cache) would give the first library.
        by_fd = f"/proc/self/fd/{fd}"
        lib = ctypes.CDLL(by_fd if os.path.exists(by_fd) else path)
    except OSError as e:
        os.close(fd)
        return None, f"cannot be loaded ({e})"
    _LOADED.append(fd)
    try:
        missing = [s for s in (*_SYMBOLS, "ls_abi") if not hasattr(lib, s)]
        if missing:
            return None, f"lacks {', '.join(missing)}"
        lib.ls_abi.restype = ctypes.c_int
        if lib.ls_abi() != ABI:
            return None, f"has ABI {lib.ls_abi()}, not {ABI}"
        lib.ls_args_size.restype = ctypes.c_int64
        if lib.ls_args_size() != ctypes.sizeof(Args):
            return None, f"has an argument structure of {lib.ls_args_size()} bytes, not {ctypes.sizeof(Args)}"
    except (OSError, AttributeError, ValueError) as e:
        return None, str(e)
    return lib, ""


def build(folder: str | None = None, gate: str = "sigmoid") -> str:
    """Compile the kernel into ``folder`` (the cache), with its SHA-256 recorded beside it; atomic,
    so concurrent builds are safe. An entry that is not this user's own regular file is never
    replaced: the kernel is built into a private folder instead."""
    folder = folder or _folder()[0]
    path = os.path.join(folder, _key(gate))
    with contextlib.suppress(OSError):
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or _unsafe(st):
            folder = _private_folder()
            path = os.path.join(folder, _key(gate))
    fd, tmp = tempfile.mkstemp(suffix=".so", prefix=".tmp-fused-", dir=folder)
    os.close(fd)
    src = os.path.join(os.path.dirname(__file__), "_fused.c")
    rtmp = None
    try:
        with tempfile.TemporaryDirectory(prefix="landscape-build-") as gen:
            with open(os.path.join(gen, "_cells.h"), "w") as f:
                f.write(header())
            cmd = [os.environ.get("CC", "cc"), *_FLAGS, _define(gate), "-I", gen, "-o", tmp, src, *_LIBS]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
        with open(tmp, "rb") as f:
            record = _digest(f.read())
        fd, rtmp = tempfile.mkstemp(suffix=".sha256", prefix=".tmp-fused-", dir=folder)
        with os.fdopen(fd, "w") as f:
            f.write(record + "\n")
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        os.replace(rtmp, path + ".sha256")
    finally:
        for t in (tmp, rtmp):
            if t and os.path.exists(t):
                os.remove(t)
    return path


def _load(gate: str) -> tuple[ctypes.CDLL | None, str, list[str]]:
    """The library (or None), why not, and the notes to say: a cached one when it checks out,
    else one built now."""
    folder, note = _folder()
    notes = [note] if note else []
    path = os.path.join(folder, _key(gate))
    if os.path.lexists(path):
        lib, why = _verified(path)
        if lib is not None:
            _state["path", gate] = path
            return lib, "", notes
        notes.append(f"cached kernel {path} is not used ({why}); building it again")
    try:
        path = build(folder, gate)
        lib, why = _verified(path)
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        return None, str(e) or type(e).__name__, notes
    _state["path", gate] = path
    return lib, why and f"the kernel just built {why}", notes


def library(gate: str = "sigmoid"):
    """The loaded library of the kernel for the gated cells' ``gate`` function (built on first
    use), or None with the reason kept for unavailable_reason()."""
    with _lock:
        if ("lib", gate) not in _state:
            try:
                lib, why, notes = _load(gate)
            except Exception as e:  # loading must never end the run: the reference path serves
                lib, why, notes = None, f"{type(e).__name__}: {e}", []
            for note in notes:
                print(f"landscape: {note}", file=sys.stderr)
            if lib is not None:
                _declare(lib)
            _state["lib", gate], _state["why", gate] = lib, why
        return _state["lib", gate]


def _declare(lib: ctypes.CDLL) -> None:
    """The entry points' argument types."""
    lib.ls_run.argtypes = [ctypes.POINTER(Args)]
    lib.ls_run.restype = ctypes.c_int
    I64, P = ctypes.c_int64, ctypes.c_void_p
    lib.ls_vmath.argtypes = [I64, I64, I64, I64, P, P]  # function, dtype, n, repeats, x, y
    lib.ls_vmath.restype = ctypes.c_int
    lib.ls_compiler.restype = ctypes.c_char_p


class Args(ctypes.Structure):
    """The door's argument structure, field for field ``ls_args`` of ``_fused.c``."""

    _fields_ = (
        [
            (name, ctypes.c_int64)
            for name in (
                "size",
                "dtype",
                "cell",
                "gate",
                "objective",
                "I",
                "H",
                "L",
                "N",
                "T",
                "P",
                "R",
                "xs_g",
                "xs_n",
                "ys_g",
                "g0",
                "g1",
                "K",
            )
        ]
        + [("x0", ctypes.c_double)]
        + [
            (name, ctypes.c_void_p)
            for name in ("theta", "x", "y", "rows", "len", "hT", "grad", "stops", "hS")
        ]
    )

    def __init__(self, **fields):
        super().__init__(**({"size": ctypes.sizeof(Args), "I": 1, "H": 1, "L": 1, "gate": 0} | fields))


class KernelError(RuntimeError):
    """The kernel refused its arguments (a bug of the caller: every input is checked before)."""


def call(args: Args, gate: str = "sigmoid") -> None:
    """Run the kernel (of the gate function ``gate``) through its door; a refusal raises
    KernelError (MemoryError for memory)."""
    code = library(gate).ls_run(ctypes.byref(args))
    if code == 1:
        raise MemoryError(ERRORS["memory"])
    if code:
        names = list(ERRORS)
        raise KernelError(ERRORS[names[code - 1]] if 0 < code <= len(names) else f"unknown error {code}")


def vmath(fn: str, x, reps: int = 1):
    """The kernel's vector exp, tanh or sigmoid of a contiguous float32/float64 numpy array."""
    import numpy as np

    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    code = library().ls_vmath(
        ("exp", "tanh", "sigmoid").index(fn),
        0 if x.dtype == np.float32 else 1,
        x.size,
        reps,
        x.ctypes.data,
        y.ctypes.data,
    )
    if code:
        raise KernelError(f"ls_vmath refused {fn!r} on {x.dtype}")
    return y


PROBE_FLOOR = 0.3  # the kernel's tanh must reach this fraction of torch.tanh's rate to count as vectorized


def probe(gate: str = "sigmoid") -> dict:
    """Whether the kernel's vector functions run at vector speed on this machine, with this
    compiler: the rate of its float32 tanh on values kept in registers, against torch.tanh's on
    one thread, measured in the same call. A compiler that did not vectorize the kernel runs it
    several times slower than torch (whose tanh is vectorized), so a rate under PROBE_FLOOR of
    torch's is "not vectorized". Measured once per built library and kept beside it (a hint
    about speed, never code), so that 'auto' decides the same way in every run."""
    with _lock:
        if ("probe", gate) in _state:
            return _state["probe", gate]
    lib = library(gate)
    if lib is None:
        return {"vectorized": False, "why": unavailable_reason(gate)}
    record = _state["path", gate] + ".probe"
    try:
        with os.fdopen(_open_own(record), "rb") as f:
            found = json.loads(f.read(4096).decode("ascii"))
        ok = isinstance(found, dict) and isinstance(found.get("vectorized"), bool)
        found = dict(found, why=str(found.get("why", "recorded as not vectorized"))) if ok else None
    except (OSError, ValueError, RecursionError):  # unreadable or malformed: measure again
        found = None
    if found is None:
        found = _measure()
        with contextlib.suppress(OSError):
            fd, tmp = tempfile.mkstemp(suffix=".probe", prefix=".tmp-fused-", dir=os.path.dirname(record))
            with os.fdopen(fd, "w") as f:
                json.dump(found, f)
            os.replace(tmp, record)
    with _lock:
        _state["probe", gate] = found
    return found


def _measure() -> dict:
    """The probe's measurement: best of 5 of each rate, in values per second."""
    import time

    import numpy as np
    import torch

    x = np.linspace(-3, 3, 1 << 15, dtype=np.float32)
    t, reps = torch.from_numpy(x), 8

    def best(fn) -> float:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return x.size * reps / min(times)

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        ours = best(lambda: vmath("tanh", x, reps=reps))
        theirs = best(lambda: [torch.tanh(t) for _ in range(reps)])
    finally:
        torch.set_num_threads(threads)
    ok = ours >= PROBE_FLOOR * theirs
    why = (
        ""
        if ok
        else (
            f"its tanh ran at {ours:.2g}/s, under {PROBE_FLOOR:g} of torch.tanh's "
            f"{theirs:.2g}/s: the compiler did not vectorize it"
        )
    )
    return {"vectorized": ok, "kernel_rate": ours, "torch_rate": theirs, "why": why}


def available(gate: str = "sigmoid") -> bool:
    """Whether the fused kernel can run here (builds it on first call)."""
    return library(gate) is not None


def unavailable_reason(gate: str = "sigmoid") -> str:
    library(gate)
    return _state.get(("why", gate), "")
