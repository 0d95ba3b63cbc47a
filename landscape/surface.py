"""The result: a stack of loss grids over sequence lengths, its typed parts, and its .npz file.

``loss[k, i, j]`` is the loss at ``lengths[k]``, ``y[i]``, ``x[j]``. Beside it a Surface may hold
gradient maps (``Grads``), descent or training paths (``PathRun`` by name), cliff metrics
(``Cliffs``) and the trained centres. The file is written atomically and read with
``allow_pickle=False``; ``config`` travels as a JSON string, each part as arrays under fixed keys
(``grad_norm``, ``path_plain``, ``path_plain_loss``, ``cliff_max_jump``, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from ._errors import InputError
from ._io import atomic_write, load_npz
from ._version import __version__
from .cells import Cell
from .evaluate import DEFAULT_MEM, _evaluate, _evaluate_prefixes, check_grid, prefix_sweep, sweep_backend
from .planes import Plane
from .tasks import TaskData

__all__ = ["Surface", "Grads", "PathRun", "Cliffs", "load_surface", "compute_surface"]


@dataclass(frozen=True)
class Grads:
    """Gradient maps, each shaped like the loss (n_len, ny, nx)."""

    norm: np.ndarray  # L2 norm of the gradient over all parameters
    x: np.ndarray  # derivative along the plane's x axis, grad . d1
    y: np.ndarray  # derivative along the plane's y axis, grad . d2

    KEYS = {"norm": "grad_norm", "x": "grad_x", "y": "grad_y"}  # field -> file key


@dataclass(frozen=True)
class PathRun:
    """One path at every length, in plane coordinates: S + 1 points each."""

    coords: np.ndarray  # (n_len, S + 1, 2)
    loss: np.ndarray  # (n_len, S + 1): the loss at each point
    grad_norm: np.ndarray | None = None  # (n_len, S + 1): the moving gradient's norm (descent paths)
    off: np.ndarray | None = None  # (n_len, S + 1): distance off the plane (0 on an axis plane)

    def keys(self, name: str) -> dict[str, str]:
        """field -> file key: coords under path_<name>, the others under path_<name>_<field>."""
        return {f.name: f"path_{name}" + ("" if f.name == "coords" else f"_{f.name}") for f in fields(self)}


@dataclass(frozen=True)
class Cliffs:
    """Per-length cliff metrics (``landscape.cliffs``), each (n_len,), NaN where undefined."""

    max_grad: np.ndarray  # the largest gradient norm
    max_grad_x: np.ndarray  # where it is
    max_grad_y: np.ndarray
    max_jump: np.ndarray  # the largest loss jump between neighbouring cells
    wall_x: np.ndarray  # the midpoint of that jump: where the steepest wall stands
    wall_y: np.ndarray
    share: np.ndarray  # the share of finite cells whose gradient norm exceeds the threshold
    nonfinite: np.ndarray  # the count of non-finite cells

    def arrays(self) -> dict[str, np.ndarray]:
        return {"cliff_" + f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Surface:
    loss: np.ndarray  # (n_len, ny, nx)
    x: np.ndarray  # (nx,)
    y: np.ndarray  # (ny,)
    lengths: np.ndarray  # (n_len,) int
    xlabel: str
    ylabel: str
    config: dict = field(default_factory=dict)  # the configuration's record (JSON-ready)
    accuracy: np.ndarray | None = None  # like loss, where the task defines it
    grads: Grads | None = None  # gradient maps
    paths: dict[str, PathRun] = field(default_factory=dict)  # "plain", "clip", "train"
    cliffs: Cliffs | None = None  # cliff metrics per length
    trained_centers: np.ndarray | None = None  # (n_len, P): the trained models the planes surround
    notes: tuple[str, ...] = ()  # lines the computation has to tell (not saved)

    def __post_init__(self) -> None:
        shape = (len(self.lengths), len(self.y), len(self.x))
        if self.loss.shape != shape:
            raise InputError(f"loss has shape {self.loss.shape}, expected (n_len, ny, nx) = {shape}")
        if self.accuracy is not None and self.accuracy.shape != shape:
            raise InputError(f"accuracy has shape {self.accuracy.shape}, expected {shape}")

    @property
    def is_line(self) -> bool:
        """Whether the surface is one row: the loss along a line (an interpolation between models)."""
        return len(self.y) == 1

    def marks(self, k: int = 0) -> list[tuple[str, float, float]]:
        """(name, x, y) of the models an interpolation passes through at length k (A, B, C), from
        the configuration's record; none for other planes."""
        rows = self.config.get("marks") or []
        try:
            return [(str(n), float(a), float(b)) for n, a, b in rows[min(k, len(rows) - 1)]] if rows else []
        except (TypeError, ValueError):  # a foreign file's record: no marks, not a failure
            return []

    def with_parts(self, **parts) -> Surface:
        """A copy with some parts added or replaced (``grads=``, ``paths=``, ``cliffs=``, ...)."""
        return replace(self, **parts)

    def caption(self) -> str:
        """'cell lstm, task latching, axis plane' from the config, for figure titles."""
        c = self.config
        parts = [
            f"cell {c['cell']}" if "cell" in c else "",
            f"task {c['task']}" if "task" in c else "",
            {"line": "line from A to B", "through": "plane through A, B, C"}.get(
                c.get("plane"), f"{c.get('plane')} plane"
            )
            if "plane" in c
            else "",
        ]
        return ", ".join(p for p in parts if p)

    def maps(self) -> dict[str, np.ndarray]:
        """Every array shaped like loss, by name: loss, accuracy, grad_norm, grad_x, grad_y."""
        named = {"loss": self.loss, "accuracy": self.accuracy}
        if self.grads is not None:
            named.update({key: getattr(self.grads, f) for f, key in Grads.KEYS.items()})
        return {k: v for k, v in named.items() if v is not None}

    def arrays(self) -> dict[str, np.ndarray]:
        """The file's arrays, by key."""
        out = dict(
            self.maps(),
            x=self.x,
            y=self.y,
            lengths=np.asarray(self.lengths),
            xlabel=np.array(self.xlabel),
            ylabel=np.array(self.ylabel),
            config=np.array(json.dumps(self.config, sort_keys=True)),
        )
        for name, run in self.paths.items():
            parts = {key: getattr(run, f) for f, key in run.keys(name).items()}
            out.update({key: v for key, v in parts.items() if v is not None})
        if self.cliffs is not None:
            out.update(self.cliffs.arrays())
        if self.trained_centers is not None:
            out["trained_centers"] = self.trained_centers
        return out

    def save(self, path: str) -> str:
        """Write the .npz file atomically; returns the path."""
        arrays = self.arrays()
        atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
        return path

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], config: dict) -> Surface:
        """A Surface from a file's arrays (checked by ``load_surface``); unknown keys are left out."""
        grads = Grads(*(arrays[k] for k in Grads.KEYS.values())) if "grad_norm" in arrays else None
        paths = {}
        for key in sorted(k for k, v in arrays.items() if k.startswith("path_") and v.ndim == 3):
            name = key.removeprefix("path_")
            paths[name] = PathRun(
                arrays[key], arrays[key + "_loss"], arrays.get(key + "_grad_norm"), arrays.get(key + "_off")
            )
        cliff = {f.name: arrays.get("cliff_" + f.name) for f in fields(Cliffs)}
        cliffs = Cliffs(**cliff) if all(v is not None for v in cliff.values()) else None
        return cls(
            arrays["loss"],
            arrays["x"],
            arrays["y"],
            arrays["lengths"],
            str(arrays["xlabel"]),
            str(arrays["ylabel"]),
            config,
            arrays.get("accuracy"),
            grads,
            paths,
            cliffs,
            arrays.get("trained_centers"),
        )


def load_surface(path: str) -> Surface:
    """Read a surface file without pickle; a broken or foreign file raises InputError."""
    arrays = load_npz(path, "surface file")
    missing = sorted({"loss", "x", "y", "lengths", "xlabel", "ylabel", "config"} - set(arrays))
    if missing:
        raise InputError(f"{path} is not a surface file: it lacks {', '.join(missing)}")
    try:
        config = json.loads(str(arrays["config"]))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: config is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: config must be a JSON object, not {type(config).__name__}")
    _check_arrays(path, arrays)
    return Surface.from_arrays(arrays, config)


def _check_arrays(path: str, arrays: dict) -> None:
    """Every array a renderer reads, checked as a file from anywhere must be: real numbers, the
    shapes the keys promise, finite increasing coordinates, positive whole lengths."""
    for key, v in arrays.items():
        if key not in ("xlabel", "ylabel", "config") and v.dtype.kind not in "fiub":
            raise InputError(f"{path}: {key} must hold real numbers, not {v.dtype}")
    x, y, lengths = arrays["x"], arrays["y"], arrays["lengths"]
    for key, v, least in (("x", x, 2), ("y", y, 1)):  # one y: a line (an interpolation's)
        if (
            v.ndim != 1
            or len(v) < least
            or not np.all(np.isfinite(v))
            or np.any(np.abs(v) > 1e300)
            or np.any(np.diff(v) <= 0)
        ):
            raise InputError(
                f"{path}: {key} must hold at least {least} increasing, finite coordinate(s) within +-1e300"
            )
    if (
        lengths.ndim != 1
        or len(lengths) < 1
        or not np.all(np.isfinite(lengths))
        or np.any(lengths < 1)
        or np.any(lengths != np.round(lengths))
    ):
        raise InputError(f"{path}: lengths must hold at least one positive whole length")
    n = len(lengths)
    shape = (n, len(y), len(x))
    for key, v in arrays.items():
        if key in ("accuracy", *Grads.KEYS.values()) and v.shape != shape:
            raise InputError(f"{path}: {key} has shape {v.shape}, expected {shape}")
        if key.startswith(("cliff_", "path_")) and (v.ndim < 1 or v.shape[0] != n):
            raise InputError(f"{path}: {key} has shape {v.shape}; its first axis must be the {n} lengths")
        if key.startswith("path_") and v.ndim == 3:  # coordinates (n, S, 2), with their loss (n, S)
            partner = arrays.get(key + "_loss")
            if v.shape[2] != 2 or partner is None or partner.shape != v.shape[:2]:
                raise InputError(f"{path}: path {key} needs shape (n, S, 2) and {key}_loss of shape (n, S)")
        elif key.startswith("path_") and v.ndim != 2:
            raise InputError(f"{path}: {key} has shape {v.shape}, expected (n, S)")
    for key in [k for k in arrays if k.startswith("path_") and k.endswith("_loss")]:
        if key.removesuffix("_loss") not in arrays:
            raise InputError(f"{path}: {key} has no path {key.removesuffix('_loss')} beside it")


def compute_surface(
    cell: Cell,
    plane: Plane | list[Plane],
    datas: list[TaskData],
    *,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    mem: int = DEFAULT_MEM,
    grad: bool = False,
    backend: str = "auto",
    progress: bool = True,
    config: dict | None = None,
) -> Surface:
    """Evaluate the plane at every length (one TaskData per length) into a Surface.

    ``plane`` may be one plane for all lengths or one per length (around each length's own
    centre, as for trained models), sharing coordinates and labels.

    With ``grad``, ``grads`` holds the gradient maps.
    ``backend`` picks the engine (``landscape.evaluate.evaluate``), once for the whole sweep.
    """
    if not isinstance(datas, (list, tuple)) or not datas or not all(isinstance(d, TaskData) for d in datas):
        raise InputError("datas must be a non-empty list of TaskData, one per length (landscape.make_data)")
    planes = plane if isinstance(plane, list) else [plane] * len(datas)
    for p, d in zip(planes, datas, strict=False):  # the counts are compared below
        cell, opts = check_grid(cell, d, p, dtype=dtype, device=device, mem=mem)
    plane = planes[0]
    if len(planes) != len(datas) or any(p.shape != plane.shape or p.xlabel != plane.xlabel for p in planes):
        raise InputError("give one plane, or one plane per length with the same grid and labels")
    datas = [d.to(opts["dtype"], opts["device"]) for d in datas]
    return _compute_surface(cell, planes, datas, {**opts, "grad": grad, "backend": backend}, progress, config)


def _compute_surface(
    cell: Cell, planes: list[Plane], datas: list[TaskData], opts: dict, progress: bool, config: dict | None
) -> Surface:
    """``compute_surface`` past its checks: one plane per length, ``opts`` ``evaluate``'s options,
    the data in their dtype on their device. One backend serves the whole sweep, decided by its
    work (as a tiled sweep's is), so that every length takes the same path."""
    backend = sweep_backend(cell, opts["backend"], opts["device"], planes, datas, opts["grad"])
    opts = {**opts, "backend": backend}
    ny, nx = planes[0].shape
    work = sum(ny * nx * d.length for d in datas)
    with tqdm(
        total=work,
        unit="step",
        unit_scale=True,
        delay=2.0,
        disable=not progress,
        desc=f"{cell.name} {ny}x{nx}",
        leave=False,
    ) as bar:
        if not opts["grad"] and prefix_sweep(planes, datas):  # every length from one pass
            top = max(datas, key=lambda d: d.length)
            grids = _evaluate_prefixes(
                cell,
                top,
                planes[0],
                [d.length for d in datas],
                **{k: v for k, v in opts.items() if k != "grad"},
                bar=bar,
            )
        else:
            grids = [_evaluate(cell, d, p, **opts, bar=bar) for p, d in zip(planes, datas, strict=True)]
    plane = planes[0]
    acc = None if grids[0].accuracy is None else np.stack([g.accuracy for g in grids])
    grads = (
        Grads(*(np.stack([getattr(g, key) for g in grids]) for key in Grads.KEYS.values()))
        if opts["grad"]
        else None
    )
    return Surface(
        np.stack([g.loss for g in grids]),
        plane.x,
        plane.y,
        np.array([d.length for d in datas], dtype=np.int64),
        plane.xlabel,
        plane.ylabel,
        {**(config or {}), "version": __version__},
        acc,
        grads,
    )
