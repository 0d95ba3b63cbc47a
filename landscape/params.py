"""Parameters: named scalars, the flat vector, torch.nn initialization and checkpoints.

The flat vector theta lists every scalar of the recurrent module and the readout in
``state_dict`` order (``Cell.param_names``). A checkpoint is what torch.nn users already save::

    torch.save({"cell": "lstm", "rnn": nn.LSTM(1, 1).state_dict(),
                "head": nn.Linear(1, 1).state_dict()}, "model.pt")

and it is read with ``torch.load(..., weights_only=True)``, which never executes code.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from ._errors import ConfigError, InputError, check_seed, check_vector
from ._io import MAX_LOAD, atomic_write, open_regular
from .cells import CELLS, Cell, as_cell, check_model_size, get_cell
from .inits import check_init
from .units import _init_theta

__all__ = [
    "init_params",
    "to_state_dicts",
    "from_state_dicts",
    "load_checkpoint",
    "save_checkpoint",
    "to_modules",
    "CENTERS",
    "read_checkpoint",
    "from_modules",
    "checkpoint_size",
    "state_dict_size",
]


def to_modules(cell: Cell | str, theta: torch.Tensor | None = None) -> tuple[nn.Module, nn.Module]:
    """Fresh ``nn.RNN/LSTM/GRU(I, H, num_layers=L, batch_first=True)`` and ``nn.Linear(H, K)``
    modules of the cell's size, holding theta if given."""
    cell = as_cell(cell)
    if not cell.module:
        raise InputError(f"cell {cell.name!r} has no torch.nn module")
    rnn = getattr(nn, cell.module)(cell.inputs, cell.hidden, num_layers=cell.layers, batch_first=True)
    head = nn.Linear(cell.hidden, cell.n_out)
    if theta is not None:
        sds = to_state_dicts(cell, check_vector(theta, cell.n_params, "theta"))
        rnn.load_state_dict(sds["rnn"])
        head.load_state_dict(sds["head"])
    return rnn, head


def from_modules(
    *modules: nn.Module, gru_reset: str = "after", gate: str = "sigmoid"
) -> tuple[Cell, torch.Tensor]:
    """The cell and flat (P,) float64 parameters of a user's own torch.nn model: an
    ``nn.RNN/LSTM/GRU`` (any input and hidden size, any layers, ``batch_first`` either way) and
    its readout ``nn.Linear(H, 1)`` (one logit) or ``nn.Linear(H, 2)`` (two softmax outputs), given
    as the two modules or as one ``nn.Module`` holding exactly those two. Anything else is an
    InputError naming what was found and what is supported."""
    found = list(modules)
    if (
        len(found) == 1
        and isinstance(found[0], nn.Module)
        and not isinstance(found[0], (nn.RNNBase, nn.Linear))
    ):
        found = list(found[0].children())
    kinds = [type(m).__name__ for m in found]
    rnns = [m for m in found if type(m) in (nn.RNN, nn.LSTM, nn.GRU)]
    heads = [m for m in found if type(m) is nn.Linear]
    if len(found) != 2 or len(rnns) != 1 or len(heads) != 1:
        raise InputError(
            f"found modules {kinds or 'none'}; supported: one nn.RNN, nn.LSTM or nn.GRU and "
            "one nn.Linear readout, as two modules or the children of one"
        )
    rnn, head = rnns[0], heads[0]
    name = {nn.RNN: "rnn", nn.LSTM: "lstm", nn.GRU: "gru"}[type(rnn)]
    unsupported = [
        what
        for what, bad in (
            ("bidirectional", rnn.bidirectional),
            ("bias=False", not rnn.bias),
            ("proj_size", getattr(rnn, "proj_size", 0)),
            ("relu", getattr(rnn, "nonlinearity", "tanh") != "tanh"),
            ("a readout without bias", head.bias is None),
        )
        if bad
    ]
    if unsupported:
        raise InputError(
            f"the {type(rnn).__name__} has {', '.join(unsupported)}; supported: one-way "
            "tanh recurrences with biases and a Linear readout with bias"
        )
    if head.in_features != rnn.hidden_size or head.out_features not in (1, 2):
        raise InputError(
            f"the readout is Linear({head.in_features}, {head.out_features}); the "
            f"{type(rnn).__name__}'s hidden size {rnn.hidden_size} needs "
            f"Linear({rnn.hidden_size}, 1) (one logit) or Linear({rnn.hidden_size}, 2) (two "
            "softmax outputs)"
        )
    cell = get_cell(
        name,
        head="logit" if head.out_features == 1 else "softmax2",
        gru_reset=gru_reset,
        gate=gate,
        hidden=rnn.hidden_size,
        inputs=rnn.input_size,
        layers=rnn.num_layers,
    )
    return cell, from_state_dicts(cell, {"rnn": rnn.state_dict(), "head": head.state_dict()})


def init_params(cell: Cell | str, *, seed: int = 0, init: str = "torch") -> torch.Tensor:
    """The default initialization of torch.nn (``init="torch"``) or Keras (``"keras"``) for
    ``seed``: (P,) float64.

    torch: the same values as ``torch.manual_seed(seed); nn.LSTM(1, 1); nn.Linear(1, 1)``, drawn
    without touching the caller's global random state. keras: Keras's initializers
    (``landscape.inits``) in torch.nn's layout.
    """
    check_init(init)
    return _center(as_cell(cell), "init", check_seed(seed), init)  # the one-unit case of the ensembles' init


def to_state_dicts(cell: Cell, theta: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """Flat (P,) parameters -> {"rnn": state_dict, "head": state_dict} in torch.nn's shapes."""
    out, k = {}, 0
    for module, key, shape in cell.tensors:
        size = math.prod(shape)
        out.setdefault(module, {})[key] = theta[k : k + size].detach().clone().reshape(shape)
        k += size
    out.setdefault("head", {})
    return out


def state_dict_size(sds: dict, name: str) -> tuple[int, int, int]:
    """(hidden, inputs, layers) of a recurrent module's state dict, from its tensors' shapes (one
    for Pascanu's map); InputError if they do not fit a torch.nn module of cell ``name``."""
    sd = sds.get("rnn") if isinstance(sds, dict) else None
    base = get_cell(name)
    if not base.module or not isinstance(sd, dict):
        return 1, 1, 1  # from_state_dicts names what is missing
    w = sd.get("weight_hh_l0")
    i = sd.get("weight_ih_l0")
    if not (isinstance(w, torch.Tensor) and isinstance(i, torch.Tensor) and w.ndim == 2 and i.ndim == 2):
        return 1, 1, 1
    layers = 1
    while f"weight_hh_l{layers}" in sd:
        layers += 1
    hidden = w.shape[1]
    if w.shape[0] != base.gates * hidden:
        raise InputError(
            f"the 'rnn' state dict's weight_hh_l0 is {tuple(w.shape)}; a {name} of {hidden} "
            f"units has ({base.gates * hidden}, {hidden})"
        )
    return check_model_size(hidden, i.shape[1], layers)


def from_state_dicts(cell: Cell, sds: dict) -> torch.Tensor:
    """{"rnn": state_dict, "head": state_dict} -> flat (P,) float64, checking every key and shape
    against the cell's size."""
    parts = []
    for module in dict.fromkeys(m for m, _, _ in cell.tensors):
        sd = sds.get(module)
        if not isinstance(sd, dict):
            raise InputError(f"checkpoint lacks the {module!r} state dict that cell {cell.name!r} needs")
        wanted = [(key, shape) for m, key, shape in cell.tensors if m == module]
        if set(sd) != {key for key, _ in wanted}:
            raise InputError(
                f"checkpoint's {module!r} state dict has keys {sorted(sd)}; a {cell.name} model "
                f"of {cell.size_text()} needs {sorted(k for k, _ in wanted)}"
            )
        for key, shape in wanted:
            t = sd[key]
            if isinstance(t, torch.Tensor) and (t.layout != torch.strided or t.device.type == "meta"):
                raise InputError(
                    f"checkpoint tensor {module}.{key} is a {t.layout} tensor on "
                    f"{t.device.type}; a checkpoint holds dense tensors with values"
                )
            fits = (
                isinstance(t, torch.Tensor)
                and t.is_floating_point()
                and (tuple(t.shape) == shape or (not cell.sized and t.numel() == math.prod(shape)))
            )
            if not fits:
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                kind = "" if not isinstance(t, torch.Tensor) or t.is_floating_point() else f" of {t.dtype}"
                raise InputError(
                    f"checkpoint tensor {module}.{key} has shape {got}{kind}; a {cell.name} "
                    f"model of {cell.size_text()} needs float values of shape {shape}"
                )
            parts.append(t.detach().reshape(-1).to(torch.float64))
    theta = torch.cat(parts)
    if not torch.isfinite(theta).all():
        raise InputError("checkpoint holds non-finite parameters")
    return theta


def load_checkpoint(path: str, cell: Cell | str) -> torch.Tensor:
    """Read a checkpoint for ``cell`` (weights only, no code executed): flat (P,) float64. The
    model in the file must be the cell's, of its size (``read_checkpoint`` takes both from the
    file)."""
    return _load_checkpoint(path, as_cell(cell))


def read_checkpoint(
    path: str, *, head: str | None = None, gru_reset: str = "after", gate: str = "sigmoid"
) -> tuple[Cell, torch.Tensor]:
    """Read a checkpoint of any size (weights only, no code executed): the cell, its size and
    readout taken from the file's tensors, and the flat (P,) float64 parameters."""
    ck = _read(path)
    if not isinstance(ck.get("cell"), str) or ck["cell"] not in CELLS:
        raise InputError(f"checkpoint {path} names cell {ck.get('cell')!r}; valid cells: {', '.join(CELLS)}")
    name = ck["cell"]
    if head is None:
        w = ck.get("head", {}).get("weight") if isinstance(ck.get("head"), dict) else None
        head = "softmax2" if isinstance(w, torch.Tensor) and w.ndim >= 1 and w.shape[0] == 2 else "logit"
    hidden, inputs, layers = state_dict_size(ck, name)
    cell = get_cell(
        name,
        head=head if CELLS[name].module else "logit",
        gru_reset=gru_reset,
        gate=gate,
        hidden=hidden,
        inputs=inputs,
        layers=layers,
    )
    return cell, from_state_dicts(cell, ck)


def checkpoint_size(path: str) -> tuple[str, tuple[int, int, int]]:
    """The cell named in a checkpoint and the (hidden, inputs, layers) of its model
    (``read_checkpoint`` reads it whole)."""
    ck = _read(path)
    if not isinstance(ck["cell"], str) or ck["cell"] not in CELLS:
        raise InputError(f"checkpoint {path} names cell {ck['cell']!r}; valid cells: {', '.join(CELLS)}")
    return ck["cell"], state_dict_size(ck, ck["cell"])


def _read(path: str) -> dict:
    """A checkpoint's dict, read without executing code."""
    if not os.path.exists(path):
        raise InputError(f"checkpoint {path} does not exist; give init or a checkpoint FILE.pt")
    try:
        with open_regular(path, "checkpoint", limit=MAX_LOAD) as f:  # no FIFO, no folder
            ck = torch.load(f, map_location="cpu", weights_only=True)
    except InputError:
        raise
    except Exception as e:  # torch raises many types for a broken or unsafe file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InputError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(ck, dict) or "cell" not in ck:
        raise InputError(f"checkpoint {path} must be a dict with keys 'cell', 'rnn', 'head'")
    return ck


def _load_checkpoint(path: str, cell: Cell) -> torch.Tensor:
    """``load_checkpoint`` past its checks."""
    ck = _read(path)
    if ck["cell"] != cell.name:
        raise InputError(f"checkpoint {path} holds a {ck['cell']!r} model, not the {cell.name!r} asked for")
    if cell.module:
        size = state_dict_size(ck, cell.name)
        if size != (cell.hidden, cell.inputs, cell.layers):
            found = get_cell(cell.name, hidden=size[0], inputs=size[1], layers=size[2]).size_text()
            raise InputError(
                f"checkpoint {path} holds a {cell.name} model of {found}; the model asked for "
                f"has {cell.size_text()}"
            )
    return from_state_dicts(cell, ck)


def save_checkpoint(path: str, cell: Cell | str, theta: torch.Tensor) -> str:
    """Write theta in the checkpoint format, atomically; returns the path."""
    cell = as_cell(cell)
    return _save_checkpoint(path, cell, check_vector(theta, cell.n_params, "theta"))


def _save_checkpoint(path: str, cell: Cell, theta: torch.Tensor) -> str:
    """``save_checkpoint`` past its checks."""
    ck = {"cell": cell.name, **to_state_dicts(cell, theta.to(torch.float32))}
    atomic_write(path, lambda f: torch.save(ck, f))
    return path


CENTERS = ("init", "trained")  # words --center accepts besides a checkpoint path


def _center(cell: Cell, spec: str, seed: int, init: str) -> torch.Tensor:
    """The centre a configuration names: "init" (``init``'s initialization for ``seed``) or a
    checkpoint FILE.pt (its arguments checked by the caller, ``landscape.config.SliceConfig``)."""
    if spec not in CENTERS and (spec.endswith(".pt") or os.path.exists(spec)):
        return _load_checkpoint(spec, cell)
    if spec == "init":
        return (
            torch.tensor(cell.center, dtype=torch.float64)
            if not cell.module
            else _init_theta(cell, cell.hidden, seed, init, inputs=cell.inputs, layers=cell.layers)
        )
    if spec == "trained":
        raise ConfigError(
            "center", "is made by training (landscape.train.train_ensemble), not loaded", value="trained"
        )
    raise InputError(f"unknown centre {spec!r}; valid: {', '.join(CENTERS)}, or a checkpoint FILE.pt")
