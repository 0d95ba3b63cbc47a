"""Models of H hidden units as rows of one parameter matrix, and their fused, batched forward pass.

Training (``landscape.train``) runs M models at once: model m is row m of an (M, P) matrix that
lists, in ``state_dict`` order, the weights of ``nn.RNN/LSTM/GRU(1, H)`` followed by those of the
``nn.Linear(H, 1)`` readout. For H = 1 this is the flat vector of ``Cell.param_names``.

The forward pass is written for speed, because training spends its time in it:

- all gates' hidden terms of a step come from one fused multiply-add over a (M, G*H, B) block (a
  broadcast multiply for H = 1, a batched matrix product for H > 1), and the cell's equations
  (``Cell.update``, the same code as the grid's) read each gate as a slice of it;
- the input terms ``W_ih x_t + b_ih`` of every step are computed before the time loop, in one op;
- models are ordered by length, and a model leaves the batch once its own sequence has ended,
  so a mix of lengths 2..200 costs the sum of the lengths, not 200 times the number of models.

The equations, gate order and initialization are torch.nn's; the tests check every cell and
several hidden sizes against ``nn.RNN/LSTM/GRU`` with copied weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._errors import InputError, check_seed
from .cells import CELLS, Cell, classification_loss, readout
from .inits import check_init, keras_theta

__all__ = ["shapes", "n_params", "init_theta", "trained_mask", "unpack", "final_states", "forward_logits",
           "readout_loss", "MAX_UNITS"]

MAX_UNITS = 64


def _gates(cell: Cell) -> int:
    if not cell.gates:
        raise InputError(f"cell {cell.name!r} cannot be trained; valid cells: "
                         f"{', '.join(n for n, c in CELLS.items() if c.gates)}")
    return cell.gates


def check_units(hidden: int) -> int:
    if int(hidden) != hidden or not 1 <= hidden <= MAX_UNITS:
        raise InputError(f"--units {hidden} must be an integer from 1 to {MAX_UNITS}")
    return int(hidden)


def shapes(cell: Cell, hidden: int = 1) -> list[tuple[str, str, tuple[int, ...]]]:
    """(module, state_dict key, shape) of every tensor, in the order of the flat vector."""
    gh = _gates(cell) * hidden
    return [("rnn", "weight_ih_l0", (gh, 1)), ("rnn", "weight_hh_l0", (gh, hidden)),
            ("rnn", "bias_ih_l0", (gh,)), ("rnn", "bias_hh_l0", (gh,)),
            ("head", "weight", (cell.n_out, hidden)), ("head", "bias", (cell.n_out,))]


def n_params(cell: Cell, hidden: int = 1) -> int:
    return sum(int(np.prod(s)) for _, _, s in shapes(cell, hidden))


def modules(cell: Cell, hidden: int = 1) -> tuple[nn.Module, nn.Module]:
    """Fresh torch.nn modules of this size, created in this order (as torch.nn users write it)."""
    _gates(cell)
    return getattr(nn, cell.module)(1, hidden, batch_first=True), nn.Linear(hidden, cell.n_out)


def init_theta(cell: Cell, hidden: int = 1, *, seed: int = 0, init: str = "torch") -> torch.Tensor:
    """The default initialization of torch.nn (``init="torch"``) or of Keras (``"keras"``,
    ``landscape.inits``) for ``seed``, as a flat (P,) float64 vector, drawn without touching the
    caller's random state. For H = 1 it equals ``landscape.init_params``."""
    check_init(init)
    return _init_theta(cell, hidden, check_seed(seed), init)


def _init_theta(cell: Cell, hidden: int, seed: int, init: str) -> torch.Tensor:
    """``init_theta`` past its checks."""
    if init == "torch":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            rnn, head = modules(cell, hidden)
        sds = {"rnn": rnn.state_dict(), "head": head.state_dict()}
        return torch.cat([sds[m][k].reshape(-1) for m, k, _ in shapes(cell, hidden)]).to(torch.float64)
    return keras_theta(cell, hidden, seed=seed)


def trained_mask(cell: Cell, hidden: int, init: str) -> torch.Tensor:
    """1 for every trained parameter, 0 for those that stay: (P,). Keras's SimpleRNN, LSTM and GRU
    with reset_after=False have one bias per gate where torch.nn has two; with ``init="keras"``
    the second (bias_hh, 0 at the start) stays 0, so that the model trained is Keras's."""
    keep = torch.ones(n_params(cell, hidden))
    if init == "keras" and not (cell.name == "gru" and cell.reset == "after"):
        k = 0
        for _, key, shape in shapes(cell, hidden):
            size = int(np.prod(shape))
            if key == "bias_hh_l0":
                keep[k : k + size] = 0
            k += size
    return keep


def unpack(cell: Cell, theta: torch.Tensor, hidden: int = 1) -> dict[str, torch.Tensor]:
    """(M, P) -> views shaped for the batched step: weight_ih (M, GH, 1), weight_hh (M, GH, H),
    bias_ih and bias_hh (M, GH, 1), weight (M, K, H), bias (M, K), K the readout's outputs."""
    if theta.shape[1] != n_params(cell, hidden):
        raise InputError(f"a {cell.name} model with {hidden} units has {n_params(cell, hidden)} parameters, "
                         f"not {theta.shape[1]}")
    out, k = {}, 0
    M = theta.shape[0]
    for _, key, shape in shapes(cell, hidden):
        size = int(np.prod(shape))
        part = theta[:, k : k + size]
        k += size
        out[key] = part.reshape(M, *shape) if len(shape) == 2 else part.reshape(M, shape[0], 1)
    out["bias"] = out["bias"][:, :, 0]  # (M, K)
    return out


def _hh(w: torch.Tensor, h: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """add + W_hh h for a block of models: w (M, GH, H), h (M, H, B), add (M, GH, 1 or B)."""
    if w.shape[2] == 1:
        return torch.addcmul(add, w, h)  # broadcast multiply: no tiny matrix products
    return torch.baddbmm(add.expand(-1, -1, h.shape[2]), w, h)


def _segment(cell: Cell, p: dict, xs: list[torch.Tensor], h: torch.Tensor, c: torch.Tensor | None):
    """Run the steps whose input terms W_ih x_t + b_ih are ``xs`` ((M, GH, B) each) from state h, c,
    with the cell's own equations (``Cell.update``), each gate a slice of the fused block."""
    w, b = p["weight_hh_l0"], p["bias_hh_l0"]  # (M, GH, H), (M, GH, 1)
    H = w.shape[2]
    s = (h,) if c is None else (h, c)
    gate = lambda k, t: t[:, k * H : (k + 1) * H]  # noqa: E731 - gate k's rows of a (M, GH, .) block
    for ix in xs:
        hh = _hh(w, s[0], b)  # (M, GH, B): every gate's hidden term in one product

        def hidden(k: int, v: torch.Tensor | None = None, hh=hh) -> torch.Tensor:
            """Gate k's hidden term: of the state (from the fused product), or of another vector v."""
            return gate(k, hh) if v is None else _hh(gate(k, w), v, gate(k, b))

        s = cell.update(lambda k, ix=ix: gate(k, ix), hidden, s)
    return s[0], (s[1] if c is not None else None)


def final_states(cell: Cell, theta: torch.Tensor, x: torch.Tensor, lengths: torch.Tensor,
                 hidden: int = 1) -> torch.Tensor:
    """Final states of M models on their own batches: theta (M, P), x (M, B, T), lengths (M,)
    with every length <= T -> (M, H, B), units first as the recurrence keeps them. Model m reads
    x[m, :, :lengths[m]]."""
    M, B, _ = x.shape
    lengths = lengths.reshape(-1).cpu()
    order = torch.argsort(lengths, stable=True)
    ident = bool((order == torch.arange(M)).all())
    if not ident:
        theta, x, lengths = theta[order.to(theta.device)], x[order.to(x.device)], lengths[order]
    p = unpack(cell, theta, hidden)
    h = x.new_zeros(M, hidden, B)
    c = x.new_zeros(M, hidden, B) if cell.name == "lstm" else None
    done, t, a = [], 0, 0
    lens = lengths.tolist()
    for end in sorted(set(lens)):
        if end > t:
            seg = {k: v[a:] for k, v in p.items()}
            ix = torch.addcmul(seg["bias_ih_l0"][..., None], seg["weight_ih_l0"][..., None],
                               x[a:, None, :, t:end])  # (M_a, GH, B, steps): every input term at once
            h, c = _segment(cell, seg, list(ix.unbind(-1)), h, c)
            t = end
        n_end = lens.count(end)
        done.append(h[:n_end])
        h, c = h[n_end:], None if c is None else c[n_end:]
        a += n_end
    h = torch.cat(done)  # (M, H, B), models in length order
    return h if ident else h[torch.argsort(order).to(h.device)]


def readout_loss(cell: Cell, theta: torch.Tensor, h: torch.Tensor, y: torch.Tensor | None,
                 objective: str = "bce", *,
                 units_first: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each model's mean loss and accuracy from its final states, whichever engine ran it:
    theta (G, P); h (G, N) (one unit, by name), (G, N, H) as the kernel gives them, or, with
    ``units_first``, (G, H, N) as ``final_states`` does; y (N,) or (G, N) -> (G,), (G,), through
    the cell's own readout and loss."""
    if h.ndim == 3:  # H units: the readout nn.Linear(H, K)
        logits = _logits(cell, unpack(cell, theta, h.shape[1] if units_first else h.shape[2]), h, units_first)
        return classification_loss(logits, y, clip=cell.clip)
    return readout(cell, cell.split(theta), h, y, objective)


def forward_logits(cell: Cell, theta: torch.Tensor, x: torch.Tensor, lengths: torch.Tensor,
                   hidden: int = 1) -> torch.Tensor:
    """Readout logits of M models on their own batches: theta (M, P), x (M, B, T), lengths (M,)
    with every length <= T -> (M, B). Model m reads x[m, :, :lengths[m]]."""
    return _logits(cell, unpack(cell, theta, hidden), final_states(cell, theta, x, lengths, hidden), True)


def _logits(cell: Cell, p: dict, h: torch.Tensor, units_first: bool) -> torch.Tensor:
    """The readout nn.Linear(H, K) on final states (G, N, H), or (G, H, N) ``units_first``: the logit
    of class 1 against class 0, (G, N). Each layout keeps its own product, so that each engine's
    numbers are the bits they have always been."""
    if units_first:
        z = torch.bmm(p["weight"], h) + p["bias"][..., None]  # (G, K, N)
        return z[:, 0] if cell.n_out == 1 else z[:, 1] - z[:, 0]
    z = torch.bmm(h, p["weight"].transpose(1, 2)) + p["bias"][:, None]  # (G, N, K)
    return z[..., 0] if cell.n_out == 1 else z[..., 1] - z[..., 0]
