"""Whole-grid evaluation: the loss at every point of a plane, in vectorized chunks.

A chunk of g grid points runs as one batch of g models on all N samples at once: the state is a
(g, N) tensor and each parameter a (g, 1) column. Chunks are sized so that the step's
temporaries stay under a memory budget. No model is built or mutated and no Python loop runs
over grid points; the only Python loops are over chunks and time steps.

Each batch runs on one of two engines (``landscape.backends``), the same one for a whole sweep
(``sweep_backend``, decided by its whole work).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ._errors import InputError, check_device, check_dtype, check_int, check_type
from .backends import (
    GRAD_BLOCK,
    _losses,
    check_features,
    kernel_refuses,
    prefix_losses,
    resolve_backend,
    unit_work,
)
from .cells import Cell, as_cell
from .engine import gpu as engine_gpu
from .planes import Plane
from .tasks import TaskData

__all__ = [
    "evaluate",
    "chunk_size",
    "grid_work",
    "sweep_backend",
    "prefix_sweep",
    "GridResult",
    "DEFAULT_MEM",
]

DEFAULT_MEM = 1 << 30  # bytes
# Past about this many (grid point, sample) pairs per chunk, a step's tensors fall out of the CPU
# caches and a pass gets slower, not faster (benchmarks/bench_grid.py --chunks measures it).
CHUNK_ELEMENTS = 1 << 18
FUSED_CHUNK_ELEMENTS = 1 << 21  # lanes per call of the fused kernel: enough to keep every thread busy
GPU_CHUNK_ELEMENTS = 1 << 26  # lanes per call of the GPU engine: thousands of programs per launch


def prefix_sweep(planes: list[Plane], datas: list[TaskData]) -> bool:
    """Whether a sweep's lengths can be read from one pass: one plane for every length, and each
    length's data the first steps of the longest's sequences (a file cut to each length, an
    input-free map), scored once per sequence, every sequence of the sweep's length."""
    if len(datas) < 2 or len({d.length for d in datas}) < len(datas):
        return False
    top, p0 = max(datas, key=lambda d: d.length), planes[0]
    for p in planes[1:]:
        if not (
            p.kind == p0.kind
            and np.array_equal(p.x, p0.x)
            and np.array_equal(p.y, p0.y)
            and all(torch.equal(getattr(p, k), getattr(p0, k)) for k in ("origin", "d1", "d2"))
        ):
            return False
    for d in datas:
        if d.steps is not None or d.per_step or d.objective != top.objective or d.tol != top.tol:
            return False
        if (d.x is None) != (top.x is None) or (d.y is None) != (top.y is None):
            return False
        if d.x is not None and (
            d.x.shape[0] != top.x.shape[0]
            or d.x.shape[2:] != top.x.shape[2:]
            or not torch.equal(d.x, top.x[:, : d.length])
        ):
            return False
        if d.y is not None and not torch.equal(d.y, top.y):
            return False
    return True


def grid_work(planes: list[Plane], datas: list[TaskData], grad: bool) -> float:
    """Cell-steps of evaluating each plane at its length, a backward pass counted twice."""
    steps = sum(
        p.shape[0] * p.shape[1] * (1 if d.x is None else d.x.shape[0]) * d.length
        for p, d in zip(planes, datas, strict=True)
    )
    return float(steps) * (3 if grad else 1)


def sweep_backend(
    cell: Cell, backend: str, device: str, planes: list[Plane], datas: list[TaskData], grad: bool
) -> str:
    """The one backend of a whole sweep, decided by its whole work (``grid_work``), so that every
    length and every tile of it takes the same path and gives the same arrays."""
    return resolve_backend(
        backend,
        device=device,
        work=grid_work(planes, datas, grad) * unit_work(cell),
        why_not=kernel_refuses(cell, datas, device),
    )


def chunk_size(
    cell: Cell,
    n_samples: int,
    dtype: torch.dtype,
    mem: int,
    *,
    length: int = 0,
    fused: bool = False,
    cell_steps: int = 1,
    per_step: bool = False,
    kept: int = 0,
    gpu: bool = False,
) -> int:
    """Grid points per chunk: within ``mem`` bytes of step temporaries, and cache-sized (on the
    GPU engine, ``gpu``, large enough to fill the device: GPU_CHUNK_ELEMENTS lanes).

    With ``length`` > 0 (a backward pass follows), every step's temporaries stay alive, so the
    budget is shared by ``length`` steps. Models beyond one unit also make every step's input
    terms at once, for ``cell_steps`` steps (the sequence's length) without a backward pass. The
    fused kernel keeps its steps in per-thread buffers, so a chunk only holds its final states and
    gradients. Targets at every step (``per_step``) keep every step's top state, outputs and
    loss terms. ``kept``: states kept along the way (the lengths of a one-pass sweep).
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    H, P, N = cell.hidden, cell.n_params, max(n_samples, 1)
    if fused:
        per_point = (2 + kept) * N * H * itemsize + 4 * 8 * P
        lanes = GPU_CHUNK_ELEMENTS if gpu else FUSED_CHUNK_ELEMENTS
        return max(1, min(int(mem) // per_point, lanes // (N * H)))
    per_point = (cell.work + 2) * N * itemsize * max(length, 1) * H * cell.layers
    if length and cell.sized:  # batched products keep their inputs and outputs for the backward pass,
        per_point *= 2  # and it makes one gradient of each: measured by benchmarks/bench_memory.py
    if cell.sized:  # every step's input terms are made at once: gates x H x N x T, and the inputs' view
        steps = max(length, cell_steps)
        per_point += (cell.gates * H + cell.inputs) * N * steps * itemsize
    if per_step:
        per_point += (H + 3 * cell.n_out) * N * max(length, cell_steps) * itemsize
    per_point += 8 * 3 * P + kept * (H + 2) * N * itemsize
    cap = CHUNK_ELEMENTS // max(n_samples, 1) if length == 0 else int(mem)
    return max(1, min(int(mem) // per_point, cap))


@dataclass
class GridResult:
    loss: np.ndarray  # (ny, nx)
    accuracy: np.ndarray | None  # (ny, nx) or None
    grad_norm: np.ndarray | None = None  # (ny, nx): L2 norm of the gradient over all parameters
    grad_x: np.ndarray | None = None  # (ny, nx): derivative along the plane's x axis, grad . d1
    grad_y: np.ndarray | None = None  # (ny, nx): derivative along the plane's y axis, grad . d2


def evaluate(
    cell: Cell,
    data: TaskData,
    plane: Plane,
    *,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    mem: int = DEFAULT_MEM,
    grad: bool = False,
    backend: str = "auto",
    bar: tqdm | None = None,
) -> GridResult:
    """Loss and accuracy (and with ``grad``, the gradient maps) over the whole plane, one length.

    ``backend``: "reference" (the readable path), "fused" (the compiled kernel) or "auto" (fused
    where the work repays building the kernel). ``bar``, if given, is advanced by
    (grid points x steps) as chunks finish.
    """
    cell, opts = check_grid(cell, data, plane, dtype=dtype, device=device, mem=mem)
    backend = sweep_backend(cell, backend, opts["device"], [plane], [data], grad)
    return _evaluate(
        cell, data.to(opts["dtype"], opts["device"]), plane, **opts, grad=grad, backend=backend, bar=bar
    )


def check_grid(
    cell: Cell | str, data: TaskData, plane: Plane, *, dtype: torch.dtype, device: str, mem: int
) -> tuple[Cell, dict]:
    """The boundary of a grid evaluation: the cell, and the checked dtype, device and mem."""
    cell = as_cell(cell)
    check_type(data, TaskData, "data")
    check_type(plane, Plane, "plane")
    check_features(cell, data)
    if plane.d1.numel() != cell.n_params:
        raise InputError(
            f"the plane's models have {plane.d1.numel()} parameters; a {cell.name} model "
            f"of {cell.size_text()} has {cell.n_params}"
        )
    return cell, dict(dtype=check_dtype(dtype), device=check_device(device), mem=check_int(mem, "mem", lo=1))


def _evaluate(
    cell: Cell,
    data: TaskData,
    plane: Plane,
    *,
    dtype: torch.dtype,
    device: str,
    mem: int,
    grad: bool,
    backend: str,
    bar: tqdm | None = None,
) -> GridResult:
    """``evaluate`` past its checks (``data`` already in ``dtype`` on ``device``, ``backend``
    resolved): the plane in chunks of grid points, each one batch."""
    ny, nx = plane.shape
    total = ny * nx
    n = 1 if data.x is None else data.x.shape[0]
    g = chunk_size(
        cell,
        n,
        dtype,
        mem,
        length=data.length if grad else 0,
        fused=backend == "fused",
        cell_steps=data.length,
        per_step=data.per_step,
        gpu=backend == "fused" and engine_gpu.serves(device),
    )
    if grad and backend != "fused" and g >= GRAD_BLOCK:
        g -= g % GRAD_BLOCK  # whole blocks, so that every block is the same rows whatever --mem is
    loss = np.empty(total, dtype=np.dtype(str(dtype).removeprefix("torch.")))
    acc = np.empty_like(loss) if data.y is not None else None
    gn, gx, gy = (np.empty_like(loss) for _ in range(3)) if grad else (None, None, None)
    d1, d2 = (v.to(device=device, dtype=dtype) for v in (plane.d1, plane.d2))
    with torch.no_grad():
        for k0 in range(0, total, g):
            k1 = min(total, k0 + g)
            theta = plane.points(k0, k1).to(device=device, dtype=dtype)  # (g, P)
            lo, a, dl = _losses(cell, data, theta, backend, grad)  # (g,), (g,) or None, (g, P) or None
            loss[k0:k1] = lo.cpu().numpy()
            if acc is not None:
                acc[k0:k1] = a.cpu().numpy()
            if grad:
                gn[k0:k1] = torch.linalg.vector_norm(dl, dim=1).cpu().numpy()
                gx[k0:k1] = (dl @ d1).cpu().numpy()
                gy[k0:k1] = (dl @ d2).cpu().numpy()
            if bar is not None:
                bar.update((k1 - k0) * data.length)
    shaped = [None if v is None else v.reshape(ny, nx) for v in (acc, gn, gx, gy)]
    return GridResult(loss.reshape(ny, nx), *shaped)


def _evaluate_prefixes(
    cell: Cell,
    data: TaskData,
    plane: Plane,
    lengths: list[int],
    *,
    dtype: torch.dtype,
    device: str,
    mem: int,
    backend: str,
    bar: tqdm | None = None,
) -> list[GridResult]:
    """``_evaluate`` (without gradients) at each of ``lengths`` from one pass over ``data``, the
    longest's sequences (``prefix_sweep``): a grid result per length, in the order given."""
    ny, nx = plane.shape
    total, stops = ny * nx, sorted(set(lengths))
    n = 1 if data.x is None else data.x.shape[0]
    g = chunk_size(cell, n, dtype, mem, fused=backend == "fused", cell_steps=data.length, kept=len(stops))
    loss = np.empty((len(stops), total), dtype=np.dtype(str(dtype).removeprefix("torch.")))
    acc = np.empty_like(loss) if data.y is not None else None
    with torch.no_grad():
        for k0 in range(0, total, g):
            k1 = min(total, k0 + g)
            theta = plane.points(k0, k1).to(device=device, dtype=dtype)  # (g, P)
            for k, (lo, a) in enumerate(prefix_losses(cell, data, theta, stops, backend)):
                loss[k, k0:k1] = lo.cpu().numpy()
                if acc is not None:
                    acc[k, k0:k1] = a.cpu().numpy()
            if bar is not None:
                bar.update((k1 - k0) * sum(lengths))
    at = {s: k for k, s in enumerate(stops)}
    return [
        GridResult(loss[at[L]].reshape(ny, nx), None if acc is None else acc[at[L]].reshape(ny, nx))
        for L in lengths
    ]
