"""Single-unit recurrences, each written once as a pure function of (params, state, input).

A parameter is anything that broadcasts against the state: a Python float for one model, or a
``(G, 1)`` column for a grid of G models run on N samples at once, giving ``(G, N)`` states.
The equations, gate order and parameter layout are torch.nn's (``nn.RNN``, ``nn.LSTM``,
``nn.GRU`` with ``input_size=1, hidden_size=1``); ``pascanu`` is the one-unit map of Pascanu et
al. 2013, section 2.3, which has no input. A cell's head reads its final state out
(``Cell.logit``) and scores it (``readout``): binary cross-entropy on the logit of class 1
against class 0, or, for Pascanu's map, the distance of sigmoid(x_T) from its target.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import torch
import torch.nn.functional as F

from ._errors import InputError

__all__ = [
    "Cell",
    "CELLS",
    "HEADS",
    "GRU_RESETS",
    "GATES",
    "hard_sigmoid",
    "get_cell",
    "as_cell",
    "run",
    "tensor_shapes",
    "check_model_size",
    "MAX_SIZE",
    "reference_losses",
    "readout",
    "classification_loss",
    "pascanu_loss",
    "KERAS_EPSILON",
    "softmax_loss",
    "squared_loss",
    "KERNEL_HEADS",
    "MAX_CLASSES",
]

Params = dict  # scalar parameter name -> tensor broadcasting against the state
State = tuple  # one or two tensors, (G, N) each
Terms = Callable[[int], torch.Tensor]  # gate k -> its input term W_ih,k x + b_ih,k, or hidden term
KERAS_EPSILON = 1e-7  # Keras clips probabilities to [eps, 1 - eps] before taking their log
PASCANU_TARGET = 0.7  # Pascanu's map is trained towards sigmoid(x_T) = 0.7


# The equations of torch.nn's cells, written once, for any hidden size and any batch layout: ``xi(k)``
# is gate k's input term W_ih,k x + b_ih,k and ``hh(k)`` its hidden term W_hh,k h + b_hh,k, each
# shaped like the state. A grid of one-unit models gives them as (G, 1) columns times (G, N) states
# (``step`` below); an ensemble of H-unit models as slices of one (M, gates*H, B) product
# (``landscape.units``).


def rnn_update(xi: Terms, hh: Terms, s: State) -> State:
    return (torch.tanh(xi(0) + hh(0)),)


def hard_sigmoid(z: torch.Tensor) -> torch.Tensor:
    """Keras 2's gate function (Keras 3's hard_sigmoid has slope 1/6, not 0.2)."""
    return torch.clamp(0.2 * z + 0.5, 0.0, 1.0)


# The gate functions of the gated cells' i, f, o (LSTM) and r, z (GRU), by the word --gate takes:
# the logistic sigmoid of torch.nn and Keras >= 2.3, or Keras 2.1's hard_sigmoid, which the posted
# experiment ran with (Keras's recurrent_activation default of its day).
GATES = {"sigmoid": torch.sigmoid, "hard_sigmoid": hard_sigmoid}


def lstm_update(xi: Terms, hh: Terms, s: State, gate: Callable = torch.sigmoid) -> State:
    h, c = s
    i = gate(xi(0) + hh(0))  # input gate
    f = gate(xi(1) + hh(1))  # forget gate
    g = torch.tanh(xi(2) + hh(2))  # cell candidate
    o = gate(xi(3) + hh(3))  # output gate
    c = f * c + i * g
    return o * torch.tanh(c), c


def gru_update(xi: Terms, hh: Terms, s: State, gate: Callable = torch.sigmoid) -> State:
    (h,) = s
    r = gate(xi(0) + hh(0))  # reset gate
    z = gate(xi(1) + hh(1))  # update gate
    n = torch.tanh(xi(2) + r * hh(2))  # candidate: the reset gate scales the whole hidden term
    return ((1 - z) * n + z * h,)


def gru_reset_before_update(xi: Terms, hh: Terms, s: State, gate: Callable = torch.sigmoid) -> State:
    """Keras before 2.3 (``reset_after=False``): the reset gate scales the state before the
    recurrent product, n = tanh(W_in x + b_in + W_hn (r h) + b_hn)."""
    (h,) = s
    r = gate(xi(0) + hh(0))  # reset gate
    z = gate(xi(1) + hh(1))  # update gate
    n = torch.tanh(xi(2) + hh(2, r * h))  # candidate: the hidden term of the reset state
    return ((1 - z) * n + z * h,)


def _one_unit(update: Callable, gates: str) -> Callable[[Params, State, torch.Tensor], State]:
    """The step of a grid of one-unit models: scalar parameters by name, broadcast over (G, N)."""
    wi, bi, wh, bh = (
        tuple(f"{w}_{g}" if gates else w for g in (gates or " ")) for w in ("w_ih", "b_ih", "w_hh", "b_hh")
    )

    def step(p: Params, s: State, x: torch.Tensor) -> State:
        h = s[0]
        return update(
            lambda k: p[wi[k]] * x + p[bi[k]], lambda k, v=h: p[wh[k]] * v + p[bh[k]], s
        )  # v: the state, unless given

    return step


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


# Readouts: one logit (nn.Linear(H, 1), binary cross-entropy), or Keras's Dense(2, softmax) with
# sparse categorical cross-entropy (nn.Linear(H, 2)); the second is the first with the logit
# z_1 - z_0, reparametrized, and is what the posted Keras models used.
HEADS = {
    "logit": (("weight", ("w_out",)), ("bias", ("b_out",))),
    "softmax2": (("weight", ("w_out_0", "w_out_1")), ("bias", ("b_out_0", "b_out_1"))),
    # K classes (softmax cross-entropy over nn.Linear(H, K)), and one real output (squared error)
    "softmax": (),
    "linear": (("weight", ("w_out",)), ("bias", ("b_out",))),
}
KERNEL_HEADS = ("logit", "softmax2")  # the readouts the fused kernel reduces to one logit
MAX_CLASSES = 1024
_HEAD = HEADS["logit"]
GRU_RESETS = ("after", "before")  # torch.nn and Keras >= 2.3; Keras before 2.3 (reset_after=False)
MAX_SIZE = 1024  # units, inputs and layers of a model (the fused kernel runs up to 64 of each)


def _indexed_names(tensors) -> tuple[str, ...]:
    """``key[i,j]`` and ``key[i]`` for every scalar of (module, key, shape) tensors, in order."""
    out = []
    for _, key, shape in tensors:
        if len(shape) == 2:
            out += [f"{key}[{i},{j}]" for i in range(shape[0]) for j in range(shape[1])]
        else:
            out += [f"{key}[{i}]" for i in range(shape[0])]
    return tuple(out)


def tensor_shapes(
    cell: Cell, hidden: int = 1, inputs: int = 1, layers: int = 1
) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """(module, state_dict key, shape) of every tensor of ``nn.RNN/LSTM/GRU(inputs, hidden,
    num_layers=layers)`` + ``nn.Linear(hidden, K)``, in the order of the flat vector (for
    Pascanu's map, its two scalars)."""
    if not cell.gates:
        return tuple(("rnn", key, (1,)) for key, _ in cell.layout[0][1])
    gh = cell.gates * hidden
    out = []
    for k in range(layers):
        out += [
            ("rnn", f"weight_ih_l{k}", (gh, inputs if k == 0 else hidden)),
            ("rnn", f"weight_hh_l{k}", (gh, hidden)),
            ("rnn", f"bias_ih_l{k}", (gh,)),
            ("rnn", f"bias_hh_l{k}", (gh,)),
        ]
    return tuple(out + [("head", "weight", (cell.n_out, hidden)), ("head", "bias", (cell.n_out,))])


@dataclass(frozen=True)
class Cell:
    """A recurrence and the layout of its parameters.

    ``step(params, state, x)`` advances a grid of one-unit models; ``update(xi, hh, state)`` is the
    same equations in terms of each gate's input and hidden terms, shared with the H-unit
    ensembles of ``landscape.units``.

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
    update: Callable | None = None  # the equations in gate terms (torch.nn cells), for any hidden size
    head: str = "logit"  # the readout: a key of HEADS, or "" for a cell without one
    reset: str = "after"  # gru only: where the reset gate acts (GRU_RESETS)
    gates: int = 1  # gate blocks of torch.nn's weight_ih_l0 (0: no torch.nn module)
    default_task: str = "latching"  # the task a slice uses unless told
    default_plane: tuple = ()  # (x name, y name, x range, y range, (nx, ny)) of the default axis plane
    center: tuple | None = None  # the "initial" parameters of a cell without torch.nn's init
    kernel: str = ""  # its entry in the fused kernel's table (landscape.engine.table.KERNEL)
    gate: str = "sigmoid"  # the gated cells' gate function (GATES)
    classes: int = 0  # the softmax head's K classes (0 for the other heads)
    hidden: int = 1  # units per layer (H): nn.RNN/LSTM/GRU(inputs, hidden, num_layers=layers)
    inputs: int = 1  # features per step (I)
    layers: int = 1  # stacked layers (L)

    @property
    def sized(self) -> bool:
        """Whether the model is beyond one unit, one input and one layer (``landscape.units``'s
        layout, named by state_dict key and index)."""
        return self.hidden != 1 or self.inputs != 1 or self.layers != 1

    @property
    def tensors(self) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
        """(module, state_dict key, shape) of every tensor, in the order of the flat vector."""
        return tensor_shapes(self, self.hidden, self.inputs, self.layers)

    @property
    def n_params(self) -> int:
        return sum(math.prod(shape) for _, _, shape in self.tensors)

    @functools.cached_property
    def param_names(self) -> tuple[str, ...]:
        """A name for every scalar of the flat vector: one unit's short names (w_hh, b_hh_f, ...),
        or beyond one unit ``weight_hh_l0[3,5]``, ``bias_ih_l1[2]``, ``weight[0,4]`` (the head's
        keys are nn.Linear's)."""
        if not self.sized:
            return tuple(n for _, pairs in self.layout for _, names in pairs for n in names)
        return _indexed_names(self.tensors)

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        index = {n: k for k, n in enumerate(self.param_names)}
        if not self.sized and self.module:  # state_dict names of one unit: weight_hh_l0[2,0] is w_hh_g
            index.update({n: k for k, n in enumerate(_indexed_names(self.tensors))})
        if self.sized and self.module:  # one unit's short names: unit 0 of layer 0, and the head's
            H, (_, rnn), (_, head) = self.hidden, self.layout[0], self.layout[1]
            for key, names in rnn:
                for g, short in enumerate(names):
                    full = f"{key}[{g * H},0]" if key.startswith("weight") else f"{key}[{g * H}]"
                    index[short] = index[full]
            for key, names in head:
                for k, short in enumerate(names):
                    index[short] = index[f"{key}[{k},0]" if key == "weight" else f"{key}[{k}]"]
        return index

    def index(self, name: str) -> int | None:
        """Where a named scalar sits in the flat vector, or None. Beyond one unit, one unit's short
        names stay as aliases of the first unit's scalars (``w_hh_g`` is ``weight_hh_l0[2H,0]``)."""
        return self._index.get(name) if isinstance(name, str) else None

    def names_hint(self) -> str:
        """The valid parameter names, in a line: all of them for one unit, else their patterns."""
        if not self.sized:
            return ", ".join(self.param_names) + (
                " (or their state_dict names, weight_hh_l0[0,0], ...)" if self.module else ""
            )
        parts = [
            f"{key}[i,j] (i < {s[0]}, j < {s[1]})" if len(s) == 2 else f"{key}[i] (i < {s[0]})"
            for _, key, s in self.tensors
        ]
        return ", ".join(parts) + "; or one unit's short names (w_hh, b_hh, ...) for unit 0"

    def size_text(self) -> str:
        """'8 units, 3 inputs, 2 layers' (the parts beyond 1), or '1 unit'."""
        parts = [f"{self.hidden} unit{'s' if self.hidden > 1 else ''}"]
        parts += [f"{v} {w}" for v, w in ((self.inputs, "inputs"), (self.layers, "layers")) if v > 1]
        return ", ".join(parts)

    @property
    def n_out(self) -> int:
        """Outputs of the readout: 1 (logit, linear), 2 (softmax2) or K (softmax)."""
        return {"softmax2": 2, "softmax": self.classes}.get(self.head, 1)

    @property
    def objective(self) -> str:
        """The loss its readout is scored by: "bce" (one logit or Keras's two outputs), "ce" (K
        classes), "mse" (a real output), or "pascanu" for the map without readout."""
        return {"softmax": "ce", "linear": "mse", "": "pascanu"}.get(self.head, "bce")

    @property
    def batched(self) -> bool:
        """Whether the model runs as ``landscape.units``'s batched forward pass (more than one unit,
        input or layer, or a readout of K classes or a real output) rather than the one-unit grid
        step of ``run``."""
        return self.sized or self.head not in KERNEL_HEADS + ("",)

    @property
    def clip(self) -> float:
        """Probability clip of the loss: Keras's for its softmax readout, none for a logit."""
        return KERAS_EPSILON if self.head == "softmax2" else 0.0

    def split(self, theta: torch.Tensor) -> Params:
        """Flat parameters (G, P) -> name -> (G, 1) column; a (P,) vector gives 0-d scalars (one
        unit only: beyond it, ``landscape.units.unpack`` shapes the tensors)."""
        if self.sized:
            raise InputError(
                f"a {self.name} model of {self.size_text()} has no scalar split; use landscape.units.unpack"
            )
        if theta.ndim == 1:
            return {n: theta[k] for k, n in enumerate(self.param_names)}
        return {n: theta[:, k : k + 1] for k, n in enumerate(self.param_names)}

    def logit(self, p: Params, h: torch.Tensor) -> torch.Tensor:
        """The classification logit (class 1 against class 0) of final states h, by parameter name."""
        if self.head == "softmax2":
            return (p["w_out_1"] * h + p["b_out_1"]) - (p["w_out_0"] * h + p["b_out_0"])
        return p["w_out"] * h + p["b_out"]


def _torch_cell(
    name: str, module: str, gates: str, update: Callable, n_state: int, work: int, plane: tuple
) -> Cell:
    return Cell(
        name,
        _one_unit(update, gates),
        (("rnn", _gated(gates)), ("head", _HEAD)),
        n_state,
        True,
        0.0,
        work,
        module,
        update,
        gates=max(len(gates), 1),
        default_task="latching",
        default_plane=plane,
        kernel=name,
    )


# Every per-cell fact lives here: adding a cell is one entry. Default planes: the recurrent
# weight against the bias of the gate that decides what is kept, centred on torch.nn's init.
CELLS: dict[str, Cell] = {
    "rnn": _torch_cell(
        "rnn", "RNN", "", rnn_update, 1, 6, ("w_hh", "b_hh", (-4.0, 4.0), (-4.0, 4.0), (51, 51))
    ),
    "lstm": _torch_cell(
        "lstm", "LSTM", "ifgo", lstm_update, 2, 16, ("w_hh_g", "b_hh_f", (-4.0, 4.0), (-4.0, 4.0), (51, 51))
    ),
    "gru": _torch_cell(
        "gru", "GRU", "rzn", gru_update, 1, 14, ("w_hh_n", "b_hh_z", (-4.0, 4.0), (-4.0, 4.0), (51, 51))
    ),
    # Pascanu's map has no torch.nn module and no readout; its "checkpoint" holds two 1-element
    # tensors, and its "initial" centre is the middle of Fig. 6, around the wall at w = 5.
    "pascanu": Cell(
        "pascanu",
        _pascanu,
        (("rnn", (("w", ("w",)), ("b", ("b",)))),),
        1,
        False,
        0.5,
        4,
        "",
        head="",
        gates=0,
        default_task="pascanu",
        default_plane=("w", "b", (4.5, 5.5), (-3.0, -2.0), (101, 1001)),
        center=(5.0, -2.5),
        kernel="pascanu",
    ),
}


def get_cell(
    name: str,
    *,
    head: str = "logit",
    gru_reset: str = "after",
    gate: str = "sigmoid",
    hidden: int = 1,
    inputs: int = 1,
    layers: int = 1,
    classes: int | None = None,
) -> Cell:
    """The cell registered under ``name``, with its readout ``head`` (HEADS), for gru where the
    reset gate acts (GRU_RESETS), for lstm and gru the gate function (GATES), and its size:
    ``hidden`` units in each of ``layers`` layers on ``inputs`` features per step, and for the
    ``softmax`` head its number of ``classes``; an unknown name raises InputError with the valid
    ones."""
    cell = _get_cell(name, head, gru_reset, gate, classes)
    size = check_model_size(hidden, inputs, layers)
    if size != (1, 1, 1):
        if not cell.module:
            raise InputError(
                f"cell {name!r} is one unit without input; valid cells of {size[0]} units, "
                f"{size[1]} inputs and {size[2]} layers: rnn, lstm, gru"
            )
        cell = replace(cell, hidden=size[0], inputs=size[1], layers=size[2])
    return cell


def check_model_size(hidden, inputs, layers) -> tuple[int, int, int]:
    """(hidden, inputs, layers), each an integer from 1 to MAX_SIZE, or InputError naming it."""
    for what, v in (("hidden units", hidden), ("inputs", inputs), ("layers", layers)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or not 1 <= v <= MAX_SIZE:
            raise InputError(f"{what} {v!r} must be an integer from 1 to {MAX_SIZE}")
    return int(hidden), int(inputs), int(layers)


def _get_cell(name: str, head: str, gru_reset: str, gate: str, classes: int | None) -> Cell:
    """``get_cell`` of one unit."""
    if not isinstance(name, str) or name not in CELLS:
        raise InputError(f"unknown cell {name!r}; valid cells: {', '.join(CELLS)}")
    if head not in HEADS:
        raise InputError(f"unknown head {head!r}; valid heads: {', '.join(HEADS)}")
    if head == "softmax" and not (
        isinstance(classes, int) and not isinstance(classes, bool) and 2 <= classes <= MAX_CLASSES
    ):
        raise InputError(
            f"the softmax head needs its number of classes, an integer from 2 to {MAX_CLASSES}, "
            f"not {classes!r}"
        )
    if head != "softmax" and classes not in (0, None):
        raise InputError(f"classes {classes!r} belong to the softmax head, not {head!r}")
    if gru_reset not in GRU_RESETS:
        raise InputError(f"unknown GRU reset {gru_reset!r}; valid: {', '.join(GRU_RESETS)}")
    cell = CELLS[name]
    if not cell.module and head != "logit":
        raise InputError(
            f"cell {name!r} has no readout, so no head {head!r}; valid cells for it: rnn, lstm, gru"
        )
    if name != "gru" and gru_reset != "after":
        raise InputError(f"the reset gate {gru_reset!r} is a GRU's; cell {name!r} has none (valid: gru)")
    if gate not in GATES:
        raise InputError(f"unknown gate {gate!r}; valid gates: {', '.join(GATES)}")
    if name not in ("lstm", "gru") and gate != "sigmoid":
        raise InputError(f"cell {name!r} has no gates, so no gate function {gate!r} (valid: lstm, gru)")
    if not cell.module:
        return cell  # Pascanu's map has no readout and no gates
    if head == "softmax":
        names = (
            ("weight", tuple(f"w_out_{k}" for k in range(classes))),
            ("bias", tuple(f"b_out_{k}" for k in range(classes))),
        )
        cell = replace(cell, layout=(cell.layout[0], ("head", names)), head=head, classes=classes)
    elif head != cell.head:
        cell = replace(cell, layout=(cell.layout[0], ("head", HEADS[head])), head=head)
    if name == "gru" and gru_reset == "before":
        cell = replace(cell, update=gru_reset_before_update, reset="before", kernel="gru_before")
    if gate != "sigmoid" or cell.reset == "before":
        update = partial(cell.update, gate=GATES[gate]) if gate != "sigmoid" else cell.update
        gates = {"lstm": "ifgo", "gru": "rzn"}[name]
        cell = replace(cell, step=_one_unit(update, gates), update=update, gate=gate)
    return cell


def as_cell(cell: Cell | str) -> Cell:
    """A Cell as given, or the one registered under a name; anything else is an InputError."""
    return cell if isinstance(cell, Cell) else get_cell(cell)


def run(
    cell: Cell,
    p: Params,
    x: torch.Tensor | None,
    length: int,
    stop: torch.Tensor | None = None,
    at: list[int] | None = None,
) -> torch.Tensor | list[torch.Tensor]:
    """The hidden state after ``length`` steps.

    x: (N, T) inputs shared by all models, or (G, N, T) inputs of each model's own, with
    T >= length; None for a cell without input.
    p: scalar name -> tensor broadcasting against (G, N), e.g. (G, 1) columns.
    stop: optional (G, 1) integer lengths <= length: model g's state stops changing after
    stop[g] steps, so that models of several lengths run as one batch.
    Returns h_T broadcast to (G, N) (or (G, 1) without input); with ``at``, rising steps up to
    ``length``, the list of states after each of them, from the one pass.
    """
    ref = next(iter(p.values()))
    s0 = torch.full((1, 1), cell.x0, dtype=ref.dtype, device=ref.device)
    s: State = (s0,) * cell.n_state
    kept, keep = [], set(at or ())
    for t in range(length):
        new = cell.step(p, s, None if x is None else x[..., t])  # (G, N) each
        s = new if stop is None else tuple(torch.where(t < stop, a, b) for a, b in zip(new, s, strict=True))
        if t + 1 in keep:
            kept.append(s[0])
    return s[0] if at is None else kept


def reference_losses(cell: Cell, theta: torch.Tensor, data, at: list[int] | None = None):
    """The readable path's loss and accuracy of G models theta (G, P) (or one, (P,)) on ``data``
    (a ``landscape.tasks.TaskData``): ``run`` from x0, then the head's ``readout``. Pure and
    differentiable in theta. With ``at`` (rising steps), a (loss, accuracy) per step, from one run."""
    p = cell.split(theta)  # name -> (G, 1)
    if at is None:
        return readout(cell, p, run(cell, p, data.x, data.length), data.y, data.objective)
    return [readout(cell, p, h, data.y, data.objective) for h in run(cell, p, data.x, data.length, at=at)]


def readout(
    cell: Cell, p: Params, h: torch.Tensor, y: torch.Tensor | None, objective: str = "bce"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each model's loss and accuracy from its final states h (G, N): the head's cross-entropy
    against the labels y, or Pascanu's target for the input-free map (no accuracy)."""
    if objective == "pascanu":
        return pascanu_loss(h), None
    return classification_loss(cell.logit(p, h), y, clip=cell.clip)


def classification_loss(
    logits: torch.Tensor, y: torch.Tensor, *, clip: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy over samples: logits (G, N), y (N,) or (G, N) -> (G,), (G,).

    ``logits`` is the logit of class 1 against class 0 (for two softmax outputs, z_1 - z_0).
    ``clip`` > 0 computes the loss as Keras does, -log(clip(p_y, clip, 1 - clip)): equal to the
    exact cross-entropy except for a sample whose class has probability below ``clip``, whose loss
    stops at -log(clip) and whose gradient vanishes.
    """
    if clip:
        p = torch.sigmoid(torch.where(y > 0.5, logits, -logits))  # probability of the true class
        loss = -torch.log(torch.clamp(p, clip, 1 - clip))
    else:
        loss = F.binary_cross_entropy_with_logits(logits, y.expand_as(logits), reduction="none")
        # an infinite logit is a certain answer: its loss is 0 or +inf, where the formula gives NaN
        certain = torch.where((logits > 0) == (y > 0.5), 0.0, float("inf")).to(loss.dtype)
        loss = torch.where(torch.isinf(logits), certain, loss)
    acc = ((logits > 0) == (y > 0.5)).to(logits.dtype)  # (G, N)
    acc = acc.masked_fill(torch.isnan(logits), float("nan"))  # a NaN logit is no answer, not "negative"
    return loss.mean(-1), acc.mean(-1)


def softmax_loss(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean softmax cross-entropy and accuracy over samples: outputs z (G, N, K), class indices y
    (N,) or (G, N) held as floats -> (G,), (G,). A NaN output is no answer."""
    G, N, K = z.shape
    yi = y.long().expand(G, N)
    loss = F.cross_entropy(z.reshape(G * N, K), yi.reshape(-1), reduction="none").reshape(G, N)
    acc = (z.argmax(-1) == yi).to(z.dtype).masked_fill(torch.isnan(z).any(-1), float("nan"))
    return loss.mean(-1), acc.mean(-1)


def squared_loss(z: torch.Tensor, y: torch.Tensor, tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean squared error and the fraction of samples within ``tol`` of their target: one real
    output z (G, N), targets y (N,) or (G, N) -> (G,), (G,)."""
    err = z - y
    right = (err.abs() < tol).to(z.dtype).masked_fill(torch.isnan(z), float("nan"))
    return (err * err).mean(-1), right.mean(-1)


def pascanu_loss(x_last: torch.Tensor) -> torch.Tensor:
    """(sigmoid(x_T) - 0.7)^2: (G, 1) -> (G,)."""
    return ((torch.sigmoid(x_last) - PASCANU_TARGET) ** 2)[:, 0]
