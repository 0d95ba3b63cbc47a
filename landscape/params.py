"""Parameters: named scalars, the flat vector, torch.nn initialization and checkpoints.

The flat vector theta lists every scalar of the recurrent module and the readout in
``state_dict`` order (``Cell.param_names``). A checkpoint is what torch.nn users already save::

    torch.save({"cell": "lstm", "rnn": nn.LSTM(1, 1).state_dict(),
                "head": nn.Linear(1, 1).state_dict()}, "model.pt")

and it is read with ``torch.load(..., weights_only=True)``, which never executes code.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ._errors import InputError, check_seed, check_vector
from ._io import MAX_LOAD, atomic_write, open_regular
from .cells import Cell, as_cell
from .inits import check_init
from .units import _init_theta

__all__ = ["init_params", "split_params", "to_state_dicts", "from_state_dicts",
           "load_checkpoint", "save_checkpoint", "to_modules", "center_params", "CENTERS",
]



def to_modules(cell: Cell | str, theta: torch.Tensor | None = None) -> tuple[nn.Module, nn.Module]:
    """Fresh ``nn.RNN/LSTM/GRU(1, 1)`` and ``nn.Linear(1, 1)`` modules, holding theta if given."""
    cell = as_cell(cell)
    if not cell.module:
        raise InputError(f"cell {cell.name!r} has no torch.nn module")
    rnn, head = getattr(nn, cell.module)(1, 1, batch_first=True), nn.Linear(1, cell.n_out)
    if theta is not None:
        sds = to_state_dicts(cell, check_vector(theta, len(cell.param_names), "theta"))
        rnn.load_state_dict(sds["rnn"])
        head.load_state_dict(sds["head"])
    return rnn, head


def init_params(cell: Cell | str, *, seed: int = 0, init: str = "torch") -> torch.Tensor:
    """The default initialization of torch.nn (``init="torch"``) or Keras (``"keras"``) for
    ``seed``: (P,) float64.

    torch: the same values as ``torch.manual_seed(seed); nn.LSTM(1, 1); nn.Linear(1, 1)``, drawn
    without touching the caller's global random state. keras: Keras's initializers
    (``landscape.inits``) in torch.nn's layout.
    """
    check_init(init)
    return _center(as_cell(cell), "init", check_seed(seed), init)  # the one-unit case of the ensembles' init


def split_params(cell: Cell, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """Flat parameters (G, P) -> name -> (G, 1) column; a (P,) vector gives 0-d scalars
    (``Cell.split``)."""
    return as_cell(cell).split(theta)


def to_state_dicts(cell: Cell, theta: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """Flat (P,) parameters -> {"rnn": state_dict, "head": state_dict} in torch.nn's shapes."""
    out, k = {}, 0
    for module, pairs in cell.layout:
        sd = {}
        for key, names in pairs:
            vals = theta[k : k + len(names)].detach().clone()
            k += len(names)
            sd[key] = vals.reshape(len(names), 1) if key.startswith("weight") else vals
        out[module] = sd
    out.setdefault("head", {})
    return out


def from_state_dicts(cell: Cell, sds: dict) -> torch.Tensor:
    """{"rnn": state_dict, "head": state_dict} -> flat (P,) float64, checking every key and shape."""
    parts = []
    for module, pairs in cell.layout:
        sd = sds.get(module)
        if not isinstance(sd, dict):
            raise InputError(f"checkpoint lacks the {module!r} state dict that cell {cell.name!r} needs")
        expected = {key for key, _ in pairs}
        if set(sd) != expected:
            raise InputError(f"checkpoint's {module!r} state dict has keys {sorted(sd)}; cell "
                             f"{cell.name!r} needs {sorted(expected)} (hidden size 1)")
        for key, names in pairs:
            t = sd[key]
            if isinstance(t, torch.Tensor) and (t.layout != torch.strided or t.device.type == "meta"):
                raise InputError(f"checkpoint tensor {module}.{key} is a {t.layout} tensor on "
                                 f"{t.device.type}; a checkpoint holds dense tensors with values")
            if not isinstance(t, torch.Tensor) or t.numel() != len(names) or not t.is_floating_point():
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise InputError(f"checkpoint tensor {module}.{key} has shape {shape}; cell "
                                 f"{cell.name!r} needs {len(names)} float values (hidden size 1)")
            parts.append(t.detach().reshape(-1).to(torch.float64))
    theta = torch.cat(parts)
    if not torch.isfinite(theta).all():
        raise InputError("checkpoint holds non-finite parameters")
    return theta


def load_checkpoint(path: str, cell: Cell | str) -> torch.Tensor:
    """Read a checkpoint for ``cell`` (weights only, no code executed): flat (P,) float64."""
    return _load_checkpoint(path, as_cell(cell))


def _load_checkpoint(path: str, cell: Cell) -> torch.Tensor:
    """``load_checkpoint`` past its checks."""
    if not os.path.exists(path):
        raise InputError(f"checkpoint {path} does not exist; give --center init or a FILE.pt")
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
    if ck["cell"] != cell.name:
        raise InputError(f"checkpoint {path} holds a {ck['cell']!r} model, not the {cell.name!r} "
                         f"asked for by --cell")
    return from_state_dicts(cell, ck)


def save_checkpoint(path: str, cell: Cell | str, theta: torch.Tensor) -> str:
    """Write theta in the checkpoint format, atomically; returns the path."""
    cell = as_cell(cell)
    return _save_checkpoint(path, cell, check_vector(theta, len(cell.param_names), "theta"))


def _save_checkpoint(path: str, cell: Cell, theta: torch.Tensor) -> str:
    """``save_checkpoint`` past its checks."""
    ck = {"cell": cell.name, **to_state_dicts(cell, theta.to(torch.float32))}
    atomic_write(path, lambda f: torch.save(ck, f))
    return path


CENTERS = ("init", "trained")  # words --center accepts besides a checkpoint path


def center_params(cell: Cell | str, spec: str, *, seed: int = 0, init: str = "torch") -> torch.Tensor:
    """The centre named on the command line: "init" (``init``'s initialization for ``seed``) or a
    FILE.pt."""
    if not isinstance(spec, str):
        raise InputError(f"centre must be init or a checkpoint FILE.pt, not {type(spec).__name__}")
    return _center(as_cell(cell), spec, seed, init)


def _center(cell: Cell, spec: str, seed: int, init: str) -> torch.Tensor:
    """``center_params`` past its checks."""
    if spec not in CENTERS and (spec.endswith(".pt") or os.path.exists(spec)):
        return _load_checkpoint(spec, cell)
    if spec == "init":
        return torch.tensor(cell.center, dtype=torch.float64) if not cell.module else _init_theta(
            cell, 1, seed, init)
    if spec == "trained":
        raise InputError("--center trained is made by training (landscape.train.train_ensemble), "
                         "not loaded")
    raise InputError(f"unknown centre {spec!r}; valid: {', '.join(CENTERS)}, or a checkpoint FILE.pt")
