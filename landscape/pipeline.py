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

import os
from dataclasses import dataclass

import numpy as np
import torch

from ._errors import DTYPES, ConfigError, InputError, check_type
from ._io import one_run, sha256
from ._version import __version__
from .backends import check_features
from .cliffs import _cliff_metrics, _cliff_table
from .config import SliceConfig
from .evaluate import sweep_backend
from .figures.options import FigureOptions
from .params import _center, _save_checkpoint
from .planes import _sweep_planes
from .rundir import RunDir
from .surface import Grads, Surface, _compute_surface
from .tasks import TASKS, _from_arrays, _make_data, load_data
from .tiles import run_tiles
from .train import _train
from .trajectories import _sweep_paths

__all__ = ["SliceConfig", "Outputs", "slice_surface", "write_slice", "default_name"]


@dataclass(frozen=True)
class Outputs:
    """Where and how a slice's files go: the folder, the file stem (None: ``default_name``), the
    figures' options (``landscape.figures.write_figures``) and whether to show progress."""

    folder: str = "figures"
    name: str | None = None
    figures: FigureOptions = FigureOptions()
    progress: bool = True


def default_name(cfg: SliceConfig) -> str:
    """The output stem the configuration gives: cell, variant, task, plane axes and lengths."""
    cell = cfg.model_cell
    variant = "".join(
        f"_{v}"
        for v, on in (
            ("keras-init", cfg.init == "keras"),
            ("softmax2", cell.head == "softmax2"),
            ("reset-before", cell.reset == "before"),
        )
        if on
    )
    size = (("I", cell.inputs), ("H", cell.hidden), ("L", cell.layers))
    variant += "".join(f"_{w}{v}" for w, v in size if v > 1)
    axes = {
        "axis": cfg.axes,
        "random": ("d1", "d2"),
        "pca": ("pc1", "pc2"),
        "line": ("A", "B"),
        "through": ("A", "B-C"),
    }[cfg.plane]
    n = cfg.lengths
    lengths = "-".join(map(str, n)) if len(n) <= 6 else f"{n[0]}-to-{n[-1]}-{len(n)}-lengths"
    return f"{cell.name}{variant}_{cfg.task_name}_{axes[0]}-{axes[1]}_L{lengths}"


def _stem(cfg: SliceConfig, out: Outputs) -> str:
    """The files' path without suffix: a stem inside the folder, short enough for every suffix."""
    name = default_name(cfg) if out.name is None else out.name
    if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
        raise ConfigError("name", "must be a file stem inside {folder} (no '/', not '.' or '..')", value=name)
    if len(name.encode()) > 200:  # NAME_MAX is 255 bytes; '_cliffs.html' and '_L<n>.pt' follow
        raise ConfigError("name", f"is {len(name.encode())} bytes long; give at most 200")
    return os.path.join(out.folder, name)


def write_slice(cfg: SliceConfig, out: Outputs = Outputs()) -> list[str]:
    """Compute the slice and write it: ``<stem>.npz`` (the surface), its figures and, with trained
    centres, each length's model as ``<stem>_L<n>.pt``; prints the run's notes and its cliff
    table, and returns the paths. Every file lands together, or none does (a failed drawing
    leaves nothing behind); a tiled run keeps its tiles in ``<stem>.tiles`` until then."""
    if not isinstance(cfg, SliceConfig) or not isinstance(out, Outputs):
        raise InputError(
            f"write_slice takes a SliceConfig and Outputs, not {type(cfg).__name__} and {type(out).__name__}"
        )
    stem = _stem(cfg, out)
    with one_run(out.folder):
        surface = _slice_surface(cfg, out.progress, stem + ".tiles")
        print(*surface.notes, _cliff_table(surface, surface.cliffs, cfg.threshold), sep="\n")
        npz = surface.save(stem + ".npz")
        # a default name already ends in its lengths: each model is <name without them>_L<n>.pt
        base = stem.rsplit("_L", 1)[0] if out.name is None else stem
        models = (
            []
            if surface.trained_centers is None
            else [
                _save_checkpoint(f"{base}_L{n}.pt", cfg.model_cell, torch.from_numpy(c))
                for n, c in zip(cfg.lengths, surface.trained_centers, strict=True)
            ]
        )
        from .figures import _write_figures  # the drawing libraries load when there is a figure to draw

        paths = [npz, *_write_figures(surface, stem, out.figures), *models]
    if cfg.tiled and os.path.lexists(stem + ".tiles"):  # the run is whole: what it made goes
        try:
            note = RunDir.attach(stem + ".tiles").remove()
        except InputError as e:  # changed under the run: left as it is, the result is safe
            note = f"run directory left as it is: {e}"
        if note:
            print(note)
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
    centers, trained = _centers(cfg, cell, datas, dtype)
    planes, notes = _sweep_planes(
        cell,
        centers,
        cfg.plane,
        axes=cfg.axes,
        xrange=cfg.xrange,
        yrange=cfg.yrange,
        res=cfg.grid_res,
        seed=cfg.seed,
        norm=cfg.norm,
        paths=None if trained is None else trained.path,
        models=_ends(cfg, cell, centers, trained),
    )
    notes = [f"L = {n}: {note}" for n, note in zip(cfg.lengths, notes, strict=False)]
    record = cfg.record(planes, trained)
    paths = _paths(cfg, cell, datas, planes, trained, dtype)
    opts = dict(dtype=dtype, device=cfg.device, mem=cfg.mem, grad=cfg.grad, backend=cfg.backend)
    datas = [d.to(dtype, cfg.device) for d in datas]
    surface = _surface(cfg, cell, planes, datas, record, opts, run_dir, progress)
    centres = None if trained is None else trained.theta.numpy()  # (n_len, P)
    surface = surface.with_parts(paths=paths, notes=tuple(notes), trained_centers=centres)
    return surface.with_parts(cliffs=_cliff_metrics(surface, cfg.threshold))


def _datas(cfg: SliceConfig) -> list:
    """Each length's data: the user's file cut to the length, or generated; each checked against
    the model (features per step, targets of its readout's loss)."""
    datas = _length_datas(cfg)
    for d in datas:
        check_features(cfg.model_cell, d)
    return datas


def _length_datas(cfg: SliceConfig) -> list:
    if cfg.data:
        objective = cfg.model_cell.objective
        x, y = load_data(cfg.data, objective)
        return [_from_arrays(x, y, n, objective) for n in cfg.lengths]
    task = TASKS[cfg.task_name]
    return [_make_data(task, n, cfg.samples, cfg.noise, cfg.seed, cfg.symbols) for n in cfg.lengths]


def _centers(cfg: SliceConfig, cell, datas, dtype) -> tuple[list[torch.Tensor], object]:
    """Each length's centre, and the training result where the centres are trained models."""
    if cfg.keras_model is not None:
        return [cfg.keras_model[1]] * len(datas), None
    if cfg.center != "trained":
        return [_center(cell, cfg.center, cfg.seed, cfg.init)] * len(datas), None
    trained = _train(cell, datas, cfg.train_config)
    return list(trained.theta), trained


def _ends(cfg: SliceConfig, cell, centers: list[torch.Tensor], trained) -> list[list[torch.Tensor]] | None:
    """Each length's models of an interpolation: [A, B] or [A, B, C], A the centre (or, on a line
    of a trained centre without ``to``, the initialization it was trained from and B the model)."""
    if cfg.plane not in ("line", "through"):
        return None
    if not cfg.to:
        path = torch.from_numpy(trained.path)  # (n_len, R, P): the first point is the initialization
        return [[path[k, 0], c] for k, c in enumerate(centers)]
    return [[c, *cfg.end_models] for c in centers]


def _paths(cfg: SliceConfig, cell, datas, planes, trained, dtype) -> dict:
    """The descent paths from ``cfg.start`` and the training paths, by name (a line has none)."""
    if cfg.plane == "line":
        return {}
    (x0, x1), (y0, y1) = (planes[0].x[[0, -1]], planes[0].y[[0, -1]])
    if cfg.start and not (x0 <= cfg.start[0] <= x1 and y0 <= cfg.start[1] <= y1):
        raise ConfigError(
            "start",
            f"{cfg.start[0]:g},{cfg.start[1]:g} lies outside the plotted window "
            f"{x0:g}:{x1:g} x {y0:g}:{y1:g}",
        )
    descent = (
        None
        if not cfg.start
        else dict(
            start=cfg.start, lr=cfg.path_lr, steps=cfg.steps, clip=cfg.clip, dtype=dtype, device=cfg.device
        )
    )
    return _sweep_paths(
        cell, datas, planes, descent=descent, trained=None if trained is None else trained.path
    )


def _surface(
    cfg: SliceConfig, cell, planes, datas, record: dict, opts: dict, run_dir: str | None, progress: bool
) -> Surface:
    """The surface, in one piece or as tiles, each saved in ``run_dir`` as it is done (resumable)."""
    if not cfg.tiled:
        return _compute_surface(cell, planes, datas, opts, progress, record)
    if run_dir is None:
        raise ConfigError("tile_rows", "and {workers}, {scheduler} need a run directory for the tiles")
    # one backend for the whole sweep, as untiled (landscape.surface): one path, the same arrays
    backend = sweep_backend(cell, cfg.backend, cfg.device, planes, datas, cfg.grad)
    files = {
        f"{k}_sha256": sha256(getattr(cfg, k))
        for k in ("data", "center")
        if os.path.isfile(getattr(cfg, k) or "")
    }  # the inputs' contents, not just their names
    if cfg.to:
        files["to_sha256"] = [sha256(f) for f in cfg.to]
    manifest = {
        k: v
        for k, v in {**record, **files, "version": __version__}.items()
        if k not in ("workers", "scheduler", "timeout")
    }  # where tiles run does not change them
    opts = {**opts, "backend": backend, "threads": 1 if cfg.workers else None}  # a worker process per core
    maps, _ = run_tiles(
        cell,
        planes,
        datas,
        run_dir,
        manifest,
        rows=cfg.tile_rows,
        opts=opts,
        scheduler=cfg.scheduler,
        workers=cfg.workers,
        timeout=cfg.wait,
        progress=progress,
    )
    plane = planes[0]
    grads = Grads(*(maps[key] for key in Grads.KEYS.values())) if cfg.grad else None
    return Surface(
        maps["loss"],
        plane.x,
        plane.y,
        np.array(cfg.lengths, dtype=np.int64),
        plane.xlabel,
        plane.ylabel,
        {**record, "version": __version__},
        maps.get("accuracy"),
        grads,
    )
