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

__all__ = ["losses", "loss_and_grad", "evaluate", "chunk_size", "GridResult", "DEFAULT_MEM"]

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


def loss_and_grad(cell: Cell, data: TaskData, theta: torch.Tensor) -> tuple:
    """Loss, accuracy and the gradient of each model's loss: theta (G, P) -> (G,), (G,)|None, (G, P).

    One backward pass through the batched forward gives every model's own gradient.
    """
    with torch.enable_grad():
        theta = theta.detach().requires_grad_(True)
        loss, acc = losses(cell, data, theta)
        (grad,) = torch.autograd.grad(loss.sum(), theta)
    return loss.detach(), acc, grad


def chunk_size(cell: Cell, n_samples: int, dtype: torch.dtype, mem: int, *, length: int = 0) -> int:
    """Grid points per chunk: within ``mem`` bytes of step temporaries, and cache-sized.

    With ``length`` > 0 (a backward pass follows), every step's temporaries stay alive, so the
    budget is shared by ``length`` steps.
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    per_point = (cell.work + 2) * max(n_samples, 1) * itemsize * max(length, 1)
    per_point += 8 * 3 * len(cell.param_names)
    cap = CHUNK_ELEMENTS // max(n_samples, 1) if length == 0 else int(mem)
    return max(1, min(int(mem) // per_point, cap))


@dataclass
class GridResult:
    loss: np.ndarray  # (ny, nx)
    accuracy: np.ndarray | None  # (ny, nx) or None
    grad_norm: np.ndarray | None = None  # (ny, nx): L2 norm of the gradient over all parameters
    grad_x: np.ndarray | None = None  # (ny, nx): derivative along the plane's x axis, grad . d1
    grad_y: np.ndarray | None = None  # (ny, nx): derivative along the plane's y axis, grad . d2


def evaluate(cell: Cell, data: TaskData, plane: Plane, *, dtype: torch.dtype = torch.float32,
             device: str = "cpu", mem: int = DEFAULT_MEM, grad: bool = False,
             bar: tqdm | None = None) -> GridResult:
    """Loss and accuracy (and with ``grad``, the gradient maps) over the whole plane, one length.

    ``bar``, if given, is advanced by (grid points x steps) as chunks finish.
    """
    ny, nx = plane.shape
    total = ny * nx
    d = data.to(dtype, device)
    n = 1 if d.x is None else d.x.shape[0]
    g = chunk_size(cell, n, dtype, mem, length=data.length if grad else 0)
    loss = np.empty(total, dtype=np.dtype(str(dtype).removeprefix("torch.")))
    acc = np.empty_like(loss) if d.y is not None else None
    gn, gx, gy = (np.empty_like(loss) for _ in range(3)) if grad else (None, None, None)
    d1, d2 = (v.to(device=device, dtype=dtype) for v in (plane.d1, plane.d2))
    with torch.no_grad():
        for k0 in range(0, total, g):
            k1 = min(total, k0 + g)
            theta = plane.points(k0, k1).to(device=device, dtype=dtype)  # (g, P)
            if grad:
                lo, a, dl = loss_and_grad(cell, d, theta)  # (g,), (g,), (g, P)
                gn[k0:k1] = torch.linalg.vector_norm(dl, dim=1).cpu().numpy()
                gx[k0:k1] = (dl @ d1).cpu().numpy()
                gy[k0:k1] = (dl @ d2).cpu().numpy()
            else:
                lo, a = losses(cell, d, theta)  # (g,), (g,)
            loss[k0:k1] = lo.cpu().numpy()
            if acc is not None:
                acc[k0:k1] = a.cpu().numpy()
            if bar is not None:
                bar.update((k1 - k0) * data.length)
    shaped = [None if v is None else v.reshape(ny, nx) for v in (acc, gn, gx, gy)]
    return GridResult(loss.reshape(ny, nx), *shaped)
