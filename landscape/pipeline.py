"""One slice, from its configuration to its result: ``slice_surface(SliceConfig(...)) -> Surface``.

The recipe every caller used to assemble by hand (data -> centres, trained or not -> planes ->
descent and training paths -> the surface -> cliff metrics) in one function, over one frozen,
validated configuration. ``python -m landscape.slice`` parses its options into a SliceConfig and
calls this; notebooks and examples do the same::

    >>> import landscape as ls
    >>> cfg = ls.SliceConfig(cell="pascanu", lengths=(10, 50), res=(3, 5), xrange=(4.9, 5.1))
    >>> ls.slice_surface(cfg).loss.shape  # (lengths, ny, nx)
    (2, 5, 3)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, replace

import numpy as np
import torch

from ._errors import DTYPES, ConfigError, check_type
from ._version import __version__
from .cliffs import cliff_metrics
from .config import PATH_LR, TRAIN_LR, SliceConfig
from .fused import resolve_backend
from .params import center_params
from .planes import axis_plane, grid_coords, pca_plane, random_plane
from .surface import Grads, Surface, compute_surface
from .tasks import data_from_arrays, load_data, make_data
from .tiles import RunDir, default_rows, run_tiles
from .train import train_ensemble
from .trajectories import paths_for_lengths, training_paths

__all__ = ["SliceConfig", "slice_surface"]


def _centers(cfg: SliceConfig, cell, datas) -> tuple[list[torch.Tensor], object]:
    """Each length's centre, and the training result where the centres are trained models."""
    if cfg.center != "trained":
        return [center_params(cell, cfg.center, seed=cfg.seed, init=cfg.init)] * len(datas), None
    trained = train_ensemble(cell, datas, seed=cfg.seed, epochs=cfg.epochs, batch=cfg.batch,
                             lr=cfg.lr or TRAIN_LR, record_every=1, dtype=DTYPES[cfg.dtype],
                             device=cfg.device, backend=cfg.backend, init=cfg.init, progress=False)
    return list(trained.theta), trained


def _planes(cfg: SliceConfig, cell, centers, trained) -> tuple[list, list[str]]:
    """Each length's plane (same grid and labels), and lines to tell the user."""
    res, notes = cfg.res, []
    if cfg.plane == "axis":
        return [axis_plane(cell, c, x=cfg.x, y=cfg.y, xrange=cfg.xrange, yrange=cfg.yrange, res=res)
                for c in centers], notes
    if cfg.plane == "random":
        return [random_plane(c, seed=cfg.seed, norm=cfg.norm, xrange=cfg.xrange or (-1.0, 1.0),
                             yrange=cfg.yrange or (-1.0, 1.0), res=res or (51, 51)) for c in centers], notes
    # pca: one window for all lengths, the widest that covers every length's path
    fits = [pca_plane(torch.from_numpy(p), res=res or (51, 51), xrange=cfg.xrange, yrange=cfg.yrange)
            for p in trained.path]
    span = max(max(pl.x[-1], pl.y[-1]) for pl, _ in fits)  # a square window: pc2 is often tiny
    planes = [replace(pl, x=pl.x if cfg.xrange else grid_coords(-span, span, len(pl.x)),
                      y=pl.y if cfg.yrange else grid_coords(-span, span, len(pl.y))) for pl, _ in fits]
    for n, (_, var) in zip(cfg.lengths, fits, strict=True):
        notes.append(f"L = {n}: pc1 and pc2 explain {var[0]:.1%} and {var[1]:.1%} of the training path's "
                     "variance")
    return planes, notes


def slice_surface(cfg: SliceConfig, *, progress: bool = False, run_dir: str | None = None) -> Surface:
    """Compute the slice ``cfg`` describes: the loss (and accuracy, gradient maps, paths, cliff
    metrics) over the plane at every length. ``surface.config`` records the configuration;
    with trained centres, ``surface.trained_centers`` (n_len, P) holds them, and
    ``surface.notes`` what the run has to tell (explained variance of a PCA plane). A tiled
    configuration keeps its finished tiles in ``run_dir`` (``landscape.tiles``)."""
    check_type(cfg, SliceConfig, "cfg")
    cell = cfg.model_cell
    arrays = load_data(cfg.data) if cfg.data else None
    datas = [data_from_arrays(*arrays, n) if arrays else
             make_data(cfg.task_name, n, n=cfg.samples, noise=cfg.noise, seed=cfg.seed)
             for n in cfg.lengths]
    centers, trained = _centers(cfg, cell, datas)
    planes, notes = _planes(cfg, cell, centers, trained)
    plane = planes[0]
    if cfg.start and not (plane.x[0] <= cfg.start[0] <= plane.x[-1]
                          and plane.y[0] <= cfg.start[1] <= plane.y[-1]):
        raise ConfigError("start", f"{cfg.start[0]:g},{cfg.start[1]:g} lies outside the plotted window "
                                   f"{plane.x[0]:g}:{plane.x[-1]:g} x {plane.y[0]:g}:{plane.y[-1]:g}")
    dtype = DTYPES[cfg.dtype]
    paths = paths_for_lengths(cell, datas, planes, start=cfg.start, lr=cfg.lr or PATH_LR, steps=cfg.steps,
                              clip=cfg.clip, dtype=dtype, device=cfg.device) if cfg.start else {}
    if trained is not None:
        paths.update(training_paths(cell, datas, planes, trained.path))
    record = _record(cfg, plane, arrays, trained)
    if cfg.tiled:
        surface = _tiled(cfg, cell, planes, datas, record, run_dir, progress)
    else:
        surface = compute_surface(cell, planes, datas, dtype=dtype, device=cfg.device, mem=cfg.mem,
                                  grad=cfg.grad, backend=cfg.backend, progress=progress, config=record)
    centres = None if trained is None else np.stack([c.numpy() for c in centers])  # (n_len, P)
    surface = surface.with_parts(paths=paths, notes=tuple(notes), trained_centers=centres)
    return surface.with_parts(cliffs=cliff_metrics(surface, threshold=cfg.threshold))


def _tiled(cfg: SliceConfig, cell, planes, datas, record: dict, run_dir: str | None,
           progress: bool) -> Surface:
    """The surface computed as tiles, each saved in ``run_dir`` as it is done (resumable)."""
    if run_dir is None:
        raise ConfigError("tile_rows", "and {workers}, {scheduler} need a run directory for the tiles")
    plane = planes[0]
    rows = cfg.tile_rows or default_rows(plane.shape[0])
    files = {f"{k}_sha256": _sha256(getattr(cfg, k)) for k in ("data", "center")
             if os.path.isfile(getattr(cfg, k) or "")}  # the inputs' contents, not just their names
    manifest = {k: v for k, v in {**record, **files, "tile_rows": rows, "version": __version__}.items()
                if k not in ("workers", "scheduler")}  # where tiles run does not change them
    ny, nx = plane.shape
    n = 1 if datas[0].x is None else datas[0].x.shape[0]
    work = ny * nx * n * sum(cfg.lengths) * (3 if cfg.grad else 1)  # the sweep's, not a tile's, decides
    opts = dict(dtype=DTYPES[cfg.dtype], device=cfg.device, mem=cfg.mem, grad=cfg.grad,
                backend=resolve_backend(cfg.backend, device=cfg.device, work=work),
                threads=1 if cfg.workers else None)  # a local worker process per core
    maps = run_tiles(cell, planes, datas, RunDir(run_dir, manifest), rows=rows, opts=opts,
                     scheduler=cfg.scheduler, workers=cfg.workers, progress=progress)
    grads = Grads(*(maps[key] for key in Grads.KEYS.values())) if cfg.grad else None
    return Surface(maps["loss"], plane.x, plane.y, np.array(cfg.lengths, dtype=np.int64), plane.xlabel,
                   plane.ylabel, {**record, "version": __version__}, maps.get("accuracy"), grads)


def _sha256(path: str) -> str:
    """A file's content, for a manifest: a file changed under the same name is another input."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _record(cfg: SliceConfig, plane, arrays, trained) -> dict:
    """The configuration as the surface file keeps it (JSON), with what the defaults resolved to."""
    c = asdict(cfg)
    c.update(task=cfg.task_name, lengths=list(cfg.lengths), x=plane.xlabel, y=plane.ylabel,
             xrange=[float(plane.x[0]), float(plane.x[-1])], yrange=[float(plane.y[0]), float(plane.y[-1])],
             res=[len(plane.x), len(plane.y)], norm=cfg.norm if cfg.plane == "random" else None,
             samples=None if arrays is not None else cfg.samples, head=cfg.model_cell.head,
             gru_reset=cfg.gru_reset if cfg.cell == "gru" else None,
             start=list(cfg.start) if cfg.start else None, lr=(cfg.lr or PATH_LR) if cfg.start else None,
             steps=cfg.steps if cfg.start else None, clip=cfg.clip if cfg.start else None,
             train=dict(epochs=cfg.epochs, batch=cfg.batch, lr=cfg.lr or TRAIN_LR, optimizer="adam",
                        val_frac=0.2, final_val_acc=trained.val_acc[:, -1].tolist())
             if trained is not None else None)
    for k in ("epochs", "batch"):
        c.pop(k)
    return c
