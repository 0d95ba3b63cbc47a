"""Shared fixtures: independent references written from torch.nn and the documented layout.

Nothing here calls into ``landscape`` to build a reference: the layout of the flat parameter
vector is spelled out below from the documentation (state_dict order, torch's gate order), the
models are plain ``torch.nn`` modules in float64, and the loss is written with numpy.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before anything can import pyplot

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

GATES = {"rnn": "", "lstm": "ifgo", "gru": "rzn"}
MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
TENSORS = (("weight_ih_l0", "w_ih"), ("weight_hh_l0", "w_hh"), ("bias_ih_l0", "b_ih"), ("bias_hh_l0", "b_hh"))


def slots(cell: str) -> dict[str, tuple[str, str, int]]:
    """Documented layout: scalar name -> (module, state_dict key, row), in flat-vector order."""
    out = {}
    for key, short in TENSORS:
        gates = GATES[cell]
        for row, gate in enumerate(gates or [""]):
            out[f"{short}_{gate}" if gate else short] = ("rnn", key, row)
    out["w_out"] = ("head", "weight", 0)
    out["b_out"] = ("head", "bias", 0)
    return out


def reference_modules(cell: str, values) -> tuple[nn.Module, nn.Module]:
    """float64 nn.RNN/LSTM/GRU(1, 1, batch_first=True) and nn.Linear(1, 1) holding ``values``.

    ``values`` is either a flat sequence in the documented order or a dict name -> float.
    """
    names = list(slots(cell))
    if not isinstance(values, dict):
        values = dict(zip(names, [float(v) for v in values], strict=True))
    rnn = MODULES[cell](1, 1, batch_first=True).double()
    head = nn.Linear(1, 1).double()
    sds = {"rnn": rnn.state_dict(), "head": head.state_dict()}
    for name, (module, key, row) in slots(cell).items():
        sds[module][key].view(-1)[row] = values[name]
    rnn.load_state_dict(sds["rnn"])
    head.load_state_dict(sds["head"])
    return rnn, head


def module_values(cell: str, rnn: nn.Module, head: nn.Module) -> dict[str, float]:
    """The scalars of two modules, by documented name."""
    sds = {"rnn": rnn.state_dict(), "head": head.state_dict()}
    return {name: float(sds[module][key].reshape(-1)[row])
            for name, (module, key, row) in slots(cell).items()}


def reference_loss(cell: str, values, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean BCE-with-logits of head(h_T) against y, and accuracy, from torch.nn in float64.

    x: (N, T) inputs (all T steps are used), y: (N,) in {0, 1}.
    """
    rnn, head = reference_modules(cell, values)
    with torch.no_grad():
        out, _ = rnn(torch.as_tensor(np.asarray(x, dtype=np.float64))[:, :, None])  # (N, T, 1)
        z = head(out[:, -1, :])[:, 0].numpy()  # (N,) logits
    y = np.asarray(y, dtype=np.float64)
    bce = np.logaddexp(0.0, z) - y * z  # -y log s(z) - (1 - y) log(1 - s(z))
    acc = np.mean((z > 0) == (y == 1))
    return float(bce.mean()), float(acc)


def pascanu_reference(w: float, b: float, length: int) -> float:
    """Pascanu et al.'s map as a plain scalar loop."""
    import math

    sig = lambda v: 1.0 / (1.0 + math.exp(-v))
    x = 0.5
    for _ in range(length):
        x = w * sig(x) + b
    return (sig(x) - 0.7) ** 2


class Ref:
    slots = staticmethod(slots)
    modules = staticmethod(reference_modules)
    values = staticmethod(module_values)
    loss = staticmethod(reference_loss)
    pascanu = staticmethod(pascanu_reference)
    GATES = GATES
    MODULES = MODULES


@pytest.fixture
def ref() -> type[Ref]:
    """The independent references (a fixture, since tests are imported with importlib)."""
    return Ref


@pytest.fixture
def own_data(tmp_path):
    """A user's data file the package never generated: x (N, T) uniform, y random 0/1."""
    rng = np.random.default_rng(1234)
    x = rng.uniform(-2.0, 2.0, size=(24, 12))
    y = (rng.random(24) < 0.4).astype(np.int64)
    y[:2] = [0, 1]  # both classes present
    path = tmp_path / "own.npz"
    np.savez(path, x=x, y=y)
    return path, x, y.astype(np.float64)
