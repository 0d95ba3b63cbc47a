"""File I/O: atomic writes (a reader never sees a half-written output) and pickle-free reads."""

from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from typing import IO

import numpy as np

from ._errors import InputError


def atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> str:
    """Call ``write(f)`` on a temporary file beside ``path`` and rename it into place.

    On any error the temporary file is removed and ``path`` is left as it was.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise a reader
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


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
    except (OSError, ValueError, EOFError, TypeError, zipfile.BadZipFile, zlib.error) as e:
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
    except (OSError, ValueError, EOFError, TypeError, zipfile.BadZipFile, zlib.error) as e:
        raise InputError(f"cannot read {what} {path}: {e}") from None
