"""Models of any size as rows of one parameter matrix, and their batched forward pass.

The one model description of the toolkit: ``nn.RNN/LSTM/GRU(input_size=I, hidden_size=H,
num_layers=L)`` followed by the readout ``nn.Linear(H, K)`` (K = 1 logit, or Keras's 2 softmax
outputs). M models are rows of an (M, P) matrix that lists their weights in ``state_dict`` order
(layer by layer: weight_ih_l<l>, weight_hh_l<l>, bias_ih_l<l>, bias_hh_l<l>; then weight, bias).
For I = H = L = 1 this is the flat vector of ``Cell.param_names`` (w_hh, b_hh_f, ... are its
names); training (``landscape.train``) and both engines read this layout.

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
from .cells import (
    CELLS,
    MAX_SIZE,
    Cell,
    classification_loss,
    readout,
    reference_losses,
    softmax_loss,
    squared_loss,
    tensor_shapes,
)
from .inits import check_init, keras_theta

__all__ = [
    "shapes",
    "n_params",
    "init_theta",
    "trained_mask",
    "unpack",
    "final_states",
    "forward_logits",
    "readout_loss",
    "check_size",
    "model_losses",
]


def _gates(cell: Cell) -> int:
    if not cell.gates:
        raise InputError(
            f"cell {cell.name!r} cannot be trained; valid cells: "
            f"{', '.join(n for n, c in CELLS.items() if c.gates)}"
        )
    return cell.gates


def check_units(hidden: int, most: int = MAX_SIZE) -> int:
    if isinstance(hidden, bool) or int(hidden) != hidden or not 1 <= hidden <= most:
        raise InputError(f"hidden units {hidden} must be an integer from 1 to {most}")
    return int(hidden)


def check_size(inputs: int, layers: int, most: int = MAX_SIZE) -> tuple[int, int]:
    """Features per step and layers, each an integer from 1 to ``most``."""
    for name, v in (("inputs", inputs), ("layers", layers)):
        if isinstance(v, bool) or int(v) != v or not 1 <= v <= most:
            raise InputError(f"{name} {v!r} must be an integer from 1 to {most}")
    return int(inputs), int(layers)


def shapes(
    cell: Cell, hidden: int = 1, *, inputs: int = 1, layers: int = 1
) -> list[tuple[str, str, tuple[int, ...]]]:
    """(module, state_dict key, shape) of every tensor, in the order of the flat vector."""
    _gates(cell)
    return list(tensor_shapes(cell, hidden, inputs, layers))


def n_params(cell: Cell, hidden: int = 1, *, inputs: int = 1, layers: int = 1) -> int:
    return sum(int(np.prod(s)) for _, _, s in shapes(cell, hidden, inputs=inputs, layers=layers))


def modules(cell: Cell, hidden: int = 1, *, inputs: int = 1, layers: int = 1) -> tuple[nn.Module, nn.Module]:
    """Fresh torch.nn modules of this size, created in this order (as torch.nn users write it)."""
    _gates(cell)
    return (
        getattr(nn, cell.module)(inputs, hidden, num_layers=layers, batch_first=True),
        nn.Linear(hidden, cell.n_out),
    )


def init_theta(
    cell: Cell, hidden: int = 1, *, seed: int = 0, init: str = "torch", inputs: int = 1, layers: int = 1
) -> torch.Tensor:
    """The default initialization of torch.nn (``init="torch"``) or of Keras (``"keras"``,
    ``landscape.inits``) for ``seed``, as a flat (P,) float64 vector, drawn without touching the
    caller's random state. For I = H = L = 1 it equals ``landscape.init_params``."""
    check_init(init)
    inputs, layers = check_size(inputs, layers)
    return _init_theta(cell, hidden, check_seed(seed), init, inputs=inputs, layers=layers)


def _init_theta(
    cell: Cell, hidden: int, seed: int, init: str, *, inputs: int = 1, layers: int = 1
) -> torch.Tensor:
    """``init_theta`` past its checks."""
    if init == "torch":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            rnn, head = modules(cell, hidden, inputs=inputs, layers=layers)
        sds = {"rnn": rnn.state_dict(), "head": head.state_dict()}
        keys = shapes(cell, hidden, inputs=inputs, layers=layers)
        return torch.cat([sds[m][k].reshape(-1) for m, k, _ in keys]).to(torch.float64)
    return keras_theta(cell, hidden, seed=seed, inputs=inputs, layers=layers)


def trained_mask(cell: Cell, hidden: int, init: str, *, inputs: int = 1, layers: int = 1) -> torch.Tensor:
    """1 for every trained parameter, 0 for those that stay: (P,). Keras's SimpleRNN, LSTM and GRU
    with reset_after=False have one bias per gate where torch.nn has two; with ``init="keras"``
    the second (bias_hh, 0 at the start) stays 0, so that the model trained is Keras's."""
    keep = torch.ones(n_params(cell, hidden, inputs=inputs, layers=layers))
    if init == "keras" and not (cell.name == "gru" and cell.reset == "after"):
        k = 0
        for _, key, shape in shapes(cell, hidden, inputs=inputs, layers=layers):
            size = int(np.prod(shape))
            if key.startswith("bias_hh_l"):
                keep[k : k + size] = 0
            k += size
    return keep


def unpack(
    cell: Cell, theta: torch.Tensor, hidden: int = 1, *, inputs: int = 1, layers: int = 1
) -> dict[str, torch.Tensor]:
    """(M, P) -> views shaped for the batched step, by state_dict key: weight_ih_l<l> (M, GH, I or
    H), weight_hh_l<l> (M, GH, H), bias_ih_l<l> and bias_hh_l<l> (M, GH, 1), weight (M, K, H),
    bias (M, K), K the readout's outputs."""
    P = n_params(cell, hidden, inputs=inputs, layers=layers)
    if theta.shape[1] != P:
        size = (
            f"{hidden} units"
            + (f", {inputs} inputs" if inputs > 1 else "")
            + (f", {layers} layers" if layers > 1 else "")
        )
        raise InputError(f"a {cell.name} model of {size} has {P} parameters, not {theta.shape[1]}")
    out, k = {}, 0
    M = theta.shape[0]
    for _, key, shape in shapes(cell, hidden, inputs=inputs, layers=layers):
        size = int(np.prod(shape))
        part = theta[:, k : k + size]
        k += size
        out[key] = part.reshape(M, *shape) if len(shape) == 2 else part.reshape(M, shape[0], 1)
    out["bias"] = out["bias"][:, :, 0]  # (M, K)
    return out


def _hh(w: torch.Tensor, h: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """add + W h for a block of models: w (M, GH, H), h (M, H, B), add (M, GH, 1 or B)."""
    if w.shape[2] == 1:
        return torch.addcmul(add, w, h)  # broadcast multiply: no tiny matrix products
    return torch.baddbmm(add.expand(-1, -1, h.shape[2]), w, h)


def _layer_step(cell: Cell, w: torch.Tensor, b: torch.Tensor, ix: torch.Tensor, s: tuple) -> tuple:
    """One step of one layer, in the form of equinox's cells: the hidden terms of every gate from
    one affine map of the state, hh = W_hh h + b_hh (M, GH, B), split into gates beside the input
    terms ix = W_ih x + b_ih (M, GH, B), then the cell's own equations (``Cell.update``)."""
    H = w.shape[2]
    gate = lambda k, t: t[:, k * H : (k + 1) * H]  # noqa: E731 - gate k's rows of a (M, GH, .) block
    hh = _hh(w, s[0], b)  # (M, GH, B): every gate's hidden term in one product

    def hidden(k: int, v: torch.Tensor | None = None) -> torch.Tensor:
        """Gate k's hidden term: of the state (from the fused product), or of another vector v."""
        return gate(k, hh) if v is None else _hh(gate(k, w), v, gate(k, b))

    return cell.update(lambda k: gate(k, ix), hidden, s)


def _input_terms(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """W_ih x_t + b_ih of every step at once: w (M, GH, I), b (M, GH, 1), x (M, B, steps, I) ->
    (M, GH, B, steps)."""
    if w.shape[2] == 1:
        return torch.addcmul(b[..., None], w[..., None], x[:, None, :, :, 0])
    return torch.einsum("mgi,mbti->mgbt", w, x).add_(b[..., None])  # in place: one (M, GH, B, T) block


def final_states(
    cell: Cell,
    theta: torch.Tensor,
    x: torch.Tensor,
    lengths: torch.Tensor,
    hidden: int = 1,
    *,
    inputs: int = 1,
    layers: int = 1,
    sample_lengths: torch.Tensor | None = None,
    every_step: bool = False,
    at: list[int] | None = None,
) -> torch.Tensor:
    """Final states of the top layer of M models on their own batches: theta (M, P), x (M, B, T)
    (one input) or (M, B, T, I), lengths (M,) with every length <= T -> (M, H, B), units first as
    the recurrence keeps them. Model m reads x[m, :, :lengths[m]].

    Models are ordered by length, and a model leaves the batch once its own sequence has ended,
    so a mix of lengths 2..200 costs the sum of the lengths, not 200 times the number of models.
    Every layer steps once per time step, the layer below's new state its input.
    ``sample_lengths`` (B,) or (M, B), if given, ends sample b's sequence after its own number of
    steps (no longer than its model's): its state stops changing there, as for sequences of
    several lengths in one batch. ``every_step`` gives the top layer's state after every step
    instead, (M, H, B, T), for models that all read the T steps (targets at every step); ``at``,
    rising steps, the top layer's state after each of them, (M, H, B, K), from the one pass."""
    x = x[..., None] if x.ndim == 3 else x  # (M, B, T, I)
    M, B = x.shape[:2]
    lengths = lengths.reshape(-1).cpu()
    order = torch.argsort(lengths, stable=True)
    ident = bool((order == torch.arange(M)).all())
    if sample_lengths is not None:
        sample_lengths = sample_lengths.to(x.device).expand(M, B)[:, None, :]  # (M, 1, B)
    if not ident:
        theta, x, lengths = theta[order.to(theta.device)], x[order.to(x.device)], lengths[order]
        if sample_lengths is not None:
            sample_lengths = sample_lengths[order.to(x.device)]
    if (every_step or at) and not bool((lengths == x.shape[2]).all()):
        raise InputError("states of every step need every model to read the whole sequence")
    keep = set(range(1, x.shape[2] + 1)) if every_step else set(at or ())
    p = unpack(cell, theta, hidden, inputs=inputs, layers=layers)
    lstm = cell.name == "lstm"
    tops = []
    s = [tuple(x.new_zeros(M, hidden, B) for _ in range(2 if lstm else 1)) for _ in range(layers)]
    done, t, a = [], 0, 0
    lens = lengths.tolist()
    for end in sorted(set(lens)):
        if end > t:
            seg = {k: v[a:] for k, v in p.items()}  # the models still running, sliced once per segment
            key = lambda name, k, seg=seg: seg[f"{name}_l{k}"]  # noqa: E731
            ix0 = _input_terms(key("weight_ih", 0), key("bias_ih", 0), x[a:, :, t:end])
            for j, ix in enumerate(ix0.unbind(-1)):  # (M_a, GH, B): layer 0's input terms of one step
                for k in range(layers):
                    if k:
                        ix = _hh(key("weight_ih", k), s[k - 1][0], key("bias_ih", k))
                    new = _layer_step(cell, key("weight_hh", k), key("bias_hh", k), ix, s[k])
                    if sample_lengths is not None:  # a sample whose sequence has ended keeps its state
                        going = t + j < sample_lengths[a:]  # (M_a, 1, B)
                        new = tuple(torch.where(going, n, o) for n, o in zip(new, s[k], strict=True))
                    s[k] = new
                if t + j + 1 in keep:
                    tops.append(s[-1][0])
            t = end
        n_end = lens.count(end)
        done.append(s[-1][0][:n_end])
        s = [tuple(v[n_end:] for v in sk) for sk in s]
        a += n_end
    if keep:
        return torch.stack(tops, dim=-1)  # (M, H, B, T): one segment, the models in their own order
    h = torch.cat(done)  # (M, H, B), models in length order
    return h if ident else h[torch.argsort(order).to(h.device)]


def readout_loss(
    cell: Cell,
    theta: torch.Tensor,
    h: torch.Tensor,
    y: torch.Tensor | None,
    objective: str = "bce",
    *,
    units_first: bool = False,
    tol: float = 0.04,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each model's mean loss and accuracy from its final states, whichever engine ran it:
    theta (G, P); h (G, N) (one unit, by name), (G, N, H) as the kernel gives them, or, with
    ``units_first``, (G, H, N) as ``final_states`` does; y (N,) or (G, N) -> (G,), (G,), through
    the cell's own readout and loss: binary cross-entropy on one logit, softmax cross-entropy of
    K classes, or the squared error of one real output (accuracy: within ``tol``)."""
    if cell.head in ("softmax", "linear"):
        h = h[..., None] if h.ndim == 2 else h  # (G, N, 1): one unit
        z = outputs(cell, theta, h.transpose(1, 2) if units_first else h)  # (G, N, K)
        return softmax_loss(z, y) if cell.head == "softmax" else squared_loss(z[..., 0], y, tol)
    if h.ndim == 3:  # H units: the readout nn.Linear(H, K)
        logits = _logits(cell, _head(cell, theta, h.shape[1] if units_first else h.shape[2]), h, units_first)
        return classification_loss(logits, y, clip=cell.clip)
    return readout(cell, cell.split(theta), h, y, objective)


def outputs(cell: Cell, theta: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The readout nn.Linear(H, K) of final states h (G, N, H): (G, N, K)."""
    p = _head(cell, theta, h.shape[2])
    return torch.bmm(h, p["weight"].transpose(1, 2)) + p["bias"][:, None]


def _head(cell: Cell, theta: torch.Tensor, hidden: int) -> dict[str, torch.Tensor]:
    """The readout's weight (M, K, H) and bias (M, K): the last K H + K values of every row."""
    K, M = cell.n_out, theta.shape[0]
    tail = theta[:, theta.shape[1] - K * hidden - K :]
    return {"weight": tail[:, : K * hidden].reshape(M, K, hidden), "bias": tail[:, K * hidden :]}


def forward_logits(
    cell: Cell,
    theta: torch.Tensor,
    x: torch.Tensor,
    lengths: torch.Tensor,
    hidden: int = 1,
    *,
    inputs: int = 1,
    layers: int = 1,
) -> torch.Tensor:
    """Readout logits of M models on their own batches: theta (M, P), x (M, B, T) or (M, B, T, I),
    lengths (M,) with every length <= T -> (M, B). Model m reads x[m, :, :lengths[m]]."""
    h = final_states(cell, theta, x, lengths, hidden, inputs=inputs, layers=layers)
    return _logits(cell, _head(cell, theta, hidden), h, True)


def _logits(cell: Cell, p: dict, h: torch.Tensor, units_first: bool) -> torch.Tensor:
    """The readout nn.Linear(H, K) on final states (G, N, H), or (G, H, N) ``units_first``: the logit
    of class 1 against class 0, (G, N). Each layout keeps its own product, so that each engine's
    numbers are the bits they have always been."""
    if units_first:
        z = torch.bmm(p["weight"], h) + p["bias"][..., None]  # (G, K, N)
        return z[:, 0] if cell.n_out == 1 else z[:, 1] - z[:, 0]
    z = torch.bmm(h, p["weight"].transpose(1, 2)) + p["bias"][:, None]  # (G, N, K)
    return z[..., 0] if cell.n_out == 1 else z[..., 1] - z[..., 0]


def model_losses(cell: Cell, theta: torch.Tensor, data, at: list[int] | None = None):
    """The reference path's loss and accuracy of G models of the cell's size, theta (G, P) (or one,
    (P,)), on ``data`` (a ``landscape.tasks.TaskData``, inputs (N, T) or (N, T, I) shared by every
    model): one unit through ``landscape.cells.reference_losses``, beyond it the batched forward
    pass of this module. Pure and differentiable in theta. With ``at`` (rising steps; data scored
    once per sequence, G models), a (loss, accuracy) per step, from one pass."""
    if not cell.batched and data.steps is None and not data.per_step:
        return reference_losses(cell, theta, data, at)
    th = theta[None] if theta.ndim == 1 else theta
    G = th.shape[0]
    x = data.x.to(th.dtype).expand(G, *data.x.shape)  # (G, N, T) or (G, N, T, I): a view, not a copy
    lengths = torch.full((G,), data.length, dtype=torch.long)
    h = final_states(
        cell,
        th,
        x,
        lengths,
        cell.hidden,
        inputs=cell.inputs,
        layers=cell.layers,
        sample_lengths=data.steps,
        every_step=data.per_step,
        at=at,
    )
    y = data.y.to(th.dtype)
    if at is not None:  # (G, H, N, K): the top state after each step of ``at``
        return [
            readout_loss(cell, th, h[..., k].contiguous(), y, units_first=True, tol=data.tol)
            for k in range(len(at))
        ]
    if data.per_step:  # every step of every sample is one scored position: (G, H, N T) against (N T,)
        h, y = h.reshape(G, h.shape[1], -1), y.reshape(-1)
    loss, acc = readout_loss(cell, th, h, y, units_first=True, tol=data.tol)
    return (loss, acc) if theta.ndim == 2 else (loss[0], acc[0])
