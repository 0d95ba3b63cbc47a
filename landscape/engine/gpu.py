"""The GPU engine: the fused kernel's work in Triton, for models on a CUDA device.

``backend="fused"`` on CUDA tensors runs here, through the same door as the C kernel on the CPU
(``landscape.engine.fused.kernel_losses``, an autograd Function whose backward is the engine's own
derivative): each model's mean loss and accuracy come out of one kernel launch
(``gpu_kernels.recur_kernel``), and with gradients a second kernel (``gpu_kernels.bptt_kernel``)
runs backpropagation through time with recomputation by segments; forward-mode tangents along
any directions are there too (Pascanu's map takes them for its gradient).

Triton is an optional extra (``pip install -e ".[gpu]"``); without it, or without CUDA, this
engine is not offered. For tests, ``LANDSCAPE_TRITON_ON_CPU=1`` with ``TRITON_INTERPRET=1`` (both
set before the kernels are first imported) runs it on CPU tensors under Triton's interpreter, so
the whole pipeline is exercised through this code on a machine without a GPU.

Here: one-unit models (rnn, lstm, gru with the reset gate after or before, Pascanu's map) with
the one-logit or Keras's two-output readout, the sigmoid or hard-sigmoid gates, per-model lengths
and indexed rows (training). Models of H units, I inputs and L layers run on the kernels of
``gpu_units`` (up to MAX_UNITS of each); other readouts and per-step targets are refused with a
reason, and ``auto`` runs them on the reference path.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
import os

import torch

from .._errors import InputError
from ..cells import KERAS_EPSILON, PASCANU_TARGET, Cell
from .door import KernelLoss, check_arguments, one_logit, two_logit_grad

__all__ = ["available", "unavailable_reason", "serves", "refuses", "run_triton", "triton_losses", "ON_CPU"]

ON_CPU = "LANDSCAPE_TRITON_ON_CPU"  # test-only: the Triton engine on CPU tensors, interpreted
FAST_MATH = "LANDSCAPE_GPU_FAST_MATH"  # =1: float32 on a GPU takes its tanh.approx (not interpreted)
CODES = {"rnn": 0, "lstm": 1, "gru": 2, "pascanu": 3, "gru_before": 4}  # gpu_kernels' cell codes
GATE_CODES = {"sigmoid": 0, "hard_sigmoid": 1}
OBJECTIVE_CODES = {"bce": 0, "pascanu": 1, "keras": 2}
HEADS = ("logit", "softmax2", "")
NUM_WARPS = 4  # warps per program (128 threads)
MAX_UNITS = 64  # units, inputs and layers of the kernels for H-unit models (``gpu_units``)
# Bytes a program keeps per thread and state tensor, by the compile checks (``gpu_aot``): 32 for
# the lanes' states (8 float32 lanes a thread, 4 float64), 16 for each tangent tensor, which keeps
# an LSTM's tangents along all its 18 parameters in registers on sm_90, without spills.
# With tanh.approx (``fast``), ptxas 12.x spills a few bytes at 8 float32 lanes a thread (rnn, gru),
# and none at 4: the fast variant takes half the lanes.
LANE_BYTES = 32 * NUM_WARPS * 32
TANGENT_BYTES = 32 * NUM_WARPS * 16
# Directions of one pass: more are taken in groups, a pass each (float64 LSTM tangents along all
# 18 parameters at once spill on sm_90; in groups of at most 8 they do not).
MAX_DIRECTIONS = {4: 32, 8: 8}
BPTT_BYTES = 32 * NUM_WARPS * 8  # each state tensor of the backward kernel (its many gradient sums)
SCRATCH_BYTES = 1 << 28  # checkpoints and segments of one launch of the backward kernel


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def fast_math(theta: torch.Tensor) -> bool:
    """Whether the kernels take the GPU's approximate tanh: asked for, float32, on a CUDA device."""
    return os.environ.get(FAST_MATH) == "1" and theta.dtype == torch.float32 and theta.device.type == "cuda"


def on_cpu() -> bool:
    """Whether the test-only switch runs this engine on CPU tensors (under the interpreter)."""
    return os.environ.get(ON_CPU) == "1" and _interpreting()


@functools.cache
def _triton_missing() -> str:
    return "" if importlib.util.find_spec("triton") is not None else "triton is not installed"


def unavailable_reason(device: str | torch.device = "cuda") -> str:
    """Why this engine cannot run on ``device`` ("" where it can)."""
    if _triton_missing():
        return _triton_missing()
    if torch.device(device).type == "cpu":
        return "" if on_cpu() else "the GPU engine runs on CUDA devices"
    if _interpreting():
        return "TRITON_INTERPRET=1 runs kernels on CPU tensors only"
    return "" if torch.cuda.is_available() else "no CUDA device is available"


def available(device: str | torch.device = "cuda") -> bool:
    return not unavailable_reason(device)


def serves(device: str | torch.device) -> bool:
    """Whether ``backend='fused'`` on ``device`` means this engine (CUDA, or the CPU test switch)."""
    return torch.device(device).type == "cuda" or on_cpu()


def refuses(cell: Cell) -> str:
    """Why this engine cannot run ``cell`` ("" where it can)."""
    if cell.sized and max(cell.hidden, cell.inputs, cell.layers) > MAX_UNITS:
        return (
            f"a model of {cell.size_text()}: the GPU engine runs up to {MAX_UNITS} units, inputs and layers"
        )
    if cell.head not in HEADS:
        return f"the {cell.head} readout: the GPU engine reduces one logit"
    return ""


@functools.cache
def _kernel():
    from . import gpu_kernels  # here: TRITON_INTERPRET is read when the kernels are decorated

    return gpu_kernels.recur_kernel


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def launch_shape(
    G: int, N: int, D: int, block: tuple[int, int] | None = None, *, itemsize: int = 4, fast: bool = False
) -> tuple[int, int]:
    """(models, samples) per program: a block of models over every sample, BN at a time; at most
    LANE_BYTES of each state tensor (half that with ``fast`` math), or with D tangents TANGENT_BYTES
    of each tangent tensor (``itemsize`` bytes a value). ``block`` forces one (powers of two)."""
    if block is not None:
        return block
    lanes = LANE_BYTES // (2 if fast else 1)
    budget = lanes // itemsize if D == 0 else max(1, TANGENT_BYTES // (itemsize * _pow2(D)))
    BN = min(_pow2(N), 256 if D == 0 else budget)
    BG = max(1, min(_pow2(G), budget // BN))
    return BG, BN


def run_triton(
    cell: Cell,
    theta: torch.Tensor,
    x: torch.Tensor | None,
    y: torch.Tensor | None,
    *,
    steps: int,
    rows: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
    objective: str = "bce",
    directions: torch.Tensor | None = None,
    grad: bool = False,
    stops: list[int] | None = None,
    block: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Each model's mean loss (G,), accuracy (G,) (None for Pascanu's map) and, with
    ``directions`` (D, P), its derivatives along them (G, D) (forward-mode tangents), or with
    ``grad`` its gradient (G, P) (backpropagation through time with recomputation by segments;
    for Pascanu's map, tangents along its two parameters). With ``stops`` (rising steps, the last
    ``steps``; no gradients, no lengths): the loss and accuracy after each, (G, K), from one pass.
    theta (G, P) of the one-logit layout (a softmax2 head already read as its logit difference);
    x, y, rows, lengths as for ``landscape.engine.fused.run_fused``, on theta's device."""
    if refuses(cell):
        raise InputError(f"backend 'fused' cannot run {refuses(cell)}")
    check_arguments(cell, _two_logit_shape(cell, theta), x, y, rows, lengths, steps)
    dev, dtype = theta.device, theta.dtype
    if dtype not in (torch.float32, torch.float64):
        raise InputError(f"the GPU engine runs float32 or float64, not {dtype}")
    G, P = theta.shape
    theta = theta.detach().contiguous()
    if x is not None:
        x = x.detach().to(device=dev, dtype=dtype).contiguous()
    if rows is not None:
        rows = rows.detach().to(device=dev, dtype=torch.int64).contiguous()
        N, T, xs_g, xs_n = rows.shape[1], x.shape[-1], 0, x.shape[-1]
    elif x is not None:
        N, T = x.shape[-2], x.shape[-1]
        xs_g, xs_n = (N * T if x.ndim == 3 else 0), T
    else:
        N, T, xs_g, xs_n = 1, steps, 0, 0
    T_run = steps
    if lengths is not None:
        lengths = lengths.detach().to(device=dev, dtype=torch.int64).contiguous()
        T_run = int(lengths.max()) if G else 0
    if max(T_run, steps) > T:
        raise InputError(f"a length of {max(T_run, steps)} exceeds the inputs' {T} steps")
    obj = "keras" if objective == "bce" and cell.clip else objective
    ys_g = 0
    if y is not None:
        y = y.detach().to(device=dev, dtype=dtype).contiguous()
        ys_g = N if (y.ndim == 2 and rows is None) else 0
    elif obj != "pascanu":
        raise InputError("the classification loss needs labels y")
    D = 0 if directions is None else directions.shape[0]
    most = MAX_DIRECTIONS[theta.element_size()]
    layout = dict(G=G, P=P, N=N, T=T_run, xs_g=xs_g, xs_n=xs_n, ys_g=ys_g, obj=obj, block=block)
    if stops is not None:
        stops = list(stops)
        if grad or D or lengths is not None or not stops or stops != sorted(set(stops)) or stops[0] < 1:
            raise InputError(
                f"stops {stops} must rise from 1 to the {steps} steps, without gradients or lengths"
            )
        if stops[-1] != steps:
            raise InputError(f"stops {stops} must end at the {steps} steps")
        return _launch(cell, theta, x, y, rows, lengths, None, stops=stops, **layout)
    # the loss and accuracy from a pass without tangents (the same bits as without gradients);
    # the tangents in groups of at most ``most`` directions, a pass each
    if grad and cell.kernel != "pascanu":
        return _backward(cell, theta, x, y, rows, lengths, **layout)
    if grad:
        directions, D = torch.eye(P, device=dev, dtype=dtype), P
    loss, acc, _ = _launch(cell, theta, x, y, rows, lengths, None, **layout)
    if not D:
        return loss, acc, None
    dirs = directions.detach().to(device=dev, dtype=dtype)
    parts = [
        _launch(cell, theta, x, y, rows, lengths, dirs[k : k + most], **layout)[2] for k in range(0, D, most)
    ]
    return loss, acc, torch.cat(parts, 1)


def _launch(
    cell: Cell,
    theta,
    x,
    y,
    rows,
    lengths,
    directions,
    *,
    G,
    P,
    N,
    T,
    xs_g,
    xs_n,
    ys_g,
    obj,
    block,
    stops=None,
):
    """One launch of the kernel on checked, laid-out arguments."""
    dev, dtype = theta.device, theta.dtype
    D = 0 if directions is None else directions.shape[0]
    K = 0 if stops is None else len(stops)
    dirs = (
        directions.detach().to(device=dev, dtype=dtype).contiguous()
        if D
        else torch.zeros(1, P, device=dev, dtype=dtype)
    )
    consts = _consts(cell, dev, dtype)
    shape = (G, K) if K else (G,)
    loss = torch.full(shape, float("nan"), device=dev, dtype=dtype)  # an unwritten entry shows
    acc = torch.full(shape, float("nan"), device=dev, dtype=dtype)
    dloss = torch.full((G, max(D, 1)), float("nan"), device=dev, dtype=dtype)
    stop_steps = torch.tensor(stops or [0], device=dev, dtype=torch.int64)
    BG, BN = launch_shape(G, N, D, block, itemsize=theta.element_size(), fast=fast_math(theta))
    dummy = torch.zeros(1, device=dev, dtype=dtype)
    with _on(dev):
        if G:
            _kernel()[(triton_cdiv(G, BG),)](
                theta,
                dirs,
                consts,
                dummy if x is None else x,
                dummy if y is None else y,
                torch.zeros(1, device=dev, dtype=torch.int64) if rows is None else rows,
                torch.zeros(1, device=dev, dtype=torch.int64) if lengths is None else lengths,
                loss,
                acc,
                dloss,
                stop_steps,
                G,
                N,
                T,
                P,
                D,
                max(K, 1),
                xs_g,
                xs_n,
                ys_g,
                HAS_X=x is not None,
                TANG=D > 0,
                HAS_STOPS=K > 0,
                DP=_pow2(max(D, 1)),
                **_meta(cell, obj, theta, rows, lengths, BG, BN),
            )
    # the kernel sums over the samples; the means are divided here, correctly rounded
    return loss / N, (None if obj == "pascanu" else acc / N), (dloss[:, :D] / N if D else None)


def _backward(cell: Cell, theta, x, y, rows, lengths, *, G, P, N, T, xs_g, xs_n, ys_g, obj, block):
    """Loss, accuracy and gradient by the backward kernel, in launches of as many models as
    SCRATCH_BYTES of checkpoints and segments hold."""
    dev, dtype = theta.device, theta.dtype
    itemsize = theta.element_size()
    BG, BN = block or _bptt_shape(G, N, itemsize)
    S = max(1, math.isqrt(max(T - 1, 0)) + 1)  # about sqrt(T) steps a segment
    K = -(-T // S)
    NS = 2 if cell.kernel == "lstm" else 1
    per_model = BN * (K + S) * NS * itemsize
    step = max(BG, SCRATCH_BYTES // max(per_model, 1) // BG * BG)
    loss = torch.full((G,), float("nan"), device=dev, dtype=dtype)
    acc = torch.full((G,), float("nan"), device=dev, dtype=dtype)
    grad = torch.full((G, P), float("nan"), device=dev, dtype=dtype)
    consts = _consts(cell, dev, dtype)
    dummy = torch.zeros(1, device=dev, dtype=torch.int64)
    for g0 in range(0, G, step):
        g1 = min(G, g0 + step)
        M = g1 - g0
        programs = triton_cdiv(M, BG)
        LANES = programs * BG * BN
        ck = torch.full((max(K, 1) * NS * LANES,), float("nan"), device=dev, dtype=dtype)
        seg = torch.full((S * NS * LANES,), float("nan"), device=dev, dtype=dtype)
        xg = x if x is None or x.ndim == 2 or rows is not None else x[g0:g1]
        yg = y if y.ndim == 1 or rows is not None else y[g0:g1]
        with _on(dev):
            _bptt()[(programs,)](
                theta[g0:g1].contiguous(),
                consts,
                xg.contiguous(),
                yg.contiguous(),
                dummy if rows is None else rows[g0:g1].contiguous(),
                dummy if lengths is None else lengths[g0:g1].contiguous(),
                ck,
                seg,
                loss[g0:g1],
                acc[g0:g1],
                grad[g0:g1],
                M,
                N,
                T,
                P,
                S,
                K,
                LANES,
                xs_g,
                xs_n,
                ys_g,
                HAS_X=True,
                NS=NS,
                **_meta(cell, obj, theta, rows, lengths, BG, BN),
            )
    return loss / N, acc / N, grad / N  # the kernel's sums over the samples, as means


def _meta(cell: Cell, obj: str, theta, rows, lengths, BG: int, BN: int) -> dict:
    """The compile-time arguments both one-unit kernels take, and their launch option."""
    return dict(
        CELL=CODES[cell.kernel],
        gates=max(1, cell.gates),
        GATE=GATE_CODES[cell.gate],
        OBJ=OBJECTIVE_CODES[obj],
        HAS_ROWS=rows is not None,
        HAS_LEN=lengths is not None,
        FAST=fast_math(theta),
        BG=BG,
        BN=BN,
        num_warps=NUM_WARPS,
    )


def _on(dev: torch.device):
    """Launches on ``dev``'s own CUDA device (Triton launches on the current one)."""
    return torch.cuda.device(dev) if dev.type == "cuda" else contextlib.nullcontext()


def _bptt_shape(G: int, N: int, itemsize: int) -> tuple[int, int]:
    budget = BPTT_BYTES // itemsize
    BN = min(_pow2(N), budget)
    return max(1, min(_pow2(G), budget // BN)), BN


def _consts(cell: Cell, dev, dtype) -> torch.Tensor:
    """The constants the kernels read, in the compute type."""
    return torch.tensor(
        [0.2, 0.5, PASCANU_TARGET, KERAS_EPSILON, 1.0 - KERAS_EPSILON, float(cell.x0)], dtype=torch.float64
    ).to(device=dev, dtype=dtype)


@functools.cache
def _bptt():
    from . import gpu_kernels

    return gpu_kernels.bptt_kernel


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _two_logit_shape(cell: Cell, theta: torch.Tensor) -> torch.Tensor:
    """A (G, P) view of the shape the checks expect (the softmax2 head's two extra columns)."""
    if cell.head != "softmax2":
        return theta
    return theta.new_empty(theta.shape[0], theta.shape[1] + 2)


def triton_losses(
    cell: Cell,
    theta: torch.Tensor,
    x: torch.Tensor | None,
    y: torch.Tensor | None,
    *,
    steps: int,
    rows: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
    objective: str = "bce",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each model's mean loss and accuracy on the GPU engine, differentiable in theta through
    autograd (its tangents along every parameter): theta (G, P) -> (G,), (G,) or None."""
    accuracy = []

    def run(th: torch.Tensor, grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        one = one_logit(cell, th.detach())
        loss, acc, d = run_triton(
            cell, one, x, y, steps=steps, rows=rows, lengths=lengths, objective=objective, grad=grad
        )
        accuracy.append(acc)
        return loss, (None if d is None else two_logit_grad(cell, d))

    loss = KernelLoss.apply(theta, run)
    return loss, accuracy[0]


def triton_prefix_losses(cell: Cell, data, theta: torch.Tensor, at: list[int]) -> list[tuple]:
    """(loss, accuracy) of G models after each step of ``at`` (rising, the last ``data.length``),
    from one pass over the sequences."""
    one = one_logit(cell, theta.detach())
    loss, acc, _ = run_triton(
        cell, one, data.x, data.y, steps=data.length, objective=data.objective, stops=at
    )
    return [(loss[:, k], None if acc is None else acc[:, k]) for k in range(len(at))]
