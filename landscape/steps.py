"""One step's work for an ensemble: every model's loss, accuracy and gradient on its own batch.

M models are rows of an (M, P) parameter matrix (``landscape.units``); model m reads rows
``rows[m]`` of the stacked data X (R, T) and Y (R,) and its own length. Each function runs the
fused kernel (``landscape.fused``, backpropagation through time inside) or the reference path
(``landscape.units.final_states`` and autograd), then the one readout
(``landscape.units.readout_loss``), as ``fused`` says; ``landscape.train`` calls
them at every step and at every epoch's validation.
"""

from __future__ import annotations

import numpy as np
import torch

from .cells import Cell
from .fused import run_fused
from .units import final_states, readout_loss

__all__ = ["batch_loss", "batch_grad", "evaluate_split"]


def batch_loss(cell: Cell, theta: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, rows: torch.Tensor,
               lengths: torch.Tensor, hidden: int, fused: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Each model's mean loss and accuracy on its own batch, rows (M, B) of X (R, T) and Y (R,)."""
    hT = (run_fused(cell, theta, X, rows=rows, lengths=lengths, steps=X.shape[-1], hidden=hidden)[0]
          if fused else final_states(cell, theta, X[rows], lengths, hidden))  # the kernel reads X in place
    return readout_loss(cell, theta, hT, Y[rows], units_first=not fused)


def batch_grad(cell: Cell, theta: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, rows: torch.Tensor,
               lengths: torch.Tensor, hidden: int, fused: bool) -> tuple[torch.Tensor, ...]:
    """Each model's mean loss, accuracy and gradient on its own batch: (M,), (M,), (M, P): from
    backpropagation through time inside the kernel, or from autograd through the reference."""
    with torch.enable_grad():
        th = theta.detach().requires_grad_(not fused)
        hT, g = (run_fused(cell, th, X, y=Y, rows=rows, lengths=lengths, steps=X.shape[-1], grad=True,
                           hidden=hidden)
                 if fused else (final_states(cell, th, X[rows], lengths, hidden), None))
        loss, acc = readout_loss(cell, th, hT, Y[rows], units_first=not fused)
        if g is None:
            (g,) = torch.autograd.grad(loss.sum(), th)
    return loss.detach(), acc, g


def evaluate_split(cell: Cell, theta: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, rows: torch.Tensor,
                   lengths: torch.Tensor, hidden: int, fused: bool,
                   chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Mean loss and accuracy of every model on its own rows (M, n) of X and Y: (M,), (M,)."""
    M, n = rows.shape
    loss, acc = torch.zeros(M, dtype=theta.dtype), torch.zeros(M, dtype=theta.dtype)
    with torch.no_grad():
        for c0 in range(0, n, chunk):
            part = rows[:, c0 : c0 + chunk]
            lo, ac = batch_loss(cell, theta, X, Y, part, lengths, hidden, fused)
            loss += lo.cpu() * part.shape[1]
            acc += ac.cpu() * part.shape[1]
    return (loss / n).numpy(), (acc / n).numpy()
