"""The result: a stack of loss grids over sequence lengths, and its .npz file.

``loss[k, i, j]`` is the loss at ``lengths[k]``, ``y[i]``, ``x[j]``. The file is written
atomically and read with ``allow_pickle=False``; ``config`` travels as a JSON string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from . import __version__
from ._errors import InputError, check_type
from ._io import atomic_write, load_npz
from .cells import Cell, as_cell
from .evaluate import DEFAULT_MEM, evaluate
from .planes import Plane
from .tasks import TaskData

__all__ = ["Surface", "load_surface", "compute_surface", "GRAD_KEYS"]

GRAD_KEYS = ("grad_norm", "grad_x", "grad_y")


@dataclass
class Surface:
    loss: np.ndarray  # (n_len, ny, nx)
    x: np.ndarray  # (nx,)
    y: np.ndarray  # (ny,)
    lengths: np.ndarray  # (n_len,) int
    xlabel: str
    ylabel: str
    config: dict = field(default_factory=dict)
    accuracy: np.ndarray | None = None  # like loss, where the task defines it
    extra: dict = field(default_factory=dict)  # further arrays shaped like loss (or per length)
    notes: list = field(default_factory=list)  # lines the computation has to tell (not saved)

    def __post_init__(self) -> None:
        shape = (len(self.lengths), len(self.y), len(self.x))
        if self.loss.shape != shape:
            raise InputError(f"loss has shape {self.loss.shape}, expected (n_len, ny, nx) = {shape}")
        if self.accuracy is not None and self.accuracy.shape != shape:
            raise InputError(f"accuracy has shape {self.accuracy.shape}, expected {shape}")

    def caption(self) -> str:
        """'cell lstm, task latching, axis plane' from the config, for figure titles."""
        c = self.config
        parts = [f"cell {c['cell']}" if "cell" in c else "", f"task {c['task']}" if "task" in c else "",
                 f"{c['plane']} plane" if "plane" in c else ""]
        return ", ".join(p for p in parts if p)

    def maps(self) -> dict[str, np.ndarray]:
        """Every array shaped like loss, by name: loss, accuracy, grad_norm, ..."""
        named = {"loss": self.loss, "accuracy": self.accuracy, **self.extra}
        return {k: v for k, v in named.items() if v is not None and np.shape(v) == self.loss.shape}

    def save(self, path: str) -> str:
        """Write the .npz file atomically; returns the path."""
        arrays = dict(loss=self.loss, x=self.x, y=self.y, lengths=np.asarray(self.lengths),
                      xlabel=np.array(self.xlabel), ylabel=np.array(self.ylabel),
                      config=np.array(json.dumps(self.config, sort_keys=True)), **self.extra)
        if self.accuracy is not None:
            arrays["accuracy"] = self.accuracy
        atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
        return path


_KNOWN = {"loss", "x", "y", "lengths", "xlabel", "ylabel", "config", "accuracy"}


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
    return Surface(arrays["loss"], arrays["x"], arrays["y"], arrays["lengths"],
                   str(arrays["xlabel"]), str(arrays["ylabel"]), config, arrays.get("accuracy"),
                   {k: v for k, v in arrays.items() if k not in _KNOWN})


def _check_arrays(path: str, arrays: dict) -> None:
    """Every array a renderer reads, checked as a file from anywhere must be: real numbers, the
    shapes the keys promise, finite increasing coordinates, positive whole lengths."""
    for key, v in arrays.items():
        if key not in ("xlabel", "ylabel", "config") and v.dtype.kind not in "fiub":
            raise InputError(f"{path}: {key} must hold real numbers, not {v.dtype}")
    x, y, lengths = arrays["x"], arrays["y"], arrays["lengths"]
    for key, v in (("x", x), ("y", y)):
        if v.ndim != 1 or len(v) < 2 or not np.all(np.isfinite(v)) or np.any(np.abs(v) > 1e300) \
                or np.any(np.diff(v) <= 0):
            raise InputError(f"{path}: {key} must hold at least 2 increasing, finite coordinates "
                             "within +-1e300")
    if lengths.ndim != 1 or len(lengths) < 1 or not np.all(np.isfinite(lengths)) or np.any(lengths < 1) \
            or np.any(lengths != np.round(lengths)):
        raise InputError(f"{path}: lengths must hold at least one positive whole length")
    n = len(lengths)
    shape = (n, len(y), len(x))
    for key, v in arrays.items():
        if key in ("accuracy", *GRAD_KEYS) and v.shape != shape:
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


def compute_surface(cell: Cell, plane: Plane | list[Plane], datas: list[TaskData], *,
                    dtype: torch.dtype = torch.float32, device: str = "cpu", mem: int = DEFAULT_MEM,
                    grad: bool = False, backend: str = "auto", progress: bool = True,
                    config: dict | None = None) -> Surface:
    """Evaluate the plane at every length (one TaskData per length) into a Surface.

    ``plane`` may be one plane for all lengths or one per length (around each length's own
    centre, as for trained models), sharing coordinates and labels.

    With ``grad``, ``extra`` holds ``grad_norm``, ``grad_x`` and ``grad_y``, shaped like loss.
    ``backend`` picks the engine (``landscape.evaluate.evaluate``).
    """
    cell = as_cell(cell)
    if not isinstance(datas, (list, tuple)) or not datas or not all(isinstance(d, TaskData) for d in datas):
        raise InputError("datas must be a non-empty list of TaskData, one per length (landscape.make_data)")
    planes = plane if isinstance(plane, list) else [plane] * len(datas)
    for p in planes:
        check_type(p, Plane, "plane")
    plane = planes[0]
    if len(planes) != len(datas) or any(p.shape != plane.shape or p.xlabel != plane.xlabel for p in planes):
        raise InputError("give one plane, or one plane per length with the same grid and labels")
    ny, nx = plane.shape
    work = sum(ny * nx * d.length for d in datas)
    with tqdm(total=work, unit="step", unit_scale=True, delay=2.0, disable=not progress,
              desc=f"{cell.name} {ny}x{nx}", leave=False) as bar:
        grids = [evaluate(cell, d, p, dtype=dtype, device=device, mem=mem, grad=grad, backend=backend,
                          bar=bar)
                 for p, d in zip(planes, datas, strict=True)]
    acc = None if grids[0].accuracy is None else np.stack([g.accuracy for g in grids])
    extra = {k: np.stack([getattr(g, k) for g in grids]) for k in GRAD_KEYS} if grad else {}
    config = {**(config or {}), "version": __version__}
    return Surface(np.stack([g.loss for g in grids]), plane.x, plane.y,
                   np.array([d.length for d in datas], dtype=np.int64), plane.xlabel, plane.ylabel,
                   config, acc, extra)
