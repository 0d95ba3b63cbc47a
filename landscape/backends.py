"""Which engine runs a batch of models, and their losses on it: the reference path
(``landscape.cells.run`` / ``landscape.units`` and autograd, the readable ground truth) or the
compiled engine (``landscape.engine``). ``resolve_backend`` picks one from the work to do, and
``_losses`` is the one place that dispatches; ``landscape.evaluate`` runs grids through it.
"""

from __future__ import annotations

import sys

import torch

from ._errors import InputError, check_real, check_type
from .cells import KERNEL_HEADS, Cell, as_cell
from .engine import MAX_UNITS, available, fused_losses, gpu, probe, unavailable_reason
from .tasks import TaskData
from .units import model_losses

__all__ = [
    "BACKENDS",
    "resolve_backend",
    "kernel_refuses",
    "losses",
    "loss_and_grad",
    "prefix_losses",
    "check_features",
    "unit_work",
    "GRAD_BLOCK",
]

BACKENDS = ("auto", "reference", "fused")
# Below this many cell-steps (model x sample x step) the reference path finishes in about the time
# a first build of the kernel takes (about a second), so 'auto' keeps it. The choice depends on
# the work only, never on whether the kernel is already built, so a command always takes the same
# path and gives the same arrays.
COMPILE_WORTH = 2e8
GRAD_BLOCK = 64  # models per backward pass on the reference path, whatever the chunk


def resolve_backend(
    backend: str, *, device: str | torch.device = "cpu", work: float = float("inf"), why_not: str = ""
) -> str:
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
    if gpu.serves(device):  # the GPU engine (Triton), on CUDA or under the tests' switch
        if gpu.available(device):
            return "fused"
        if backend == "fused":
            raise InputError(
                f"backend 'fused' cannot run on {device}: {gpu.unavailable_reason(device)}; "
                "valid here: auto, reference"
            )
        return "reference"
    if backend == "fused":
        if not on_cpu:
            raise InputError(f"backend 'fused' runs on the CPU, not on {device}; valid here: auto, reference")
        if not available():
            raise InputError(
                f"backend 'fused' needs a C compiler ({unavailable_reason()}); valid here: auto, reference"
            )
        return backend
    if on_cpu and work >= COMPILE_WORTH and available():
        found = probe()
        if found["vectorized"]:
            return "fused"
        _say_once(f"the fused kernel is not used ({found['why']}); 'auto' runs the reference path")
    return "reference"


def kernel_refuses(cell: Cell, datas: list[TaskData], device: str | torch.device = "cpu") -> str:
    """Why the fused kernel cannot run this model on these data, or "" where it can: it reduces
    one logit (or Keras's two outputs) with binary cross-entropy, over whole sequences, of models
    up to MAX_UNITS units, inputs and layers; on a CUDA ``device`` the GPU engine runs the same."""
    if cell.head not in KERNEL_HEADS + ("",):
        return f"the {cell.head} readout ({cell.objective} loss): it reduces one logit"
    if any(d.steps is not None for d in datas):
        return "sequences of their own lengths within one batch"
    if any(d.per_step for d in datas):
        return "targets at every step: it reads out the last step's state"
    if max(cell.hidden, cell.inputs, cell.layers) > MAX_UNITS:
        return f"a model of {cell.size_text()}: it runs up to {MAX_UNITS} units, inputs and layers"
    return gpu.refuses(cell) if gpu.serves(device) else ""


_said: set = set()


def _say_once(note: str) -> None:
    """One line on stderr, once per process and note."""
    if note not in _said:
        _said.add(note)
        print(f"landscape: {note}", file=sys.stderr)


def losses(
    cell: Cell, data: TaskData, theta: torch.Tensor, *, backend: str = "reference"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Loss (and accuracy, where defined) of G models: theta (G, P) -> (G,), (G,) or None.

    On the reference path (the default) it is pure and differentiable: the gradient of
    ``losses(...)[0].sum()`` with respect to theta is every model's own gradient, since each row's
    loss depends only on that row. ``backend="fused"`` (or "auto") runs the fused kernel instead,
    equally differentiable: its backward is the kernel's own backpropagation through time.
    """
    cell, theta = _checked(cell, data, theta)
    backend = resolve_backend(
        backend,
        device=theta.device,
        work=_work(data, theta) * unit_work(cell),
        why_not=kernel_refuses(cell, [data], theta.device),
    )
    return _losses(cell, data, theta, backend)[:2]


def loss_and_grad(cell: Cell, data: TaskData, theta: torch.Tensor, *, backend: str = "auto") -> tuple:
    """Loss, accuracy and the gradient of each model's loss: theta (G, P) -> (G,), (G,)|None, (G, P).

    One autograd path for both engines: a backward pass through the reference path's batched
    forward (in blocks of GRAD_BLOCK models), or through the kernel, whose backward is its own
    backpropagation through time, block by block, without keeping every step of the grid alive
    (``landscape.engine.fused``).
    """
    cell, theta = _checked(cell, data, theta)
    backend = resolve_backend(
        backend,
        device=theta.device,
        work=3 * _work(data, theta) * unit_work(cell),
        why_not=kernel_refuses(cell, [data], theta.device),
    )
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


def prefix_losses(
    cell: Cell, data: TaskData, theta: torch.Tensor, stops: list[int], backend: str
) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Loss and accuracy of G models theta (G, P) at each length of ``stops`` (rising, the last
    ``data.length``) from one pass over the sequences: at each, the numbers ``_losses`` gives on
    ``data`` cut to that length (the same operations on the same states; the reference path's
    input terms of I > 1 features, one matrix product over all the steps read, may round in
    another last bit), for the work of the longest alone. For data scored once per sequence, of
    one length each (``prefix_sweep``)."""
    if backend == "fused":
        return fused_losses(cell, data, theta, at=stops)
    return model_losses(cell, theta, data, at=stops)


def _checked(cell: Cell | str, data: TaskData, theta: torch.Tensor) -> tuple[Cell, torch.Tensor]:
    """The public functions' boundary: a cell, a TaskData, and (P,) or (G, P) real parameters."""
    cell = as_cell(cell)
    check_type(data, TaskData, "data")
    check_features(cell, data)
    P = cell.n_params
    if (
        not isinstance(theta, torch.Tensor)
        or theta.ndim not in (1, 2)
        or theta.shape[-1] != P
        or not theta.is_floating_point()
    ):
        shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise InputError(
            f"theta must be a real tensor of shape (G, {P}) or ({P},) for a {cell.name} "
            f"model of {cell.size_text()}, not {shape}"
        )
    return cell, check_real(theta, "theta")


def check_features(cell: Cell, data: TaskData) -> None:
    """InputError unless the data fit the model: I features per step (none for a cell without
    input), and targets of the loss its readout is scored by (two classes, K classes, real)."""
    if cell.takes_input and data.x is not None and data.features != cell.inputs:
        raise InputError(
            f"the data have {data.features} feature(s) per step; the {cell.name} model "
            f"({cell.size_text()}) takes {cell.inputs} input(s) per step"
        )
    if cell.takes_input and data.objective != cell.objective:
        want = {"bce": "the logit or softmax2 head", "ce": "the softmax head", "mse": "the linear head"}
        raise InputError(
            f"the data's targets are for the {data.objective} loss, which "
            f"{want[data.objective]} is scored by; the model's {cell.head} head is scored by "
            f"{cell.objective}"
        )
    if data.objective == "ce" and int(data.y.max()) >= cell.classes:
        raise InputError(
            f"the data hold class {int(data.y.max())}; the softmax head has {cell.classes} "
            f"classes (0 to {cell.classes - 1})"
        )


def _work(data: TaskData, theta: torch.Tensor) -> float:
    """Cell-steps of one pass: models x samples x steps."""
    return (
        float(theta.shape[0] if theta.ndim == 2 else 1)
        * (1 if data.x is None else data.x.shape[0])
        * data.length
    )


def unit_work(cell: Cell) -> int:
    """A model's cell-step in one-unit cell-steps, for the choice of engine: its units times its
    layers (a model of H units does about H times the work per step of H one-unit models, once
    its products are counted)."""
    return cell.hidden * cell.layers
