"""Whole-grid evaluation: the loss at every point of a plane, in vectorized chunks.

A chunk of g grid points runs as one batch of g models on all N samples at once: the state is a
(g, N) tensor and each parameter a (g, 1) column. Chunks are sized so that the step's
temporaries stay under a memory budget. No model is built or mutated and no Python loop runs
over grid points; the only Python loops are over chunks and time steps.

Each batch runs on one of two engines: the reference path (``landscape.cells.run`` and autograd,
the readable ground truth) or the fused kernel (``landscape.fused``). ``resolve_backend`` picks
one from the work to do, once per sweep, and ``_losses`` is the one place that dispatches.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ._errors import InputError, check_device, check_dtype, check_int, check_real, check_type
from ._kernel import available, probe, unavailable_reason
from ._kernel_cells import MAX_UNITS
from .cells import KERNEL_HEADS, Cell, as_cell, readout, run
from .fused import fused_losses, run_fused
from .planes import Plane
from .tasks import TaskData
from .units import final_states, model_losses, readout_loss

__all__ = ["BACKENDS", "resolve_backend", "losses", "loss_and_grad", "evaluate", "chunk_size", "grid_work",
           "sweep_backend", "GridResult", "DEFAULT_MEM"]

BACKENDS = ("auto", "reference", "fused")
# Below this many cell-steps (model x sample x step) the reference path finishes in about the time
# a first build of the kernel takes (about a second), so 'auto' keeps it. The choice depends on
# the work only, never on whether the kernel is already built, so a command always takes the same
# path and gives the same arrays.
COMPILE_WORTH = 2e8

DEFAULT_MEM = 1 << 30  # bytes
# Past about this many (grid point, sample) pairs per chunk, a step's tensors fall out of the CPU
# caches and a pass gets slower, not faster (benchmarks/bench_grid.py --chunks measures it).
CHUNK_ELEMENTS = 1 << 18
GRAD_BLOCK = 64  # grid points per backward pass on the reference path, whatever the chunk
FUSED_CHUNK_ELEMENTS = 1 << 21  # lanes per call of the fused kernel: enough to keep every thread busy


def resolve_backend(backend: str, *, device: str | torch.device = "cpu", work: float = float("inf"),
                    why_not: str = "") -> str:
    """'auto' -> 'fused' where the kernel runs and the work (cell-steps) repays building it, else
    'reference'; 'fused' where it cannot run raises InputError naming the reason. ``why_not``, if
    not empty, says why the kernel cannot run this model or data (``kernel_refuses``)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    on_cpu = torch.device(device).type == "cpu"
    if backend == "reference" or (backend == "auto" and why_not):
        return "reference"
    if why_not:
        raise InputError(f"backend 'fused' cannot run {why_not}; valid here: auto, reference")
    if backend == "fused":
        if not on_cpu:
            raise InputError(f"backend 'fused' runs on the CPU, not on {device}; valid here: auto, reference")
        if not available():
            raise InputError(f"backend 'fused' needs a C compiler ({unavailable_reason()}); "
                             "valid here: auto, reference")
        return backend
    if on_cpu and work >= COMPILE_WORTH and available():
        found = probe()
        if found["vectorized"]:
            return "fused"
        _say_once(f"the fused kernel is not used ({found['why']}); 'auto' runs the reference path")
    return "reference"


def kernel_refuses(cell: Cell, datas: list[TaskData]) -> str:
    """Why the fused kernel cannot run this model on these data, or "" where it can: it reduces
    one logit (or Keras's two outputs) with binary cross-entropy, over whole sequences."""
    if cell.head not in KERNEL_HEADS + ("",):
        return f"the {cell.head} readout ({cell.objective} loss): it reduces one logit"
    if any(d.steps is not None for d in datas):
        return "sequences of their own lengths within one batch"
    if any(d.per_step for d in datas):
        return "targets at every step: it reads out the last step's state"
    if max(cell.hidden, cell.inputs, cell.layers) > MAX_UNITS:
        return f"a model of {cell.size_text()}: it runs up to {MAX_UNITS} units, inputs and layers"
    return ""


_said: set = set()


def _say_once(note: str) -> None:
    """One line on stderr, once per process and note."""
    if note not in _said:
        _said.add(note)
        print(f"landscape: {note}", file=sys.stderr)


def losses(cell: Cell, data: TaskData, theta: torch.Tensor, *,
           backend: str = "reference") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Loss (and accuracy, where defined) of G models: theta (G, P) -> (G,), (G,) or None.

    On the reference path (the default) it is pure and differentiable: the gradient of
    ``losses(...)[0].sum()`` with respect to theta is every model's own gradient, since each row's
    loss depends only on that row. ``backend="fused"`` (or "auto") runs the fused kernel instead,
    equally differentiable: its backward is the kernel's own backpropagation through time.
    """
    cell, theta = _checked(cell, data, theta)
    backend = resolve_backend(backend, device=theta.device, work=_work(data, theta) * unit_work(cell),
                              why_not=kernel_refuses(cell, [data]))
    return _losses(cell, data, theta, backend)[:2]


def loss_and_grad(cell: Cell, data: TaskData, theta: torch.Tensor, *, backend: str = "auto") -> tuple:
    """Loss, accuracy and the gradient of each model's loss: theta (G, P) -> (G,), (G,)|None, (G, P).

    One autograd path for both engines: a backward pass through the reference path's batched
    forward (in blocks of GRAD_BLOCK models), or through the kernel, whose backward is its own
    backpropagation through time, block by block, without keeping every step of the grid alive
    (``landscape.fused``).
    """
    cell, theta = _checked(cell, data, theta)
    backend = resolve_backend(backend, device=theta.device, work=3 * _work(data, theta) * unit_work(cell),
                              why_not=kernel_refuses(cell, [data]))
    return _losses(cell, data, theta, backend, grad=True)


def _losses(cell: Cell, data: TaskData, theta: torch.Tensor, backend: str, grad: bool = False) -> tuple:
    """``losses`` and ``loss_and_grad`` past their boundary (checked arguments, a resolved
    backend): loss, accuracy or None, and with ``grad`` each model's gradient, else None."""
    forward = fused_losses if backend == "fused" else (lambda c, d, th: model_losses(c, th, d))
    if not grad:  # pure and differentiable, on either engine
        return (*forward(cell, data, theta), None)
    # Autograd's reductions round by batch shape, so the reference path takes models in blocks of
    # fixed rows: a model's gradient is the same bits whatever else is asked with it. The kernel
    # sums each model's gradient on its own, so it takes them all at once.
    blocks = theta.split(GRAD_BLOCK) if theta.ndim == 2 and backend != "fused" else [theta]
    parts = []
    for th in blocks:
        with torch.enable_grad():
            th = th.detach().requires_grad_(True)
            loss, acc = forward(cell, data, th)
            (g,) = torch.autograd.grad(loss.sum(), th)
        parts.append((loss.detach(), acc, g))
    if len(parts) == 1:
        return parts[0]
    acc = None if parts[0][1] is None else torch.cat([q[1] for q in parts])
    return torch.cat([q[0] for q in parts]), acc, torch.cat([q[2] for q in parts])


def prefix_losses(cell: Cell, data: TaskData, theta: torch.Tensor, stops: list[int],
                  backend: str) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Loss and accuracy of G models theta (G, P) at each length of ``stops`` (rising, the last
    ``data.length``) from one pass over the sequences: at each, the numbers ``_losses`` gives on
    ``data`` cut to that length (the same operations on the same states; the reference path's
    input terms of I > 1 features, one matrix product over all the steps read, may round in
    another last bit), for the work of the longest alone. For data scored once per sequence, of
    one length each (``prefix_sweep``)."""
    y = data.y
    if backend == "fused":
        th = theta[None] if theta.ndim == 1 else theta
        hs, _ = run_fused(cell, th, data.x, y=y, steps=data.length, objective=data.objective,
                          hidden=cell.hidden, inputs=cell.inputs, layers=cell.layers,
                          stops=stops)  # (G, K, N) or (G, K, N, H)
        return [readout_loss(cell, th, hs[:, k].contiguous(), y, data.objective) for k in range(len(stops))]
    if not cell.batched:  # the one-unit grid step, as landscape.cells.reference_losses
        p = cell.split(theta)
        return [readout(cell, p, h, y, data.objective) for h in run(cell, p, data.x, data.length, at=stops)]
    G = theta.shape[0]  # the batched forward pass, as landscape.units.model_losses
    x = data.x.to(theta.dtype).expand(G, *data.x.shape)
    lengths = torch.full((G,), data.length, dtype=torch.long)
    h = final_states(cell, theta, x, lengths, cell.hidden, inputs=cell.inputs, layers=cell.layers, at=stops)
    y = y.to(theta.dtype)
    return [readout_loss(cell, theta, h[..., k].contiguous(), y, units_first=True, tol=data.tol)
            for k in range(len(stops))]


def prefix_sweep(planes: list[Plane], datas: list[TaskData]) -> bool:
    """Whether a sweep's lengths can be read from one pass: one plane for every length, and each
    length's data the first steps of the longest's sequences (a file cut to each length, an
    input-free map), scored once per sequence, every sequence of the sweep's length."""
    if len(datas) < 2 or len({d.length for d in datas}) < len(datas):
        return False
    top, p0 = max(datas, key=lambda d: d.length), planes[0]
    for p in planes[1:]:
        if not (p.kind == p0.kind and np.array_equal(p.x, p0.x) and np.array_equal(p.y, p0.y)
                and all(torch.equal(getattr(p, k), getattr(p0, k)) for k in ("origin", "d1", "d2"))):
            return False
    for d in datas:
        if d.steps is not None or d.per_step or d.objective != top.objective or d.tol != top.tol:
            return False
        if (d.x is None) != (top.x is None) or (d.y is None) != (top.y is None):
            return False
        if d.x is not None and (d.x.shape[0] != top.x.shape[0] or d.x.shape[2:] != top.x.shape[2:]
                                or not torch.equal(d.x, top.x[:, : d.length])):
            return False
        if d.y is not None and not torch.equal(d.y, top.y):
            return False
    return True


def _checked(cell: Cell | str, data: TaskData, theta: torch.Tensor) -> tuple[Cell, torch.Tensor]:
    """The public functions' boundary: a cell, a TaskData, and (P,) or (G, P) real parameters."""
    cell = as_cell(cell)
    check_type(data, TaskData, "data")
    check_features(cell, data)
    P = cell.n_params
    if (not isinstance(theta, torch.Tensor) or theta.ndim not in (1, 2) or theta.shape[-1] != P
            or not theta.is_floating_point()):
        shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise InputError(f"theta must be a real tensor of shape (G, {P}) or ({P},) for a {cell.name} "
                         f"model of {cell.size_text()}, not {shape}")
    return cell, check_real(theta, "theta")


def check_features(cell: Cell, data: TaskData) -> None:
    """InputError unless the data fit the model: I features per step (none for a cell without
    input), and targets of the loss its readout is scored by (two classes, K classes, real)."""
    if cell.takes_input and data.x is not None and data.features != cell.inputs:
        raise InputError(f"the data have {data.features} feature(s) per step; the {cell.name} model "
                         f"({cell.size_text()}) takes {cell.inputs} input(s) per step")
    if cell.takes_input and data.objective != cell.objective:
        want = {"bce": "the logit or softmax2 head", "ce": "the softmax head", "mse": "the linear head"}
        raise InputError(f"the data's targets are for the {data.objective} loss, which "
                         f"{want[data.objective]} is scored by; the model's {cell.head} head is scored by "
                         f"{cell.objective}")
    if data.objective == "ce" and int(data.y.max()) >= cell.classes:
        raise InputError(f"the data hold class {int(data.y.max())}; the softmax head has {cell.classes} "
                         f"classes (0 to {cell.classes - 1})")


def _work(data: TaskData, theta: torch.Tensor) -> float:
    """Cell-steps of one pass: models x samples x steps."""
    return (float(theta.shape[0] if theta.ndim == 2 else 1) * (1 if data.x is None else data.x.shape[0])
            * data.length)


def unit_work(cell: Cell) -> int:
    """A model's cell-step in one-unit cell-steps, for the choice of engine: its units times its
    layers (a model of H units does about H times the work per step of H one-unit models, once
    its products are counted)."""
    return cell.hidden * cell.layers


def grid_work(planes: list[Plane], datas: list[TaskData], grad: bool) -> float:
    """Cell-steps of evaluating each plane at its length, a backward pass counted twice."""
    steps = sum(p.shape[0] * p.shape[1] * (1 if d.x is None else d.x.shape[0]) * d.length
                for p, d in zip(planes, datas, strict=True))
    return float(steps) * (3 if grad else 1)


def sweep_backend(cell: Cell, backend: str, device: str, planes: list[Plane], datas: list[TaskData],
                  grad: bool) -> str:
    """The one backend of a whole sweep, decided by its whole work (``grid_work``), so that every
    length and every tile of it takes the same path and gives the same arrays."""
    return resolve_backend(backend, device=device, work=grid_work(planes, datas, grad) * unit_work(cell),
                           why_not=kernel_refuses(cell, datas))


def chunk_size(cell: Cell, n_samples: int, dtype: torch.dtype, mem: int, *, length: int = 0,
               fused: bool = False, cell_steps: int = 1, per_step: bool = False, kept: int = 0) -> int:
    """Grid points per chunk: within ``mem`` bytes of step temporaries, and cache-sized.

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
        return max(1, min(int(mem) // per_point, FUSED_CHUNK_ELEMENTS // (N * H)))
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


def evaluate(cell: Cell, data: TaskData, plane: Plane, *, dtype: torch.dtype = torch.float32,
             device: str = "cpu", mem: int = DEFAULT_MEM, grad: bool = False, backend: str = "auto",
             bar: tqdm | None = None) -> GridResult:
    """Loss and accuracy (and with ``grad``, the gradient maps) over the whole plane, one length.

    ``backend``: "reference" (the readable path), "fused" (the compiled kernel) or "auto" (fused
    where the work repays building the kernel). ``bar``, if given, is advanced by
    (grid points x steps) as chunks finish.
    """
    cell, opts = check_grid(cell, data, plane, dtype=dtype, device=device, mem=mem)
    backend = sweep_backend(cell, backend, opts["device"], [plane], [data], grad)
    return _evaluate(cell, data.to(opts["dtype"], opts["device"]), plane, **opts, grad=grad, backend=backend,
                     bar=bar)


def check_grid(cell: Cell | str, data: TaskData, plane: Plane, *, dtype: torch.dtype, device: str,
               mem: int) -> tuple[Cell, dict]:
    """The boundary of a grid evaluation: the cell, and the checked dtype, device and mem."""
    cell = as_cell(cell)
    check_type(data, TaskData, "data")
    check_type(plane, Plane, "plane")
    check_features(cell, data)
    if plane.d1.numel() != cell.n_params:
        raise InputError(f"the plane's models have {plane.d1.numel()} parameters; a {cell.name} model "
                         f"of {cell.size_text()} has {cell.n_params}")
    return cell, dict(dtype=check_dtype(dtype), device=check_device(device), mem=check_int(mem, "mem", lo=1))


def _evaluate(cell: Cell, data: TaskData, plane: Plane, *, dtype: torch.dtype, device: str, mem: int,
              grad: bool, backend: str, bar: tqdm | None = None) -> GridResult:
    """``evaluate`` past its checks (``data`` already in ``dtype`` on ``device``, ``backend``
    resolved): the plane in chunks of grid points, each one batch."""
    ny, nx = plane.shape
    total = ny * nx
    n = 1 if data.x is None else data.x.shape[0]
    g = chunk_size(cell, n, dtype, mem, length=data.length if grad else 0, fused=backend == "fused",
                   cell_steps=data.length, per_step=data.per_step)
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


def _evaluate_prefixes(cell: Cell, data: TaskData, plane: Plane, lengths: list[int], *, dtype: torch.dtype,
                       device: str, mem: int, backend: str, bar: tqdm | None = None) -> list[GridResult]:
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
    return [GridResult(loss[at[L]].reshape(ny, nx), None if acc is None else acc[at[L]].reshape(ny, nx))
            for L in lengths]
