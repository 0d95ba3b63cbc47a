"""File I/O: atomic writes (a reader never sees a half-written output) and pickle-free reads."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import io
import json
import os
import re
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from typing import IO

import numpy as np

from ._errors import InputError

_STAGED: contextvars.ContextVar[list | None] = contextvars.ContextVar("staged", default=None)
_PREFIX = ".tmp-landscape-"  # + pid + "-": a killed run's leftovers are known by their dead pid


def atomic_write(path: str, write: Callable[[IO[bytes]], None], *, now: bool = False) -> str:
    """Call ``write(f)`` on a temporary file beside ``path`` and rename it into place (inside
    ``one_run``, at the run's end, with every other file of the run, unless ``now``: a file
    that must outlive an interruption, such as a finished tile).

    On any error the temporary file is removed and ``path`` is left as it was.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    prefix, suffix = f"{_PREFIX}{os.getpid()}-", os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise a reader
        staged = None if now else _STAGED.get()
        if staged is None:
            os.replace(tmp, path)
        else:
            staged.append((tmp, path))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


@contextlib.contextmanager
def one_run(folder: str | None = None):
    """Every atomic_write inside lands together at the end, or none does: the targets are
    checked (no folder in the way, names the file system takes) before the first rename, and
    on any error or signal every temporary file is removed. ``folder``: where a killed run's
    leftovers are cleared first."""
    if folder:
        clean_stale(folder)
    staged: list = []
    token = _STAGED.set(staged)
    try:
        yield
        for _, path in staged:
            if os.path.isdir(path):
                raise InputError(f"{path} is a folder; give another name or output folder")
            if len(os.path.basename(path).encode()) > 255:
                raise InputError(
                    f"{os.path.basename(path)[:40]}... is longer than a file name may be; "
                    "give a shorter --name"
                )
        for tmp, path in staged:
            os.replace(tmp, path)
        staged.clear()
    finally:
        _STAGED.reset(token)
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.remove(tmp)


_TEMP = re.compile(re.escape(_PREFIX) + r"(\d+)-[A-Za-z0-9_]{8}(\.[A-Za-z0-9]{1,8})?")  # mkstemp's names


def clean_stale(folder: str) -> list[str]:
    """Remove temporary files left in ``folder`` by runs that were killed (their process is gone).

    Only what a run of the toolkit made is removed: a regular file of this user whose whole name
    is one that ``atomic_write`` gives (prefix, pid, mkstemp's eight characters, a suffix), or a
    folder so named that holds only a run manifest; never a link or another user's file."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP.fullmatch(name)
        if m is None or int(m[1]) == os.getpid() or _alive(int(m[1])):
            continue
        path = os.path.join(folder, name)
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if st.st_uid != os.getuid():
                continue
            if stat.S_ISREG(st.st_mode):
                os.remove(path)
                removed.append(name)
            elif stat.S_ISDIR(st.st_mode) and m[2] is None and _only_marker(path):
                os.rmdir(path)  # a run directory in the making (landscape.rundir), killed
                removed.append(name)
    return removed


def _only_marker(path: str) -> bool:
    """Whether the folder holds nothing but a run manifest (removed, then), as a run directory
    does while it is made under its temporary name."""
    names = os.listdir(path)
    if not set(names) <= {"manifest.json"}:
        return False
    for name in names:
        p = os.path.join(path, name)
        if not stat.S_ISREG(os.lstat(p).st_mode):
            return False
        os.remove(p)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# what a damaged archive raises: zip flags read as encryption or an unknown compression included
_BROKEN = (
    OSError,
    ValueError,
    EOFError,
    TypeError,
    RuntimeError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
)
MAX_LOAD = 4 << 30  # bytes an .npz may unpack to: a 3 MB file can inflate to 3 GB


def open_regular(path: str, what: str, *, follow: bool = True, limit: int | None = None) -> IO[bytes]:
    """``path`` opened for reading, if it is a regular file (no FIFO, device or folder, which could
    block or never end; with ``follow=False``, no symbolic link either) of at most ``limit`` bytes;
    anything else raises InputError naming it. The check is made on the opened file itself, so
    nothing can be swapped in between."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except OSError as e:
        link = not follow and os.path.islink(path)
        raise InputError(
            f"cannot read {what} {path}: " + ("it is a symbolic link" if link else e.strerror or str(e))
        ) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a FIFO, socket or device)"
        raise InputError(f"cannot read {what} {path}: it is {kind}")
    if limit is not None and st.st_size > limit:
        os.close(fd)
        raise InputError(f"{what} {path} is {st.st_size} bytes; the limit is {limit}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(path: str, what: str, *, follow: bool = True, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (``open_regular``)."""
    with open_regular(path, what, follow=follow, limit=limit) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # grown since it was opened
        raise InputError(f"{what} {path} is more than {limit} bytes")
    return data


MAX_JSON_DEPTH = 32  # nesting of a JSON document the toolkit reads (its own use at most 4)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def parse_json(text: str, what: str):
    """A JSON document nested at most MAX_JSON_DEPTH deep (json's own parser recurses once per
    level, and a deep one would end in RecursionError), or InputError."""
    depth = top = 0
    for ch in _JSON_STRING.sub("", text):
        if ch in "[{":
            depth += 1
            top = max(top, depth)
        elif ch in "]}":
            depth -= 1
        if top > MAX_JSON_DEPTH:
            raise InputError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise InputError(f"{what} is not valid JSON: {str(e)[:80]}") from None


def npz_shapes(source) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The shape and dtype of every array of an .npz archive (a path or a file), by name, read
    from their headers alone."""
    out = {}
    with zipfile.ZipFile(source) as z:
        for name in z.namelist():
            with z.open(name) as member:
                version = np.lib.format.read_magic(member)
                read = {
                    (1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0,
                }.get(version)
                if read is None:
                    raise ValueError(f"{name}: .npy format version {version} is not supported")
                shape, _, dtype = read(member)
                out[name.removesuffix(".npy")] = (tuple(shape), dtype)
    return out


def npz_size(source) -> int:
    """Bytes the arrays of an .npz archive (a path or a file) take once loaded, read from their
    headers alone."""
    return sum(
        int(np.prod(shape, dtype=np.float64)) * dtype.itemsize for shape, dtype in npz_shapes(source).values()
    )


def npz_header(path: str, what: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``npz_shapes`` of a regular file, any failure an InputError naming it."""
    with open_regular(path, what) as f:
        try:
            return npz_shapes(f)
        except _BROKEN as e:
            raise InputError(f"cannot read {what} {path}: {e}") from None


def load_npz(path: str, what: str, *, data: bytes | None = None) -> dict:
    """Every array of an .npz archive, read without pickle from a regular file (``open_regular``)
    or from its bytes ``data``; anything else raises InputError, and so does an archive whose
    arrays would take more than MAX_LOAD bytes, before any is loaded."""
    with contextlib.ExitStack() as stack:
        f = io.BytesIO(data) if data is not None else stack.enter_context(open_regular(path, what))
        try:
            size = npz_size(f)
        except _BROKEN as e:
            raise InputError(f"cannot read {what} {path}: {e}") from None
        if size > MAX_LOAD:
            raise InputError(
                f"{what} {path} would take {size / 2**30:.1f} GiB once loaded; the limit is "
                f"{MAX_LOAD / 2**30:.0f} GiB"
            )
        try:
            f.seek(0)
            z = np.load(f, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with z:
                return {k: z[k] for k in z.files}
        except _BROKEN as e:
            raise InputError(f"cannot read {what} {path}: {e}") from None


def page_size(path: str) -> str:
    """'4.9 MB' for the file at path."""
    return f"{os.path.getsize(path) / 1e6:.1f} MB"


def sha256(path: str | None = None, *, data: bytes | None = None) -> str:
    """A file's content (or ``data``'s), for a manifest: a file changed under the same name is
    another input. Read from a regular file only (``open_regular``)."""
    h = hashlib.sha256()
    if data is not None:
        h.update(data)
        return h.hexdigest()
    with open_regular(path, "file") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
