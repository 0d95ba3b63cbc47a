"""A sweep's run directory: its finished tiles under the manifest that marks it as made here.

``RunDir`` opens one (``<name>.tiles/`` beside a tiled sweep's output) or makes it, verifies every
tile before it is used, records each tile as it lands, and removes only what it made.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
from dataclasses import dataclass

import numpy as np

from ._errors import InputError
from ._io import _PREFIX, atomic_write, clean_stale, load_npz, parse_json, read_regular
from ._io import sha256 as _sha256

__all__ = ["RunDir", "Tile", "MANIFEST", "JOURNAL"]


@dataclass(frozen=True)
class Tile:
    k: int  # length index
    r0: int  # first grid row (y index)
    r1: int  # one past the last

    @property
    def name(self) -> str:
        return f"tile_L{self.k:03d}_r{self.r0:06d}-{self.r1:06d}.npz"


MANIFEST, JOURNAL = "manifest.json", "tiles.jsonl"
MAX_MANIFEST = 16 << 20  # bytes of a manifest (the configuration alone: a few kilobytes)
MAX_JOURNAL = 256 << 20  # bytes of the tiles' records (about 300 bytes a tile)


class RunDir:
    """The finished tiles of one sweep, beside its output, under a manifest of its configuration.

    The manifest is the run directory's marker: a new directory is made under a temporary name
    with its manifest inside and renamed into place, so a folder without one was never made here
    and is refused, never used or removed (nor is a symbolic link, or a folder holding another
    configuration). Each tile's record (shape, dtype, fields, size, SHA-256) is appended to the
    journal ``tiles.jsonl`` as the tile lands; a tile is used only when its file, read as a regular
    file inside the directory, matches its record, and is computed again otherwise (``notes`` say
    which). ``done``: tile -> maps, or None where it is to be computed."""

    def __init__(self, path: str, config: dict, tiles: list[Tile], expect: dict):
        self.path, self.expect, self.notes = path, expect, []
        self.new = not os.path.lexists(path)
        if self.new:
            self._create(config)
        else:
            self._check_config(config)
            clean_stale(path)  # temporary files of a killed run's writes
        self.records = {} if self.new else self._records()
        self.done = {t: None if self.new else self._load(t) for t in tiles}
        broken = [t.name for t, v in self.done.items() if v is None and os.path.lexists(self.path_of(t))]
        if broken:
            self.notes.append(
                f"tiles: {len(broken)} tile file(s) did not match their record and are "
                f"computed again ({', '.join(broken[:3])}{', ...' if len(broken) > 3 else ''})"
            )

    def _create(self, config: dict) -> None:
        """The directory, made whole with its manifest under a temporary name, then renamed."""
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=f"{_PREFIX}{os.getpid()}-")
        try:
            manifest = json.dumps({"format": 2, "config": config}, sort_keys=True).encode()
            atomic_write(os.path.join(tmp, MANIFEST), lambda f: f.write(manifest), now=True)
            os.rename(tmp, self.path)  # refused if anything took the name meanwhile (unless empty)
        except BaseException:
            _remove_own(tmp, {MANIFEST})
            raise

    @classmethod
    def attach(cls, path: str) -> RunDir:
        """The run directory at ``path`` with the records of its tiles, to remove what it made;
        InputError if it is not a run directory made here."""
        run = cls.__new__(cls)
        run.path, run.new, run.notes = path, False, []
        run._manifest()
        run.records = run._records()
        return run

    def _manifest(self):
        """The manifest of the run directory at ``self.path`` (its config, or None where it cannot
        be read); InputError for a path that is not a run directory made here."""
        where = f"{self.path} exists and"
        if os.path.islink(self.path):
            raise InputError(
                f"{where} is a symbolic link, not a run directory made here; it is left as it "
                "is: give another name or output folder"
            )
        if not os.path.isdir(self.path):
            raise InputError(f"{where} is not a folder; give another name or output folder")
        if not os.path.lexists(os.path.join(self.path, MANIFEST)):
            raise InputError(
                f"{where} is not a run directory made here (it has no {MANIFEST}); it is left "
                "as it is: give another name or output folder"
            )
        text = read_regular(
            os.path.join(self.path, MANIFEST), "run manifest", follow=False, limit=MAX_MANIFEST
        )
        try:
            old = parse_json(text.decode("utf-8"), f"run manifest {self.path}/{MANIFEST}")
        except (InputError, UnicodeDecodeError):
            old = None
        return old.get("config") if isinstance(old, dict) and old.get("format") == 2 else None

    def _check_config(self, config: dict) -> None:
        """Refuse a path that is no run directory of this toolkit, or one of another configuration."""
        old = self._manifest()
        if old is None:
            raise InputError(
                f"run directory {self.path} has a manifest this version cannot read (damaged, "
                "or written by another version); remove it, or give another name or output "
                "folder"
            )
        if old != json.loads(json.dumps(config, sort_keys=True)):
            old = old if isinstance(old, dict) else {}
            diff = sorted(
                (k not in old or k not in config, k)
                for k in set(config) | set(old)
                if old.get(k) != config.get(k)
            )  # changed values first, then missing keys
            diff = [k for _, k in diff]
            raise InputError(
                f"run directory {self.path} holds tiles of another configuration (it differs in "
                f"{', '.join(diff[:6]) or 'its manifest'}); remove it, or give another "
                "name or output folder"
            )

    def _records(self) -> dict:
        """Tile name -> its latest record in the journal (a line cut short by a kill is skipped)."""
        path = os.path.join(self.path, JOURNAL)
        if not os.path.lexists(path):
            return {}
        records = {}
        for line in read_regular(path, "tile journal", follow=False, limit=MAX_JOURNAL).splitlines():
            try:
                rec = parse_json(line.decode("utf-8"), "a tile record")
            except (InputError, UnicodeDecodeError):
                continue
            if isinstance(rec, dict) and isinstance(rec.get("name"), str):
                records[rec["name"]] = rec
        return records

    def path_of(self, tile: Tile) -> str:
        return os.path.join(self.path, tile.name)

    def _load(self, tile: Tile) -> dict | None:
        """A finished tile's maps, or None where it is missing or does not match its record."""
        rec, shape = self.records.get(tile.name), [tile.r1 - tile.r0, self.expect["nx"]]
        want = dict(shape=shape, dtype=self.expect["dtype"], fields=sorted(self.expect["fields"]))
        if not isinstance(rec, dict) or any(rec.get(k) != v for k, v in want.items()):
            return None
        data = self._recorded(tile.name)
        if data is None:
            return None
        try:
            arrays = load_npz(self.path_of(tile), "tile", data=data)
        except InputError:
            return None
        ok = sorted(arrays) == want["fields"] and all(
            a.shape == tuple(shape) and a.dtype == np.dtype(want["dtype"]) for a in arrays.values()
        )
        return arrays if ok else None

    def _recorded(self, name: str) -> bytes | None:
        """The bytes of the tile file ``name`` if they are what its record says (size and SHA-256),
        read as a regular file of this directory; else None."""
        rec = self.records.get(name)
        if not isinstance(rec, dict) or not isinstance(rec.get("bytes"), int) or rec["bytes"] < 0:
            return None
        try:
            data = read_regular(os.path.join(self.path, name), "tile", follow=False, limit=rec["bytes"])
        except InputError:
            return None
        return data if _sha256(data=data) == rec.get("sha256") else None

    def save(self, tile: Tile, arrays: dict) -> None:
        """Write a finished tile atomically, then append its record to the journal."""
        shape = [tile.r1 - tile.r0, self.expect["nx"]]
        if sorted(arrays) != sorted(self.expect["fields"]) or any(
            list(a.shape) != shape or a.dtype != np.dtype(self.expect["dtype"]) for a in arrays.values()
        ):
            raise RuntimeError(
                f"tile {tile.name} came back as {_describe(arrays)}, not {shape} "
                f"{self.expect['dtype']} {sorted(self.expect['fields'])}"
            )
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = buf.getvalue()
        atomic_write(self.path_of(tile), lambda f: f.write(data), now=True)
        rec = dict(
            name=tile.name,
            shape=shape,
            dtype=self.expect["dtype"],
            fields=sorted(arrays),
            bytes=len(data),
            sha256=_sha256(data=data),
        )
        self.records[tile.name] = rec
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
        fd = os.open(os.path.join(self.path, JOURNAL), flags | getattr(os, "O_CLOEXEC", 0), 0o666)
        with os.fdopen(fd, "ab") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise InputError(f"tile journal {self.path}/{JOURNAL} is not a regular file")
            f.write(b"\n" + json.dumps(rec, sort_keys=True).encode() + b"\n")  # after a cut line too

    def remove(self) -> str | None:
        """Remove what this run made (the tiles that match their records, the journal and the
        manifest), then the directory if nothing else is left in it; else a note that it stays."""
        own = {name for name in self.records if self._recorded(name) is not None} | {JOURNAL, MANIFEST}
        kept = _remove_own(self.path, own)
        if kept:
            return (
                f"run directory {self.path} kept: it holds {len(kept)} file(s) this run did not make "
                f"({', '.join(sorted(kept)[:3])})"
            )
        return None


def _describe(arrays: dict) -> str:
    return ", ".join(
        f"{k} {list(np.shape(v))} {getattr(v, 'dtype', type(v).__name__)}" for k, v in arrays.items()
    )


def _remove_own(folder: str, names: set[str]) -> list[str]:
    """Remove the regular files ``names`` from ``folder``, then the folder if it is empty; return
    the names of what is left in it (nothing else is touched)."""
    for name in names:
        p = os.path.join(folder, name)
        try:
            if stat.S_ISREG(os.lstat(p).st_mode):
                os.remove(p)
        except OSError:
            pass
    clean_stale(folder)
    try:
        left = os.listdir(folder)
    except OSError:
        return []
    if not left:
        try:
            os.rmdir(folder)
        except OSError:
            return ["(the folder itself)"]
    return left
