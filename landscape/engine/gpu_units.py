"""The GPU engine's door for models of H units, I inputs and L layers (``landscape.units``): the
kernels of ``gpu_units_kernels`` give the top layer's final states, and the readout and loss are
``landscape.units.readout_loss``'s, in torch, as for the C kernel (``landscape.engine.fused``).
The states are an autograd Function whose backward is the kernels' own backpropagation through
time: a pass that records every layer's state after every step, then one back through them, in
chunks of models that fit ``SCRATCH_BYTES``.
"""

from __future__ import annotations

import functools

import torch

from .._errors import InputError
from ..cells import Cell
from ..units import check_size, check_units, readout_loss
from .door import check_arguments, feature_rows
from .gpu import CODES, GATE_CODES, NUM_WARPS, SCRATCH_BYTES, _consts, _on, _pow2, fast_math, triton_cdiv


def slots(layers: int, gates: int) -> int:
    """Scratch tiles of a program (``gpu_units_kernels``): each layer's (h, c) and their
    derivatives, each gate's two derivatives, and the reset state r h (Keras's GRU)."""
    return 4 * layers + 2 * gates + 1


__all__ = ["run_units", "unit_losses", "unit_prefix_losses", "units_shape", "UNIT_TILE_BYTES"]

# Bytes of one (samples, units) tile of a program (4 float32 values a thread, 2 float64; half that
# backward, which keeps more tiles): the sample block shrinks as the padded width grows, down to
# one sample row per warp. By the compile checks (``gpu_aot``: no spills in the loops on sm_90),
# with ptxas allowed every register (MAX_REGISTERS; by default it spills to fit more programs).
UNIT_TILE_BYTES = 32 * NUM_WARPS * 16
MAX_REGISTERS = 255


def units_shape(
    N: int, hidden: int, inputs: int, itemsize: int, backward: bool = False
) -> tuple[int, int, int]:
    """(samples per program BN, padded units HP, padded input width KP), powers of two; KP >= HP
    is a scratch row's width."""
    HP = _pow2(hidden)
    KP = max(HP, _pow2(inputs))
    budget = UNIT_TILE_BYTES // (2 if backward else 1)
    BN = max(NUM_WARPS, min(_pow2(N), budget // (itemsize * KP)))
    return BN, HP, KP


@functools.cache
def _kernels():
    from . import gpu_units_kernels  # here: TRITON_INTERPRET is read when the kernels are decorated

    return gpu_units_kernels.units_kernel, gpu_units_kernels.units_bptt_kernel


def _layout(cell: Cell, theta, x, rows, lengths, steps, hidden, inputs, layers):
    """Checked, contiguous arguments and the sizes of their launch."""
    hidden = check_units(hidden, 64)
    inputs, layers = check_size(inputs, layers, 64)
    x = feature_rows(x, inputs)
    check_arguments(cell, theta, x, None, rows, lengths, steps, hidden, inputs, layers)
    dev, dtype = theta.device, theta.dtype
    if dtype not in (torch.float32, torch.float64):
        raise InputError(f"the GPU engine runs float32 or float64, not {dtype}")
    G, P = theta.shape
    x = x.detach().to(device=dev, dtype=dtype).contiguous()
    TI = x.shape[-1]
    if rows is not None:
        rows = rows.detach().to(device=dev, dtype=torch.int64).contiguous()
        N, xs_g = rows.shape[1], 0
    else:
        N = x.shape[-2]
        xs_g = N * TI if x.ndim == 3 else 0
    T = TI // inputs
    T_run = steps
    if lengths is not None:
        lengths = lengths.detach().to(device=dev, dtype=torch.int64).contiguous()
        T_run = int(lengths.max()) if G else 0
    if max(T_run, steps) > T:
        raise InputError(f"a length of {max(T_run, steps)} exceeds the inputs' {T} steps")
    return (
        theta.detach().contiguous(),
        x,
        rows,
        lengths,
        dict(G=G, P=P, N=N, T=T_run, I=inputs, H=hidden, L=layers, xs_g=xs_g, xs_n=TI),
    )


def run_units(
    cell: Cell,
    theta: torch.Tensor,
    x: torch.Tensor,
    *,
    steps: int,
    rows: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
    hidden: int = 1,
    inputs: int = 1,
    layers: int = 1,
    stops: list[int] | None = None,
) -> torch.Tensor:
    """The top layer's states of G models after their steps, (G, N, H): theta (G, P) rows of
    ``landscape.units``'s layout (any readout: it is not read), x (N, T, I) shared, (G, N, T, I)
    each model's own, or rows (G, N) of a table (R, T, I) (for I = 1 the last axis may be left
    out); lengths (G,) each model's own. With ``stops`` (rising steps, the last ``steps``; no
    lengths), the states after each of them from one pass, (G, K, N, H)."""
    theta, x, rows, lengths, lay = _layout(cell, theta, x, rows, lengths, steps, hidden, inputs, layers)
    if stops is not None:
        stops = list(stops)
        if (
            lengths is not None
            or not stops
            or stops != sorted(set(stops))
            or stops[0] < 1
            or stops[-1] != steps
        ):
            raise InputError(f"stops {stops} must rise from 1 to the {steps} steps, without lengths")
    return _forward(cell, theta, x, rows, lengths, stops, **lay)


def _forward(cell, theta, x, rows, lengths, stops, *, G, P, N, T, I, H, L, xs_g, xs_n, record=None):
    """One launch per chunk of models of the forward kernel; with ``record`` (a (M NB, T + 1,
    L 2 BN KP) buffer for the one chunk of M = G models, at the backward kernel's shape), every
    step's states are kept in it."""
    dev, dtype = theta.device, theta.dtype
    BN, HP, KP = units_shape(N, H, I, theta.element_size(), backward=record is not None)
    NB = triton_cdiv(N, BN)
    K = len(stops) if stops else 0
    out = torch.full((G, K, N, H) if K else (G, N, H), float("nan"), device=dev, dtype=dtype)
    stop_steps = torch.tensor(stops or [0], device=dev, dtype=torch.int64)
    n_slots = slots(L, cell.gates)
    per_model = NB * n_slots * BN * KP * theta.element_size()
    step = G if record is not None else max(1, SCRATCH_BYTES // max(per_model, 1))
    consts = _consts(cell, dev, dtype)
    dummy = torch.zeros(1, device=dev, dtype=dtype)
    idx = torch.zeros(1, device=dev, dtype=torch.int64)
    kernel = _kernels()[0]
    for g0 in range(0, G, step):
        g1 = min(G, g0 + step)
        M = g1 - g0
        st = torch.zeros(M * NB * n_slots * BN * KP, device=dev, dtype=dtype)
        with _on(dev):
            kernel[(M * NB,)](
                theta[g0:g1],
                consts,
                x if x.ndim == 2 else x[g0:g1],
                idx if rows is None else rows[g0:g1],
                idx if lengths is None else lengths[g0:g1],
                stop_steps,
                st,
                dummy if record is None else record,
                out[g0:g1],
                N,
                T,
                P,
                I,
                H,
                L,
                max(K, 1),
                xs_g,
                xs_n,
                NB,
                HAS_STOPS=K > 0,
                RECORD=record is not None,
                **_meta(cell, theta, rows, lengths, BN, HP, KP),
            )
    return out


def _meta(cell: Cell, theta, rows, lengths, BN: int, HP: int, KP: int) -> dict:
    """The compile-time arguments both kernels take, and their launch options."""
    return dict(
        CELL=CODES[cell.kernel],
        gates=cell.gates,
        GATE=GATE_CODES[cell.gate],
        HAS_ROWS=rows is not None,
        HAS_LEN=lengths is not None,
        FAST=fast_math(theta),
        BN=BN,
        HP=HP,
        KP=KP,
        num_warps=NUM_WARPS,
        maxnreg=MAX_REGISTERS,
    )


def _backward(cell, theta, x, rows, lengths, dout, *, G, P, N, T, I, H, L, xs_g, xs_n):
    """Each model's gradient of sum(dout * states) by its recurrent weights and biases, (G, P),
    zeros for the readout's (autograd adds those through the door's readout)."""
    dev, dtype = theta.device, theta.dtype
    BN, HP, KP = units_shape(N, H, I, theta.element_size(), backward=True)
    NB = triton_cdiv(N, BN)
    tile = L * 2 * BN * KP
    n_slots = slots(L, cell.gates)
    per_model = NB * ((T + 1) * tile + n_slots * BN * KP) * theta.element_size()
    step = max(1, SCRATCH_BYTES // max(per_model, 1))
    grad = torch.zeros(G, P, device=dev, dtype=dtype)
    consts = _consts(cell, dev, dtype)
    idx = torch.zeros(1, device=dev, dtype=torch.int64)
    bptt = _kernels()[1]
    for g0 in range(0, G, step):
        g1 = min(G, g0 + step)
        M = g1 - g0
        # every step's states, NaN where nothing should be read (an unwritten slot shows), zeros at the start
        record = torch.full((M * NB, T + 1, tile), float("nan"), device=dev, dtype=dtype)
        record[:, 0] = 0.0
        part = dict(G=M, P=P, N=N, T=T, I=I, H=H, L=L, xs_g=xs_g, xs_n=xs_n)
        xg = x if x.ndim == 2 else x[g0:g1]
        rg = None if rows is None else rows[g0:g1]
        lg = None if lengths is None else lengths[g0:g1]
        _forward(cell, theta[g0:g1], xg, rg, lg, None, record=record, **part)
        ds = torch.zeros(M * NB * n_slots * BN * KP, device=dev, dtype=dtype)
        gp = torch.zeros(M * NB, P, device=dev, dtype=dtype)
        with _on(dev):
            bptt[(M * NB,)](
                theta[g0:g1],
                consts,
                xg,
                idx if rg is None else rg,
                idx if lg is None else lg,
                record,
                ds,
                dout[g0:g1].contiguous(),
                gp,
                N,
                T,
                P,
                I,
                H,
                L,
                xs_g,
                xs_n,
                NB,
                **_meta(cell, theta, rg, lg, BN, HP, KP),
            )
        grad[g0:g1] = gp.view(M, NB, P).sum(1)  # the blocks of samples, added in order
    return grad


class _States(torch.autograd.Function):
    """The top layer's final states (G, N, H) of the forward kernel, differentiable in theta through
    the backward kernel; ``args`` are the laid-out (cell, theta, x, rows, lengths) of ``_layout``."""

    @staticmethod
    def forward(ctx, theta: torch.Tensor, args: tuple, lay: dict) -> torch.Tensor:
        ctx.args, ctx.lay = args, lay
        return _forward(*args, None, **lay)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout: torch.Tensor):
        return _backward(*ctx.args, dout, **ctx.lay), None, None


def unit_losses(
    cell: Cell,
    theta: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    rows: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
    objective: str = "bce",
    hidden: int = 1,
    inputs: int = 1,
    layers: int = 1,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each model's mean loss and accuracy on the GPU engine, differentiable in theta: the kernels'
    states, then ``landscape.units.readout_loss`` (labels read through ``rows`` when given)."""
    if objective != "bce":
        raise InputError(f"models of {hidden} units are trained on classification, not {objective!r}")
    th, xs, rs, ls, lay = _layout(cell, theta, x, rows, lengths, steps, hidden, inputs, layers)
    args = (cell, th, xs, rs, ls)
    h = _States.apply(theta, args, lay) if theta.requires_grad else _forward(*args, None, **lay)
    y = y.to(device=theta.device, dtype=theta.dtype)
    return readout_loss(cell, theta, h, y if rows is None else y[rows], objective)


def unit_prefix_losses(cell: Cell, data, theta: torch.Tensor, at: list[int]) -> list[tuple]:
    """(loss, accuracy) of G models after each step of ``at`` (rising, the last ``data.length``),
    from one pass over the sequences."""
    hs = run_units(
        cell,
        theta.detach(),
        data.x,
        steps=data.length,
        hidden=cell.hidden,
        inputs=cell.inputs,
        layers=cell.layers,
        stops=at,
    )
    y = data.y.to(device=theta.device, dtype=theta.dtype)
    return [readout_loss(cell, theta, hs[:, k], y, data.objective) for k in range(len(at))]
