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
import math
import numbers
import os
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from ._errors import DTYPES, MAX_SEED, ConfigError, InputError, check_type
from ._version import __version__
from .cells import CELLS, GRU_RESETS, HEADS, get_cell
from .cliffs import cliff_metrics
from .evaluate import DEFAULT_MEM
from .fused import BACKENDS, resolve_backend
from .inits import INITS
from .params import center_params
from .planes import MAX_COORD, NORMS, axis_plane, check_res, grid_coords, pca_plane, random_plane
from .surface import Grads, Surface, compute_surface
from .tasks import TASKS, data_from_arrays, get_task, load_data, make_data
from .tiles import RunDir, default_rows, run_tiles
from .train import train_ensemble
from .trajectories import MAX_STEPS, paths_for_lengths, training_paths

__all__ = ["SliceConfig", "slice_surface", "PLANES", "DTYPES"]

PLANES = ("axis", "random", "pca")
PATH_LR, TRAIN_LR = 0.01, 1e-3  # default learning rates of descent paths and of --center trained
MAX_RESULT = 4 << 30  # bytes of the surface's arrays, or of the data
MAX_WORK = 1e14  # cell-steps of one slice: about a day at 1e9 a second


def _check(ok: bool, param: str, message: str) -> None:
    if not ok:
        raise ConfigError(param, message)


def _real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _whole(v) -> bool:
    return _real(v) and math.isfinite(v) and int(v) == v


def _finite_pair(v, param: str, *, ordered: bool) -> None:
    ok = v is None or (isinstance(v, (tuple, list)) and len(v) == 2 and all(_real(a) for a in v)
                       and all(math.isfinite(a) and abs(a) <= MAX_COORD for a in v)
                       and (not ordered or v[0] < v[1]))
    order = ", LO < HI" if ordered else ""
    _check(ok, param, f"{v!r} must be two finite numbers within +-{MAX_COORD:g}{order}")


@dataclass(frozen=True)
class SliceConfig:
    """Everything that decides a slice's numbers; validated once, here."""

    cell: str = "rnn"  # rnn, lstm, gru or pascanu
    task: str | None = None  # latching, relay or pascanu; None: the cell's default task
    lengths: tuple[int, ...] = (50,)  # sequence lengths: one, or a sweep
    data: str | None = None  # a .npz of the user's own x (N, T) and y (N,) in {0, 1}; None: generated
    plane: str = "axis"  # axis (two named parameters), random (Li et al.'s directions) or pca
    x: str | None = None  # axis plane: x parameter; None: the cell's default plane
    y: str | None = None  # axis plane: y parameter
    xrange: tuple[float, float] | None = None  # None: the cell's default, or -1:1 on a random plane
    yrange: tuple[float, float] | None = None
    res: tuple[int, int] | None = None  # (nx, ny); None: the cell's default, or 51 x 51
    norm: str = "filter"  # random directions: filter, model or none
    center: str = "init"  # init, trained, or a checkpoint FILE.pt
    init: str = "torch"  # the initialization of an init centre: torch or keras
    head: str = "logit"  # readout: logit, or softmax2 (Keras's Dense(2, softmax))
    gru_reset: str = "after"  # gru: reset gate after (torch.nn) or before (Keras < 2.3) the product
    epochs: int = 5  # center trained: epochs
    batch: int = 16  # center trained: batch size
    grad: bool = False  # also gradient maps: grad_norm, grad_x, grad_y
    threshold: float = 1.0  # gradient norm above which a cell counts as steep
    start: tuple[float, float] | None = None  # start of a plain and a clipped descent path
    lr: float | None = None  # descent paths' (0.01) and center trained's Adam's (1e-3) rate
    steps: int = 50  # descent path steps
    clip: float = 1.0  # gradient-norm threshold of the clipped path
    samples: int = 1000  # generated sequences (N)
    noise: float = 0.1  # std of the generated inputs' noise
    seed: int = 0  # of the data, the init, the directions and the training
    dtype: str = "float32"  # float32 or float64
    device: str = "cpu"  # cpu or cuda
    backend: str = "auto"  # auto, reference or fused
    mem: int = DEFAULT_MEM  # bytes of one vectorized chunk
    tile_rows: int | None = None  # split the sweep into tiles of this many grid rows (resumable)
    workers: int | None = None  # run the tiles on a local Dask cluster of this many processes
    scheduler: str | None = None  # run the tiles on the Dask scheduler at this address

    def __post_init__(self) -> None:
        # numpy numbers and lists are welcome from Python callers; the record keeps plain ones
        if isinstance(self.seed, numbers.Integral) and not isinstance(self.seed, bool):
            object.__setattr__(self, "seed", int(self.seed))
        if isinstance(self.lengths, numbers.Integral):
            object.__setattr__(self, "lengths", (int(self.lengths),))
        elif (isinstance(self.lengths, (tuple, list, np.ndarray))
                and all(isinstance(n, numbers.Integral) for n in self.lengths)):
            object.__setattr__(self, "lengths", tuple(int(n) for n in self.lengths))
        for param, value, valid in (("cell", self.cell, CELLS), ("plane", self.plane, PLANES),
                                    ("norm", self.norm, NORMS), ("init", self.init, INITS),
                                    ("head", self.head, HEADS), ("gru_reset", self.gru_reset, GRU_RESETS),
                                    ("dtype", self.dtype, DTYPES), ("device", self.device, ("cpu", "cuda")),
                                    ("backend", self.backend, BACKENDS)):
            _check(value in valid, param, f"{value!r} is unknown; valid: {', '.join(valid)}")
        get_cell(self.cell, head=self.head, gru_reset=self.gru_reset)  # a head or reset the cell has
        _check(self.task is None or self.task in TASKS, "task",
               f"{self.task!r} is unknown; valid: {', '.join(TASKS)}")
        for param in ("samples", "steps", "epochs", "batch", "mem", "tile_rows", "workers"):
            v = getattr(self, param)
            _check(_whole(v) or (v is None and param in ("tile_rows", "workers")), param,
                   f"{v!r} must be an integer")
        for param in ("lr", "clip", "threshold"):
            v = getattr(self, param)
            _check(_real(v) or (v is None and param == "lr"), param, f"{v!r} must be a number")
        if self.res is not None:
            try:
                object.__setattr__(self, "res", check_res(self.res))
            except InputError:
                raise ConfigError("res", f"{self.res!r} must be (nx, ny) or one number, "
                                         "each an integer >= 2") from None
        _check(isinstance(self.lengths, (tuple, list)), "lengths",
               f"{self.lengths!r} must be a list of integers")
        _check(len(self.lengths) > 0, "lengths", "is empty; give at least one length")
        for n in self.lengths:
            _check(int(n) == n and n >= 1, "lengths", f"{n!r} must be a positive integer")
        _finite_pair(self.xrange, "xrange", ordered=True)
        _finite_pair(self.yrange, "yrange", ordered=True)
        _finite_pair(self.start, "start", ordered=False)
        _check(self.lr is None or 0 < self.lr < math.inf, "lr", f"{self.lr} must be a finite number > 0")
        _check(1 <= self.steps <= MAX_STEPS, "steps", f"{self.steps} must be from 1 to {MAX_STEPS}")
        _check(0 < self.clip < math.inf, "clip", f"{self.clip} must be a finite number > 0")
        _check(self.threshold > 0, "threshold", f"{self.threshold} must be a number > 0")
        _check(self.samples >= 2, "samples", f"{self.samples} must be at least 2")
        _check(self.mem > 0, "mem", f"{self.mem} must be a positive number of bytes")
        _check(not isinstance(self.seed, bool) and isinstance(self.seed, numbers.Integral)
               and 0 <= self.seed <= MAX_SEED, "seed", f"{self.seed} must be an integer from 0 to {MAX_SEED}")
        _check(self.epochs >= 1 and self.batch >= 1, "epochs", f"{self.epochs} and {{batch}} {self.batch} "
               "must be positive integers")
        cell = self.model_cell
        task = get_task(self.task_name)
        if task.takes_input != cell.takes_input:
            valid = [t for t, v in TASKS.items() if v.takes_input == cell.takes_input]
            raise ConfigError("task", f"{self.task_name!r} does not fit cell {cell.name!r}; "
                                      f"valid tasks for it: {', '.join(valid)}")
        _check(not (self.data and not cell.takes_input), "data",
               f"gives input sequences, and cell {cell.name!r} takes no input")
        _check(self.plane == "axis" or not (self.x or self.y), "x",
               f"and {{y}} name the axes of {{plane=axis}}; a {self.plane} plane has none")
        _check(self.plane != "pca" or self.center == "trained", "plane",
               "pca is the plane of a training path: it needs {center=trained}")
        _check(self.center != "trained" or cell.takes_input, "center",
               f"trained trains a classifier; cell {cell.name!r} has no input")
        _check(self.device != "cuda" or torch.cuda.is_available(), "device",
               "cuda: no CUDA device is available here; valid: cpu")
        self._check_size()
        _check(self.tile_rows is None or self.tile_rows >= 1, "tile_rows", f"{self.tile_rows} must be >= 1")
        _check(self.workers is None or 1 <= self.workers <= 256, "workers",
               f"{self.workers} must be an integer from 1 to 256")
        _check(not (self.workers and self.scheduler), "workers",
               "starts a local cluster; {scheduler} names an existing one: give one of them")

    @property
    def tiled(self) -> bool:
        """Whether the sweep runs as tiles (resumable, and on Dask with workers or a scheduler)."""
        return bool(self.tile_rows or self.workers or self.scheduler)

    def _check_size(self) -> None:
        """Refuse, before any allocation, a result or data too big for memory or a run too long."""
        cell, (nx, ny) = self.model_cell, self.res or (51, 51)
        if self.plane == "axis" and self.res is None:
            nx, ny = cell.default_plane[4]
        maps = 2 + (3 if self.grad else 0)  # loss, accuracy, gradient maps
        result = len(self.lengths) * nx * ny * maps * 8
        _check(result <= MAX_RESULT, "res", f"{nx},{ny} over {len(self.lengths)} length(s) makes a "
               f"result of {result / 2**30:.1f} GiB; the limit is {MAX_RESULT / 2**30:.0f} GiB")
        n = 1 if not cell.takes_input else self.samples
        data = n * sum(self.lengths) * 8 * 2  # float64 inputs, and their cast
        _check(data <= MAX_RESULT, "samples", f"{self.samples} sequences of {max(self.lengths)} steps "
               f"make {data / 2**30:.1f} GiB of data; the limit is {MAX_RESULT / 2**30:.0f} GiB")
        work = nx * ny * n * sum(self.lengths) * (3 if self.grad else 1)
        _check(work <= MAX_WORK, "lengths", f"{list(self.lengths)[:5]} on a {nx} x {ny} grid of {n} "
               f"sequences is {work:.1e} cell-steps, about {work / 1e9 / 3600:.0f} h at 1e9 a second; "
               f"the limit is {MAX_WORK:.0e}")

    @property
    def model_cell(self):
        return get_cell(self.cell, head=self.head, gru_reset=self.gru_reset)

    @property
    def task_name(self) -> str:
        return self.task or CELLS[self.cell].default_task


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
