"""One slice, from its configuration to its result: ``slice_surface(SliceConfig(...)) -> Surface``.

The recipe every caller used to assemble by hand (data -> centres, trained or not -> planes ->
descent and training paths -> the surface -> cliff metrics) in one function, over one frozen,
validated configuration, and ``write_slice`` writes it with its figures.
``python -m landscape.slice`` parses its options into a SliceConfig and calls ``write_slice``;
notebooks and examples call either. The configuration is checked once, in its constructor, so
the stages call the library's bodies past their public checks (the ``_`` names)::

    >>> import landscape as ls
    >>> cfg = ls.SliceConfig(cell="pascanu", lengths=(10, 50), res=(3, 5), xrange=(4.9, 5.1))
    >>> ls.slice_surface(cfg).loss.shape  # (lengths, ny, nx)
    (2, 5, 3)
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from ._errors import DTYPES, ConfigError, InputError, check_type
from ._io import one_run
from ._version import __version__
from .cliffs import _cliff_metrics, _cliff_table
from .config import PATH_LR, TRAIN_LR, SliceConfig
from .figures import _write_figures
from .fused import resolve_backend
from .params import _center, _save_checkpoint
from .planes import _axis_plane, _pca_plane, _random_plane, grid_coords
from .surface import Grads, Surface, _compute_surface
from .tasks import TASKS, _from_arrays, _make_data, load_data
from .tiles import RunDir, default_rows, run_tiles
from .train import _train
from .trajectories import _paths_for_lengths, _training_paths

__all__ = ["SliceConfig", "Outputs", "slice_surface", "write_slice", "default_name"]


@dataclass(frozen=True)
class Outputs:
    """Where and how a slice's files go: the folder, the file stem (None: ``default_name``), the
    figures' options (``landscape.figures.write_figures``) and whether to show progress."""

    folder: str = "figures"
    name: str | None = None
    figures: dict = field(default_factory=dict)
    progress: bool = True


def default_name(cfg: SliceConfig) -> str:
    """The output stem the configuration gives: cell, variant, task, plane axes and lengths."""
    cell = cfg.model_cell
    variant = "".join(f"_{v}" for v, on in (("keras-init", cfg.init == "keras"),
                                            ("softmax2", cell.head == "softmax2"),
                                            ("reset-before", cell.reset == "before")) if on)
    axes = {"axis": (cfg.x or cell.default_plane[0], cfg.y or cell.default_plane[1]),
            "random": ("d1", "d2"), "pca": ("pc1", "pc2")}[cfg.plane]
    n = cfg.lengths
    lengths = "-".join(map(str, n)) if len(n) <= 6 else f"{n[0]}-to-{n[-1]}-{len(n)}-lengths"
    return f"{cell.name}{variant}_{cfg.task_name}_{axes[0]}-{axes[1]}_L{lengths}"


def _stem(cfg: SliceConfig, out: Outputs) -> str:
    """The files' path without suffix: a stem inside the folder, short enough for every suffix."""
    name = default_name(cfg) if out.name is None else out.name
    if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
        raise InputError(f"--name {name!r} must be a file stem inside --out (no '/', not '.' or '..')")
    if len(name.encode()) > 200:  # NAME_MAX is 255 bytes; '_cliffs.html' and '_L<n>.pt' follow
        raise InputError(f"--name is {len(name.encode())} bytes long; give at most 200")
    return os.path.join(out.folder, name)


def write_slice(cfg: SliceConfig, out: Outputs = Outputs()) -> list[str]:
    """Compute the slice and write it: ``<stem>.npz`` (the surface), its figures and, with trained
    centres, each length's model as ``<stem>_L<n>.pt``; prints the run's notes and its cliff
    table, and returns the paths. Every file lands together, or none does (a failed drawing
    leaves nothing behind); a tiled run keeps its tiles in ``<stem>.tiles`` until then."""
    if not isinstance(cfg, SliceConfig) or not isinstance(out, Outputs):
        raise InputError(f"write_slice takes a SliceConfig and Outputs, not {type(cfg).__name__} and "
                         f"{type(out).__name__}")
    stem = _stem(cfg, out)
    with one_run(out.folder):
        surface = _slice_surface(cfg, out.progress, stem + ".tiles")
        print(*surface.notes, _cliff_table(surface, surface.cliffs, cfg.threshold), sep="\n")
        paths = [surface.save(stem + ".npz"), *_write_figures(surface, stem, **out.figures)]
        # a default name already ends in its lengths: each model is <name without them>_L<n>.pt
        base = stem.rsplit("_L", 1)[0] if out.name is None else stem
        if surface.trained_centers is not None:
            paths += [_save_checkpoint(f"{base}_L{n}.pt", cfg.model_cell, torch.from_numpy(c))
                      for n, c in zip(cfg.lengths, surface.trained_centers, strict=True)]
    if cfg.tiled:  # the run is whole: its tiles have served
        shutil.rmtree(stem + ".tiles", ignore_errors=True)
    return paths


def slice_surface(cfg: SliceConfig, *, progress: bool = False, run_dir: str | None = None) -> Surface:
    """Compute the slice ``cfg`` describes: the loss (and accuracy, gradient maps, paths, cliff
    metrics) over the plane at every length. ``surface.config`` records the configuration;
    with trained centres, ``surface.trained_centers`` (n_len, P) holds them, and
    ``surface.notes`` what the run has to tell (explained variance of a PCA plane). A tiled
    configuration keeps its finished tiles in ``run_dir`` (``landscape.tiles``)."""
    check_type(cfg, SliceConfig, "cfg")
    return _slice_surface(cfg, progress, run_dir)


def _slice_surface(cfg: SliceConfig, progress: bool, run_dir: str | None) -> Surface:
    """``slice_surface`` past its check: the stages in turn, each handing its result on."""
    cell, dtype = cfg.model_cell, DTYPES[cfg.dtype]
    datas = _datas(cfg)
    centers, trained = _centers(cfg, cell, datas)
    planes, notes = _planes(cfg, cell, centers, trained)
    paths = _paths(cfg, cell, datas, planes, trained, dtype)
    record = _record(cfg, planes[0], trained)
    if cfg.tiled:
        surface = _tiled(cfg, cell, planes, datas, record, run_dir, progress)
    else:
        surface = _compute_surface(cell, planes, datas, dict(dtype=dtype, device=cfg.device, mem=cfg.mem,
                                   grad=cfg.grad, backend=cfg.backend), progress, record)
    centres = None if trained is None else np.stack([c.numpy() for c in centers])  # (n_len, P)
    surface = surface.with_parts(paths=paths, notes=tuple(notes), trained_centers=centres)
    return surface.with_parts(cliffs=_cliff_metrics(surface, cfg.threshold))


def _datas(cfg: SliceConfig) -> list:
    """Each length's data: the user's file cut to the length, or generated."""
    if cfg.data:
        return [_from_arrays(x, y, n) for x, y in [load_data(cfg.data)] for n in cfg.lengths]
    task = TASKS[cfg.task_name]
    return [_make_data(task, n, cfg.samples, cfg.noise, cfg.seed) for n in cfg.lengths]


def _centers(cfg: SliceConfig, cell, datas) -> tuple[list[torch.Tensor], object]:
    """Each length's centre, and the training result where the centres are trained models."""
    if cfg.center != "trained":
        return [_center(cell, cfg.center, cfg.seed, cfg.init)] * len(datas), None
    trained = _train(cell, datas, seed=cfg.seed, epochs=cfg.epochs, batch=cfg.batch,
                     lr=cfg.lr or TRAIN_LR, record_every=1, dtype=DTYPES[cfg.dtype],
                     device=cfg.device, backend=cfg.backend, init=cfg.init, progress=False)
    return list(trained.theta), trained


def _planes(cfg: SliceConfig, cell, centers, trained) -> tuple[list, list[str]]:
    """Each length's plane (same grid and labels), and lines to tell the user."""
    if cfg.plane == "axis":
        dx, dy, dxr, dyr, dres = cell.default_plane
        return [_axis_plane(cell, c, cfg.x or dx, cfg.y or dy, cfg.xrange or dxr, cfg.yrange or dyr,
                            cfg.res or dres) for c in centers], []
    if cfg.plane == "random":
        return [_random_plane(c, cfg.seed, cfg.norm, cfg.xrange or (-1.0, 1.0), cfg.yrange or (-1.0, 1.0),
                              cfg.res or (51, 51)) for c in centers], []
    # pca: one window for all lengths, the widest that covers every length's path
    res = cfg.res or (51, 51)
    fits = [_pca_plane(torch.from_numpy(p), res, cfg.xrange, cfg.yrange) for p in trained.path]
    span = max(max(pl.x[-1], pl.y[-1]) for pl, _ in fits)  # a square window: pc2 is often tiny
    planes = [replace(pl, x=pl.x if cfg.xrange else grid_coords(-span, span, len(pl.x)),
                      y=pl.y if cfg.yrange else grid_coords(-span, span, len(pl.y))) for pl, _ in fits]
    notes = [f"L = {n}: pc1 and pc2 explain {var[0]:.1%} and {var[1]:.1%} of the training path's variance"
             for n, (_, var) in zip(cfg.lengths, fits, strict=True)]
    return planes, notes


def _paths(cfg: SliceConfig, cell, datas, planes, trained, dtype) -> dict:
    """The descent paths from ``cfg.start`` and the training paths, by name."""
    plane, paths = planes[0], {}
    if cfg.start:
        if not (plane.x[0] <= cfg.start[0] <= plane.x[-1] and plane.y[0] <= cfg.start[1] <= plane.y[-1]):
            raise ConfigError("start", f"{cfg.start[0]:g},{cfg.start[1]:g} lies outside the plotted window "
                                       f"{plane.x[0]:g}:{plane.x[-1]:g} x {plane.y[0]:g}:{plane.y[-1]:g}")
        paths = _paths_for_lengths(cell, datas, planes, start=cfg.start, lr=cfg.lr or PATH_LR,
                                   steps=cfg.steps, clip=cfg.clip, dtype=dtype, device=cfg.device)
    if trained is not None:
        paths.update(_training_paths(cell, datas, planes, trained.path))
    return paths


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


def _record(cfg: SliceConfig, plane, trained) -> dict:
    """The configuration as the surface file keeps it (JSON), with what the defaults resolved to."""
    c = asdict(cfg)
    c.update(task=cfg.task_name, lengths=list(cfg.lengths), x=plane.xlabel, y=plane.ylabel,
             xrange=[float(plane.x[0]), float(plane.x[-1])], yrange=[float(plane.y[0]), float(plane.y[-1])],
             res=[len(plane.x), len(plane.y)], norm=cfg.norm if cfg.plane == "random" else None,
             samples=None if cfg.data else cfg.samples, head=cfg.model_cell.head,
             gru_reset=cfg.gru_reset if cfg.cell == "gru" else None,
             start=list(cfg.start) if cfg.start else None, lr=(cfg.lr or PATH_LR) if cfg.start else None,
             steps=cfg.steps if cfg.start else None, clip=cfg.clip if cfg.start else None,
             train=dict(epochs=cfg.epochs, batch=cfg.batch, lr=cfg.lr or TRAIN_LR, optimizer="adam",
                        val_frac=0.2, final_val_acc=trained.val_acc[:, -1].tolist())
             if trained is not None else None)
    for k in ("epochs", "batch"):
        c.pop(k)
    return c
