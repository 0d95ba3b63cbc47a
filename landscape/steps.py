"""One step's work for an ensemble: every model's loss, accuracy and gradient on its own batch.

M models are rows of an (M, P) parameter matrix (``landscape.units``); model m reads rows
``rows[m]`` of the stacked data X (R, T) and Y (R,) and its own length. Each function runs the
fused kernel (``landscape.engine.fused.kernel_losses``) or the reference path
(``landscape.units.final_states``), then the one readout (``landscape.units.readout_loss``), as
``fused`` says, and gradients come from autograd through either; ``landscape.train`` calls
them at every step and at every epoch's validation.
"""

from __future__ import annotations

import numpy as np
import torch

from .cells import Cell
from .engine.fused import kernel_losses
from .units import final_states, outputs, readout_loss

__all__ = ["batch_loss", "batch_grad", "evaluate_split", "right_fraction"]

Ends = tuple | None  # (each row's own length (R,) or None, the squared error's tolerance)


def _forward(
    cell: Cell,
    theta: torch.Tensor,
    X: torch.Tensor,
    Y: torch.Tensor,
    rows: torch.Tensor,
    lengths: torch.Tensor,
    fused: bool,
    ends: Ends = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each model's mean loss and accuracy on its own batch, differentiable in theta on both engines;
    the models are of the cell's size (``Cell.hidden``, ``inputs``, ``layers``). ``ends``: each
    row's own length S (R,) and the squared error's tolerance, or None."""
    size = dict(hidden=cell.hidden, inputs=cell.inputs, layers=cell.layers)
    if fused:  # the kernel reads X and Y in place
        return kernel_losses(cell, theta, X, Y, rows=rows, lengths=lengths, steps=X.shape[1], **size)
    S, tol = ends or (None, 0.04)
    h = final_states(
        cell,
        theta,
        X[rows],
        lengths,
        size.pop("hidden"),
        **size,
        sample_lengths=None if S is None else S[rows],
    )
    return readout_loss(cell, theta, h, Y[rows], units_first=True, tol=tol)


def batch_loss(
    cell: Cell,
    theta: torch.Tensor,
    X: torch.Tensor,
    Y: torch.Tensor,
    rows: torch.Tensor,
    lengths: torch.Tensor,
    fused: bool = False,
    ends: Ends = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each model's mean loss and accuracy on its own batch, rows (M, B) of X (R, T) or (R, T, I)
    and Y (R,)."""
    with torch.no_grad():
        return _forward(cell, theta, X, Y, rows, lengths, fused, ends)


def batch_grad(
    cell: Cell,
    theta: torch.Tensor,
    X: torch.Tensor,
    Y: torch.Tensor,
    rows: torch.Tensor,
    lengths: torch.Tensor,
    fused: bool,
    ends: Ends = None,
) -> tuple[torch.Tensor, ...]:
    """Each model's mean loss, accuracy and gradient on its own batch: (M,), (M,), (M, P), by
    autograd on either engine (the kernel's backward is its own backpropagation through time)."""
    with torch.enable_grad():
        th = theta.detach().requires_grad_(True)
        loss, acc = _forward(cell, th, X, Y, rows, lengths, fused, ends)
        (g,) = torch.autograd.grad(loss.sum(), th)
    return loss.detach(), acc, g


def evaluate_split(
    cell: Cell,
    theta: torch.Tensor,
    X: torch.Tensor,
    Y: torch.Tensor,
    rows: torch.Tensor,
    lengths: torch.Tensor,
    fused: bool,
    chunk: int = 512,
    ends: Ends = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean loss and accuracy of every model on its own rows (M, n) of X and Y: (M,), (M,)."""
    M, n = rows.shape
    loss, acc = torch.zeros(M, dtype=theta.dtype), torch.zeros(M, dtype=theta.dtype)
    with torch.no_grad():
        for c0 in range(0, n, chunk):
            part = rows[:, c0 : c0 + chunk]
            lo, ac = batch_loss(cell, theta, X, Y, part, lengths, fused, ends)
            loss += lo.cpu() * part.shape[1]
            acc += ac.cpu() * part.shape[1]
    return (loss / n).numpy(), (acc / n).numpy()


def right_fraction(
    cell: Cell,
    theta: torch.Tensor,
    X: torch.Tensor,
    Y: torch.Tensor,
    rows: torch.Tensor,
    lengths: torch.Tensor,
    ends: Ends = None,
    chunk: int = 512,
) -> np.ndarray:
    """The fraction of every model's rows (M, n) that it gets right by the criterion of its loss
    (Hochreiter and Schmidhuber's, for the tasks of their paper): the sign of the logit (bce); the
    true class's probability above 0.75, which for a one-hot target is every output's error below
    0.25 (ce); the output within the data's tolerance of its target (mse). On the reference path."""
    S, tol = ends or (None, 0.04)
    count = torch.zeros(rows.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for part in rows.split(chunk, dim=1):
            h = final_states(
                cell,
                theta,
                X[part],
                lengths,
                cell.hidden,
                inputs=cell.inputs,
                layers=cell.layers,
                sample_lengths=None if S is None else S[part],
            )  # (M, H, n)
            z = outputs(cell, theta, h.transpose(1, 2))  # (M, n, K)
            y = Y[part]
            if cell.objective == "ce":
                right = torch.softmax(z, -1).gather(-1, y.long()[..., None])[..., 0] > 0.75
            elif cell.objective == "mse":
                right = (z[..., 0] - y).abs() < tol
            else:
                logit = z[..., 0] if z.shape[-1] == 1 else z[..., 1] - z[..., 0]
                right = (logit > 0) == (y > 0.5)
            count += right.double().sum(1).cpu()
    return (count / rows.shape[1]).numpy()
