"""The fused engine: the whole time loop of a cell in one compiled kernel, loss and gradients.

The reference path (``landscape.cells``) runs each elementwise operation of each step as its own
pass over a (G, N) tensor. The fused kernel (``_fused.c``) instead runs every (model, sample)
lane's whole sequence with its state in registers, 16 lanes at a time in SIMD, so a step costs its
arithmetic and nothing else; with gradients, each block of lanes stores its own steps (a few
kilobytes, in cache) and runs backpropagation through time over them, which gives the gradient
with respect to every parameter at about twice the cost of the loss, in memory that does not
grow with the grid.

Models of H > 1 units (``landscape.units``, as trained by ``landscape.train``) run on a second
kernel (``_fused_units.h``): a block of lanes is 16 samples of one model, so the lanes share the
weights and each step is a (gates*H, H) by (H, 16) product in loops vectorized over the lanes,
followed by the same equations and a hand-written backpropagation through time.

The kernel is C, built on first use with the machine's C compiler by ``landscape.engine.build`` into
``$LANDSCAPE_CACHE`` (default ``~/.cache/landscape``), keyed by its source, flags and CPU, and
loaded with ctypes, which releases the GIL: the lanes are split over ``torch.get_num_threads()``
threads by model, so each model's gradient is summed by one thread, in sample order, and results
do not depend on the thread count or the chunking. Without a compiler the reference path is used.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .._errors import InputError
from ..cells import Cell
from ..tasks import TaskData
from ..units import check_size, check_units, readout_loss
from . import gpu, gpu_units
from .build import Args, available, call, library, unavailable_reason
from .door import KernelLoss, check_arguments, feature_rows, one_logit, two_logit_grad
from .table import GATES, MAX_UNITS, OBJECTIVES, kernel_cell

__all__ = ["available", "run_fused", "kernel_losses", "fused_losses", "unavailable_reason"]

_lock = threading.Lock()


_pool: dict = {}


def _executor(n: int) -> ThreadPoolExecutor:
    """The threads that run the kernel's parts: one pool of ``n``, made anew when ``n`` changes."""
    with _lock:
        if _pool.get("n") != n:
            if "ex" in _pool:
                _pool["ex"].shutdown(wait=False)
            _pool["ex"], _pool["n"] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="landscape"), n
        return _pool["ex"]


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def run_fused(
    cell: Cell,
    theta: torch.Tensor,
    x: torch.Tensor | None,
    *,
    y: torch.Tensor | None = None,
    rows: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
    steps: int,
    objective: str = "bce",
    grad: bool = False,
    hidden: int = 1,
    inputs: int = 1,
    layers: int = 1,
    stops: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Final states of G models, and with ``grad`` each model's gradient of its mean loss.

    theta: (G, P) on the CPU, float32 or float64. x: (N, T) inputs shared by every model, or
    (G, N, T) each model's own, or None (a cell without input: N = 1). y: (N,) or (G, N) labels,
    needed with ``grad`` for "bce". rows: (G, N) integers, or None: model g's sample n is row
    rows[g, n] of x (R, T) and of y (R,), so that mini-batches are read in place, not copied.
    lengths: (G,) each model's own length <= T (its state is frozen after it), or None for
    ``steps`` steps each. hidden, inputs, layers: the size of every model (``landscape.units``);
    beyond one unit, one input and one layer a row of theta is the flat vector of
    ``landscape.units`` (torch.nn's ``state_dict`` order), the loss "bce", and x ends in I features
    per step: (N, T, I), (G, N, T, I) or rows of (R, T, I).
    Returns hT (G, N) for one-unit models, else the top layer's (G, N, H), and grad (G, P) or
    None. ``stops``: rising steps 1 .. ``steps`` (no ``grad``, no ``lengths``): the states after
    each of them from one pass, (G, K, N) or (G, K, N, H), in place of hT. (Most of its length is
    checking and laying out the arguments for the kernel's door, ``landscape.engine.build.Args``.)
    """
    lib = library(cell.gate)
    if lib is None:
        raise InputError(f"backend 'fused' needs a C compiler ({unavailable_reason(cell.gate)})")
    dtype = theta.dtype
    if dtype not in (torch.float32, torch.float64) or theta.device.type != "cpu":
        raise InputError(f"backend 'fused' runs float32 or float64 on the CPU, not {dtype} on {theta.device}")
    hidden = check_units(hidden, MAX_UNITS)
    inputs, layers = check_size(inputs, layers, MAX_UNITS)
    sized = hidden > 1 or inputs > 1 or layers > 1  # the layout of landscape.units
    if sized and objective != "bce":
        raise InputError(f"models of {hidden} units are trained on classification, not {objective!r}")
    x = feature_rows(x, inputs)
    check_arguments(cell, theta, x, y, rows, lengths, steps, hidden, inputs, layers)
    theta = one_logit(cell, theta.detach(), hidden).contiguous()
    G, P = theta.shape
    x, rows, (N, T, xs_g, xs_n) = _input_layout(x, rows, dtype, steps)
    T //= inputs
    if lengths is not None:
        lengths = lengths.detach().to(torch.long).contiguous()
        T_run = int(lengths.max()) if G else 0
    else:
        T_run = steps
    if T_run > T or steps > T:
        raise InputError(f"a length of {max(T_run, steps)} exceeds the inputs' {T} steps")
    ys_g = 0
    if y is not None:
        y = y.detach().to(dtype).contiguous()
        ys_g = N if y.ndim == 2 and rows is None else 0
    elif grad and objective == "bce":
        raise InputError("gradients of the classification loss need labels y")
    hT = torch.empty(G, N, *((hidden,) if sized else ()), dtype=dtype)
    if stops is not None:
        if (
            grad
            or lengths is not None
            or not stops
            or list(stops) != sorted(set(stops))
            or stops[0] < 1
            or stops[-1] != steps
        ):
            raise InputError(
                f"stops {list(stops)} must rise from 1 to the {steps} steps, without gradients or lengths"
            )
        stops = torch.tensor(stops, dtype=torch.long)
        hS = torch.empty(G, len(stops), *hT.shape[1:], dtype=dtype)
    g_out = torch.zeros(G, P, dtype=dtype) if grad else None
    objective = "keras" if objective == "bce" and cell.clip else objective
    fields = dict(
        dtype=0 if dtype == torch.float32 else 1,
        cell=kernel_cell(cell).code,
        gate=GATES[cell.gate],
        objective=OBJECTIVES[objective],
        I=inputs,
        H=hidden,
        L=layers,
        N=N,
        T=T_run,
        P=P,
        R=x.shape[0] if rows is not None else 0,
        xs_g=xs_g,
        xs_n=xs_n,
        ys_g=ys_g,
        x0=float(cell.x0),
        theta=_ptr(theta),
        x=_ptr(x),
        y=_ptr(y),
        rows=_ptr(rows),
        len=_ptr(lengths),
        hT=_ptr(hT),
        grad=_ptr(g_out),
        K=0 if stops is None else len(stops),
        stops=_ptr(stops),
        hS=None if stops is None else _ptr(hS),
    )

    def part(g0: int, g1: int) -> None:
        call(Args(g0=g0, g1=g1, **fields), cell.gate)

    n_threads = max(1, min(torch.get_num_threads(), G))
    if n_threads == 1 or G * N * T_run * hidden * hidden < 20_000:
        part(0, G)
    else:  # split models by work, so that threads finish together
        cost = np.cumsum(lengths.numpy() if lengths is not None else np.full(G, T_run))
        cuts = np.searchsorted(cost, cost[-1] * np.arange(1, n_threads) / n_threads)
        bounds = [0, *sorted(set(int(c) for c in cuts if 0 < c < G)), G]
        list(_executor(n_threads).map(part, bounds[:-1], bounds[1:]))
    if stops is not None:
        return hS, None
    return hT, (None if g_out is None else two_logit_grad(cell, g_out, hidden))


def _input_layout(x: torch.Tensor | None, rows: torch.Tensor | None, dtype: torch.dtype, steps: int):
    """Contiguous inputs and where lane (g, n) finds its row: (N samples, T steps per row,
    stride between models (0: shared), stride between samples)."""
    if rows is not None:  # rows of a table (R, T)
        rows, x = rows.detach().to(torch.long).contiguous(), x.detach().to(dtype).contiguous()
        return x, rows, (rows.shape[1], x.shape[-1], 0, x.shape[-1])
    if x is not None:  # (N, T) shared, or (G, N, T) each model's own
        x = x.detach().to(dtype).contiguous()
        N, T = x.shape[-2], x.shape[-1]
        return x, None, (N, T, N * T if x.ndim == 3 else 0, T)
    return None, None, (1, steps, 0, 0)  # no input


def kernel_losses(
    cell: Cell,
    theta: torch.Tensor,
    x: torch.Tensor | None,
    y: torch.Tensor | None,
    *,
    steps: int,
    rows: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
    objective: str = "bce",
    hidden: int = 1,
    inputs: int = 1,
    layers: int = 1,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each model's mean loss and accuracy on the kernel, differentiable in theta through
    autograd (the kernel's backpropagation through time): theta (G, P) -> (G,), (G,) or None.
    Arguments as for ``run_fused``; the labels y are read through ``rows`` when given. On a CUDA
    device (or under the test-only switch, ``landscape.engine.gpu.ON_CPU``) the GPU engine runs it
    (``gpu`` for one unit, ``gpu_units`` beyond).
    """
    if gpu.serves(theta.device) and max(hidden, inputs, layers) > 1:
        return gpu_units.unit_losses(
            cell,
            theta,
            x,
            y,
            steps=steps,
            rows=rows,
            lengths=lengths,
            objective=objective,
            hidden=hidden,
            inputs=inputs,
            layers=layers,
        )
    if gpu.serves(theta.device):
        return gpu.triton_losses(
            cell, theta, x, y, steps=steps, rows=rows, lengths=lengths, objective=objective
        )
    accuracy = []

    def run(th: torch.Tensor, grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        hT, g = run_fused(
            cell,
            th,
            x,
            y=y,
            rows=rows,
            lengths=lengths,
            steps=steps,
            objective=objective,
            grad=grad,
            hidden=hidden,
            inputs=inputs,
            layers=layers,
        )
        loss, acc = readout_loss(cell, th, hT, y if rows is None or y is None else y[rows], objective)
        accuracy.append(acc)
        return loss, g

    loss = KernelLoss.apply(theta, run)
    return loss, accuracy[0]


def fused_losses(cell: Cell, data: TaskData, theta: torch.Tensor, at: list[int] | None = None):
    """Loss and accuracy of G models on the fused path, differentiable in theta:
    theta (G, P) -> (G,), (G,) or None; a (P,) vector gives one model's. With ``at`` (rising
    steps, the last ``data.length``), a (loss, accuracy) per step from one pass, without gradients."""
    th = theta[None] if theta.ndim == 1 else theta
    if at is not None and gpu.serves(th.device):
        if cell.sized:
            return gpu_units.unit_prefix_losses(cell, data, th, at)
        return gpu.triton_prefix_losses(cell, data, th, at)
    if at is not None:
        hs, _ = run_fused(
            cell,
            th,
            data.x,
            y=data.y,
            steps=data.length,
            objective=data.objective,
            hidden=cell.hidden,
            inputs=cell.inputs,
            layers=cell.layers,
            stops=at,
        )  # (G, K, N) or (G, K, N, H)
        return [readout_loss(cell, th, hs[:, k].contiguous(), data.y, data.objective) for k in range(len(at))]
    out = kernel_losses(
        cell,
        th,
        data.x,
        data.y,
        steps=data.length,
        objective=data.objective,
        hidden=cell.hidden,
        inputs=cell.inputs,
        layers=cell.layers,
    )
    return out if theta.ndim == 2 else tuple(None if v is None else v[0] for v in out)
