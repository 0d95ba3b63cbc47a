"""File I/O: atomic writes (a reader never sees a half-written output) and pickle-free reads."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
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
                raise InputError(f"{path} is a folder; give another --name or --out")
            if len(os.path.basename(path).encode()) > 255:
                raise InputError(f"{os.path.basename(path)[:40]}... is longer than a file name may be; "
                                 "give a shorter --name")
        for tmp, path in staged:
            os.replace(tmp, path)
        staged.clear()
    finally:
        _STAGED.reset(token)
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.remove(tmp)


def clean_stale(folder: str) -> list[str]:
    """Remove temporary files left in ``folder`` by runs that were killed (their process is gone)."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(_PREFIX):
            continue
        pid = name[len(_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name))
                removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# what a damaged archive raises: zip flags read as encryption or an unknown compression included
_BROKEN = (OSError, ValueError, EOFError, TypeError, RuntimeError, NotImplementedError, zipfile.BadZipFile,
           zlib.error)
MAX_LOAD = 4 << 30  # bytes an .npz may unpack to: a 3 MB file can inflate to 3 GB


def npz_size(path: str) -> int:
    """Bytes the arrays of an .npz archive take once loaded, read from their headers alone."""
    total = 0
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            with z.open(name) as member:
                version = np.lib.format.read_magic(member)
                read = {(1, 0): np.lib.format.read_array_header_1_0,
                        (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read is None:
                    raise ValueError(f"{name}: .npy format version {version} is not supported")
                shape, _, dtype = read(member)
                total += int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    return total


def load_npz(path: str, what: str) -> dict:
    """Every array of an .npz archive, read without pickle; anything else raises InputError, and
    so does an archive whose arrays would take more than MAX_LOAD bytes, before any is loaded."""
    try:
        size = npz_size(path)
    except _BROKEN as e:
        raise InputError(f"cannot read {what} {path}: {e}") from None
    if size > MAX_LOAD:
        raise InputError(f"{what} {path} would take {size / 2**30:.1f} GiB once loaded; the limit is "
                         f"{MAX_LOAD / 2**30:.0f} GiB")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with f:
            return {k: f[k] for k in f.files}
    except _BROKEN as e:
        raise InputError(f"cannot read {what} {path}: {e}") from None


def sha256(path: str) -> str:
    """A file's content, for a manifest: a file changed under the same name is another input."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
