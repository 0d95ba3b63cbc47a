"""What both engines' doors share: the checks of their arguments (each with its own message), the
softmax2 readout read as one logit and its gradient mapped back, and the autograd Function whose
backward is an engine's own derivative (the C kernel's, ``fused``, and the GPU engine's, ``gpu``)."""

from __future__ import annotations

import torch

from .._errors import InputError
from ..cells import Cell
from ..units import n_params

__all__ = ["KernelLoss", "check_arguments", "one_logit", "two_logit_grad", "feature_rows"]


def feature_rows(x: torch.Tensor | None, inputs: int) -> torch.Tensor | None:
    """Inputs of I features per step, (.., T, I), as the kernels read them: (.., T I), each row's
    steps with their features within; one feature may come without its axis, (.., T)."""
    if inputs > 1:
        if x is None or x.ndim not in (3, 4) or x.shape[-1] != inputs:
            shape = None if x is None else tuple(x.shape)
            raise InputError(f"x must end in {inputs} features per step, not {shape}")
        return x.reshape(*x.shape[:-2], -1)
    if x is not None and x.ndim == 4 and x.shape[-1] == 1:
        return x[..., 0]  # (G, N, T, 1): one feature per step
    return x


def one_logit(cell: Cell, theta: torch.Tensor, hidden: int = 1) -> torch.Tensor:
    """A softmax2 readout as the one logit z_1 - z_0 = (w_1 - w_0) h + (b_1 - b_0) the kernel
    reads: the last 2 H + 2 values (w_0 (H), w_1 (H), b_0, b_1) become H + 1."""
    if cell.head != "softmax2":
        return theta
    H = hidden
    w0, w1, b = theta[:, -2 * H - 2 : -H - 2], theta[:, -H - 2 : -2], theta[:, -2:]
    return torch.cat([theta[:, : -2 * H - 2], w1 - w0, (b[:, 1] - b[:, 0])[:, None]], 1)


def two_logit_grad(cell: Cell, g: torch.Tensor, hidden: int = 1) -> torch.Tensor:
    """The chain rule back through one_logit: (dw, db) -> (-dw, dw, -db, db)."""
    if cell.head != "softmax2":
        return g
    dw, db = g[:, -hidden - 1 : -1], g[:, -1:]
    return torch.cat([g[:, : -hidden - 1], -dw, dw, -db, db], 1)


def check_arguments(
    cell: Cell, theta, x, y, rows, lengths, steps: int, hidden: int = 1, inputs: int = 1, layers: int = 1
) -> None:
    """Every shape and index is checked here, each with its own message (the kernel's door checks
    them again, as a safety net, with one code each)."""
    one = hidden == inputs == layers == 1
    P = len(cell.param_names) if one else n_params(cell, hidden, inputs=inputs, layers=layers)
    if theta.ndim != 2 or theta.shape[1] != P:
        size = "" if one else f" of {hidden} units, {inputs} inputs and {layers} layers"
        raise InputError(f"theta must be (G, {P}) for cell {cell.name!r}{size}, not {tuple(theta.shape)}")
    G = theta.shape[0]
    if int(steps) != steps or steps < 1:
        raise InputError(f"steps {steps} must be a positive integer")
    if x is not None and (x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[0] != G)):
        raise InputError(f"x must be (N, T) or ({G}, N, T), not {tuple(x.shape)}")
    if x is None and cell.takes_input:
        raise InputError(f"cell {cell.name!r} needs inputs x")
    if lengths is not None and (lengths.shape != (G,) or (G and (int(lengths.min()) < 0))):
        raise InputError(f"lengths must be ({G},) non-negative integers, not {tuple(lengths.shape)}")
    if rows is not None:
        if x is None or x.ndim != 2 or rows.ndim != 2 or rows.shape[0] != G:
            raise InputError(f"rows must be ({G}, N) indices into the rows of a 2-D x")
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= x.shape[0]):
            raise InputError(f"rows must lie in [0, {x.shape[0]})")
    if y is not None:
        n = rows.shape[1] if rows is not None else (1 if x is None else x.shape[-2])
        need = (x.shape[0],) if rows is not None else ((n,), (G, n))
        if (rows is not None and y.shape != need) or (rows is None and y.shape not in need):
            raise InputError(f"y has shape {tuple(y.shape)}; it must match the samples, {need}")


class KernelLoss(torch.autograd.Function):
    """Each model's mean loss from the kernel, whose backward is the kernel's own backpropagation
    through time: the gradient of every model is computed with its loss (about twice the cost of
    the loss alone) when theta requires it, and scaled by the incoming gradient in backward."""

    @staticmethod
    def forward(ctx, theta: torch.Tensor, run) -> torch.Tensor:
        loss, g = run(theta, ctx.needs_input_grad[0])
        ctx.save_for_backward(g if g is not None else theta.new_empty(0))
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_loss: torch.Tensor):
        (g,) = ctx.saved_tensors
        return d_loss[:, None] * g, None
