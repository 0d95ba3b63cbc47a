"""Single-unit recurrences, each written once as a pure function of (params, state, input).

A parameter is anything that broadcasts against the state: a Python float for one model, or a
``(G, 1)`` column for a grid of G models run on N samples at once, giving ``(G, N)`` states.
The equations, gate order and parameter layout are torch.nn's (``nn.RNN``, ``nn.LSTM``,
``nn.GRU`` with ``input_size=1, hidden_size=1``); ``pascanu`` is the one-unit map of Pascanu et
al. 2013, section 2.3, which has no input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._errors import InputError

__all__ = ["Cell", "CELLS", "get_cell", "run"]

Params = dict  # scalar parameter name -> tensor broadcasting against the state
State = tuple  # one or two tensors, (G, N) each


def _rnn(p: Params, s: State, x: torch.Tensor) -> State:
    (h,) = s
    return (torch.tanh(p["w_ih"] * x + p["b_ih"] + p["w_hh"] * h + p["b_hh"]),)


def _pre(p: Params, gate: str, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """One gate's pre-activation, in nn.LSTM's order of terms."""
    return p["w_ih_" + gate] * x + p["b_ih_" + gate] + p["w_hh_" + gate] * h + p["b_hh_" + gate]


def _lstm(p: Params, s: State, x: torch.Tensor) -> State:
    h, c = s
    i = torch.sigmoid(_pre(p, "i", x, h))  # input gate
    f = torch.sigmoid(_pre(p, "f", x, h))  # forget gate
    g = torch.tanh(_pre(p, "g", x, h))  # cell candidate
    o = torch.sigmoid(_pre(p, "o", x, h))  # output gate
    c = f * c + i * g
    return o * torch.tanh(c), c


def _gru(p: Params, s: State, x: torch.Tensor) -> State:
    (h,) = s
    r = torch.sigmoid(_pre(p, "r", x, h))  # reset gate
    z = torch.sigmoid(_pre(p, "z", x, h))  # update gate
    n = torch.tanh(p["w_ih_n"] * x + p["b_ih_n"] + r * (p["w_hh_n"] * h + p["b_hh_n"]))
    return ((1 - z) * n + z * h,)


def _pascanu(p: Params, s: State, x: None) -> State:
    (v,) = s
    return (p["w"] * torch.sigmoid(v) + p["b"],)


def _gated(gates: str) -> tuple:
    """torch.nn's layout for a gated cell: tensor key -> one scalar name per gate row."""
    return tuple(
        (key, tuple(f"{short}_{gate}" for gate in gates) if gates else (short,))
        for key, short in (
            ("weight_ih_l0", "w_ih"),
            ("weight_hh_l0", "w_hh"),
            ("bias_ih_l0", "b_ih"),
            ("bias_hh_l0", "b_hh"),
        )
    )


_HEAD = (("weight", ("w_out",)), ("bias", ("b_out",)))


@dataclass(frozen=True)
class Cell:
    """A recurrence and the layout of its parameters.

    ``layout`` maps each module ("rnn" for the recurrent module, "head" for the ``nn.Linear(1, 1)``
    readout) to ``(state_dict key, scalar names)`` pairs, in ``state_dict`` order; the flat
    parameter vector lists the scalars in that order. ``x0`` is the initial state value;
    ``work`` is a rough count of (G, N) temporaries alive during one step, used to size chunks.
    """

    name: str
    step: Callable[[Params, State, torch.Tensor], State]
    layout: tuple
    n_state: int
    takes_input: bool
    x0: float
    work: int
    module: str  # the torch.nn class it mirrors, or "" for none

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(n for _, pairs in self.layout for _, names in pairs for n in names)


CELLS: dict[str, Cell] = {
    "rnn": Cell("rnn", _rnn, (("rnn", _gated("")), ("head", _HEAD)), 1, True, 0.0, 6, "RNN"),
    "lstm": Cell("lstm", _lstm, (("rnn", _gated("ifgo")), ("head", _HEAD)), 2, True, 0.0, 16, "LSTM"),
    "gru": Cell("gru", _gru, (("rnn", _gated("rzn")), ("head", _HEAD)), 1, True, 0.0, 14, "GRU"),
    # Pascanu's map has no torch.nn module; its "checkpoint" holds two 1-element tensors.
    "pascanu": Cell("pascanu", _pascanu, (("rnn", (("w", ("w",)), ("b", ("b",)))),), 1, False, 0.5, 4, ""),
}


def get_cell(name: str) -> Cell:
    """The cell registered under ``name``; an unknown name raises InputError with the valid ones."""
    if name not in CELLS:
        raise InputError(f"unknown cell {name!r}; valid cells: {', '.join(CELLS)}")
    return CELLS[name]


def run(cell: Cell, p: Params, x: torch.Tensor | None, length: int,
        stop: torch.Tensor | None = None) -> torch.Tensor:
    """The hidden state after ``length`` steps.

    x: (N, T) inputs shared by all models, or (G, N, T) inputs of each model's own, with
    T >= length; None for a cell without input.
    p: scalar name -> tensor broadcasting against (G, N), e.g. (G, 1) columns.
    stop: optional (G, 1) integer lengths <= length: model g's state stops changing after
    stop[g] steps, so that models of several lengths run as one batch.
    Returns h_T broadcast to (G, N) (or (G, 1) without input).
    """
    ref = next(iter(p.values()))
    s0 = torch.full((1, 1), cell.x0, dtype=ref.dtype, device=ref.device)
    s: State = (s0,) * cell.n_state
    for t in range(length):
        new = cell.step(p, s, None if x is None else x[..., t])  # (G, N) each
        s = new if stop is None else tuple(torch.where(t < stop, a, b) for a, b in zip(new, s, strict=True))
    return s[0]
