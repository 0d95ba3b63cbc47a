"""Sweeps as independent tiles: resumable after any interruption, and runnable on a Dask cluster.

A sweep's grid splits into tiles, each a block of grid rows at one length. Every finished tile is
written atomically into a run directory beside the output (``<name>.tiles/``), whose
``manifest.json`` records the sweep's whole configuration. Running the same command again
computes only the tiles that are missing (or whose file is broken); a run directory made by a
different configuration is refused, never mixed. When the surface is assembled and written, the
run directory is removed.

Tiles run in this process by default (no Dask import), on a local cluster of worker processes
(``workers``), or on an existing ``dask.distributed`` scheduler (``scheduler``, an address such as
``tcp://host:8786``); Dask is the optional extra ``rnn-landscape[distributed]``. Results are
written by this process as they arrive, so a worker that dies only costs its own tiles, which
Dask runs again elsewhere.
"""

from __future__ import annotations

import json
import math
import os
from contextlib import closing
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from ._errors import InputError
from ._io import atomic_write, load_npz
from .cells import get_cell
from .evaluate import _evaluate
from .planes import Plane
from .tasks import TaskData

__all__ = ["Tile", "make_tiles", "compute_tile", "run_tiles", "RunDir"]

FIELDS = ("loss", "accuracy", "grad_norm", "grad_x", "grad_y")


@dataclass(frozen=True)
class Tile:
    k: int  # length index
    r0: int  # first grid row (y index)
    r1: int  # one past the last

    @property
    def name(self) -> str:
        return f"tile_L{self.k:03d}_r{self.r0:06d}-{self.r1:06d}.npz"


def make_tiles(n_lengths: int, ny: int, rows: int) -> list[Tile]:
    """Blocks of ``rows`` grid rows at every length, in a fixed order."""
    return [Tile(k, r0, min(ny, r0 + rows)) for k in range(n_lengths) for r0 in range(0, ny, rows)]


def compute_tile(cell_spec: dict, data: TaskData, plane: Plane, tile: Tile, opts: dict) -> dict:
    """One tile's maps (rows r0..r1 of the plane at one length). A plain function of plain data,
    so that a Dask worker can run it: the cell travels as its name and variant. ``opts`` are
    ``run_tiles``'s (a resolved backend; ``data`` in their dtype on their device)."""
    if opts.get("threads"):
        torch.set_num_threads(opts["threads"])
    sub = replace(plane, y=plane.y[tile.r0 : tile.r1])  # the rows of this tile; points follow y
    res = _evaluate(get_cell(**cell_spec), data, sub, dtype=opts["dtype"], device=opts["device"],
                    mem=opts["mem"], grad=opts["grad"], backend=opts["backend"])
    return {k: getattr(res, k) for k in FIELDS if getattr(res, k) is not None}


class RunDir:
    """The finished tiles of one sweep, beside its output, under a manifest of its configuration.

    Opening it refuses a directory made by another configuration, reads every finished tile
    (``done``: tile -> maps, or None where it is missing or broken, and then removed) and, for a
    new directory, writes the manifest."""

    def __init__(self, path: str, manifest: dict, tiles: list[Tile], nx: int):
        self.path = path
        text = json.dumps(manifest, sort_keys=True)
        mpath = os.path.join(path, "manifest.json")
        new = not os.path.exists(mpath)
        if not new:
            try:
                with open(mpath) as f:
                    old = json.load(f)
            except (OSError, ValueError):
                old = None
            if old != json.loads(text):
                old = old if isinstance(old, dict) else {}
                diff = sorted((k not in old or k not in manifest, k) for k in set(manifest) | set(old)
                              if old.get(k) != manifest.get(k))  # changed values first, then missing keys
                diff = [k for _, k in diff]
                raise InputError(f"run directory {path} holds tiles of another configuration (it differs in "
                                 f"{', '.join(diff[:6]) or 'its manifest'}); remove it, or give another "
                                 "--name or --out")
        self.done = {t: None if new else self._load(t, (t.r1 - t.r0, nx)) for t in tiles}
        if new:
            os.makedirs(path, exist_ok=True)
            atomic_write(mpath, lambda f: f.write(text.encode()), now=True)

    def path_of(self, tile: Tile) -> str:
        return os.path.join(self.path, tile.name)

    def _load(self, tile: Tile, shape: tuple[int, int]) -> dict | None:
        """A finished tile's maps, or None where it is missing or broken (then it is removed)."""
        p = self.path_of(tile)
        if not os.path.exists(p):
            return None
        try:
            arrays = load_npz(p, "tile")
            if "loss" not in arrays or any(v.shape != shape for v in arrays.values()):
                raise InputError("wrong shapes")
            return arrays
        except InputError:
            os.remove(p)  # a tile cut short by a kill, or damaged: computed again
            return None


def _on_dask(scheduler: str | None, workers: int | None, jobs: list[tuple]):
    """(tile, maps) of each job ``(tile, compute_tile's arguments)`` as it finishes on Dask: on the
    scheduler at ``scheduler``, or on a local cluster of ``workers`` processes."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError("--scheduler and --workers need Dask: "
                         "pip install 'rnn-landscape[distributed]'") from None
    client = cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as e:
                raise InputError(f"cannot reach the Dask scheduler {scheduler!r}: {e}") from None
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        futures = {client.submit(compute_tile, *args, pure=False): t for t, args in jobs}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:  # a cluster this run started never outlives it
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _in_process(jobs: list[tuple]):
    """(tile, maps) of each job ``(tile, compute_tile's arguments)``, computed here in turn."""
    for t, args in jobs:
        yield t, compute_tile(*args)


def run_tiles(cell, planes: list[Plane], datas: list[TaskData], run_dir: str, manifest: dict, *,
              rows: int | None, opts: dict, scheduler: str | None = None, workers: int | None = None,
              progress: bool = True) -> dict:
    """Compute every tile that ``run_dir`` does not hold yet (in process, or on Dask), save each as
    it arrives, and assemble the maps: name -> (n_len, ny, nx). ``rows`` grid rows per tile
    (None: ``default_rows``) join the ``manifest``; ``opts`` are ``evaluate``'s, with the backend
    resolved for the whole sweep (``landscape.evaluate.resolve_backend``)."""
    if opts.get("backend") not in ("reference", "fused"):
        raise InputError(f"run_tiles needs a resolved backend, 'reference' or 'fused', not "
                         f"{opts.get('backend')!r} (landscape.evaluate.resolve_backend decides one)")
    datas = [d.to(opts["dtype"], opts["device"]) for d in datas]  # once, not in every tile
    ny, nx = planes[0].shape
    rows = rows or default_rows(ny)
    tiles = make_tiles(len(datas), ny, rows)
    run = RunDir(run_dir, {**manifest, "tile_rows": rows}, tiles, nx)
    done = dict(run.done)
    spec = dict(name=cell.name, head=cell.head or "logit", gru_reset=cell.reset)
    jobs = [(t, (spec, datas[t.k], planes[t.k], t, opts)) for t in tiles if done[t] is None]
    with tqdm(total=len(tiles), initial=len(tiles) - len(jobs), unit="tile", disable=not progress,
              desc=f"{cell.name} tiles", leave=False) as bar:
        print(f"tiles: {len(tiles) - len(jobs)} of {len(tiles)} already done, {len(jobs)} to compute")
        results = _on_dask(scheduler, workers, jobs) if scheduler or workers else _in_process(jobs)
        with closing(results):  # a failure here still closes the cluster
            for t, arrays in results:
                done[t] = arrays
                atomic_write(run.path_of(t), lambda f, a=arrays: np.savez(f, **a), now=True)
                bar.update(1)
    keys = [k for k in FIELDS if k in done[tiles[0]]]
    out = {k: np.empty((len(datas), ny, nx), dtype=done[tiles[0]]["loss"].dtype) for k in keys}
    for t in tiles:
        for k in keys:
            out[k][t.k, t.r0 : t.r1] = done[t][k]
    return out


def default_rows(ny: int) -> int:
    """Rows per tile: about 32 tiles per length (never where they run: a run resumed on another
    number of workers keeps its tiles)."""
    return max(1, math.ceil(ny / 32))

