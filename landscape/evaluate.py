"""Whole-grid evaluation: the loss at every point of a plane, in vectorized chunks.

A chunk of g grid points runs as one batch of g models on all N samples at once: the state is a
(g, N) tensor and each parameter a (g, 1) column. Chunks are sized so that the step's
temporaries stay under a memory budget. No model is built or mutated and no Python loop runs
over grid points; the only Python loops are over chunks and time steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .cells import Cell, run
from .params import split_params
from .planes import Plane
from .tasks import TaskData, classification_loss, pascanu_loss

__all__ = ["losses", "evaluate", "chunk_size", "GridResult", "DEFAULT_MEM"]

DEFAULT_MEM = 1 << 30  # bytes
# Past about this many (grid point, sample) pairs per chunk, a step's tensors fall out of the CPU
# caches and a pass gets slower, not faster (benchmarks/bench_grid.py --chunks measures it).
CHUNK_ELEMENTS = 1 << 18


def losses(cell: Cell, data: TaskData, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Loss (and accuracy, where defined) of G models: theta (G, P) -> (G,), (G,) or None.

    Pure and differentiable: the gradient of ``losses(...)[0].sum()`` with respect to theta is
    every model's own gradient, since each row's loss depends only on that row.
    """
    p = split_params(cell, theta)  # name -> (G, 1)
    h = run(cell, p, data.x, data.length)  # (G, N), or (G, 1) without input
    if data.objective == "pascanu":
        return pascanu_loss(h), None
    logits = p["w_out"] * h + p["b_out"]  # (G, N)
    return classification_loss(logits, data.y)


def chunk_size(cell: Cell, n_samples: int, dtype: torch.dtype, mem: int) -> int:
    """Grid points per chunk: cache-sized, and within ``mem`` bytes of step temporaries."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    per_point = (cell.work + 2) * max(n_samples, 1) * itemsize + 8 * 3 * len(cell.param_names)
    return max(1, min(int(mem) // per_point, CHUNK_ELEMENTS // max(n_samples, 1)))


@dataclass
class GridResult:
    loss: np.ndarray  # (ny, nx)
    accuracy: np.ndarray | None  # (ny, nx) or None


def evaluate(cell: Cell, data: TaskData, plane: Plane, *, dtype: torch.dtype = torch.float32,
             device: str = "cpu", mem: int = DEFAULT_MEM, bar: tqdm | None = None) -> GridResult:
    """Loss and accuracy over the whole plane for one length.

    ``bar``, if given, is advanced by (grid points x steps) as chunks finish.
    """
    ny, nx = plane.shape
    total = ny * nx
    d = data.to(dtype, device)
    n = 1 if d.x is None else d.x.shape[0]
    g = chunk_size(cell, n, dtype, mem)
    loss = np.empty(total, dtype=np.dtype(str(dtype).removeprefix("torch.")))
    acc = np.empty_like(loss) if d.y is not None else None
    with torch.no_grad():
        for k0 in range(0, total, g):
            k1 = min(total, k0 + g)
            theta = plane.points(k0, k1).to(device=device, dtype=dtype)  # (g, P)
            l, a = losses(cell, d, theta)  # (g,), (g,)
            loss[k0:k1] = l.cpu().numpy()
            if acc is not None:
                acc[k0:k1] = a.cpu().numpy()
            if bar is not None:
                bar.update((k1 - k0) * data.length)
    return GridResult(loss.reshape(ny, nx), None if acc is None else acc.reshape(ny, nx))
