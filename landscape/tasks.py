"""Tasks: seeded data, and what a model is scored on (``landscape.cells.readout`` scores it).

``latching`` and ``relay`` are binary classification over (N, T) input sequences, scored by
binary cross-entropy on the readout logit ``w_out * h_T + b_out`` (the same model as Keras'
Dense(2, softmax) with categorical cross-entropy, up to reparametrization); ``pascanu`` is
Pascanu et al.'s target ``(sigmoid(x_T) - 0.7)^2`` for the input-free map.

Every label vector the toolkit generates is balanced (N//2 ones, in random order), and every
split it makes is stratified, so the unshuffled-validation artifact cannot happen here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ._errors import InputError, check_int, check_number, check_seed
from ._io import load_npz

__all__ = [
    "TaskData", "Task", "TASKS", "get_task", "make_data", "load_data", "data_from_arrays",
    "balanced_labels", "check_data", "OBJECTIVES",
]

@dataclass(frozen=True)
class TaskData:
    """Inputs and labels for one sequence length.

    x: (N, L) float64 inputs (one feature per step), (N, L, I) of I features, or None for an
    input-free task.
    y: (N,) float64 labels in {0, 1}, or None.
    objective: "bce" (classification through the readout) or "pascanu".
    """

    x: torch.Tensor | None
    y: torch.Tensor | None
    length: int
    objective: str

    def __post_init__(self) -> None:
        """The one check of data, whichever way it came in (a file, arrays, generated, built by
        hand): a known objective, a length within the data, real finite inputs, 0/1 labels. One
        feature per step is kept as (N, L), however it came."""
        check_data(self.x, self.y, self.length, self.objective)
        if self.x is not None and self.x.ndim == 3 and self.x.shape[2] == 1:
            object.__setattr__(self, "x", self.x[..., 0])

    @property
    def features(self) -> int:
        """Inputs per step: I of (N, L, I), 1 of (N, L), 0 without input."""
        return 0 if self.x is None else (1 if self.x.ndim == 2 else self.x.shape[2])

    def to(self, dtype: torch.dtype, device: str | torch.device) -> TaskData:
        cast = (lambda t: None if t is None else t.to(device=device, dtype=dtype))
        return TaskData(cast(self.x), cast(self.y), self.length, self.objective)


OBJECTIVES = ("bce", "pascanu")  # classification through the readout, or Pascanu's target
REAL = (torch.float32, torch.float64)  # the dtypes data and parameters are computed in


def check_data(x, y, length, objective) -> None:
    """InputError unless ``x`` (N, L) and ``y`` (N,) are real tensors fit for ``objective`` at
    ``length``: finite inputs, labels 0 or 1 (None, None for the input-free ``pascanu``)."""
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise InputError(f"objective {objective!r} is unknown; valid: {', '.join(OBJECTIVES)}")
    check_int(length, "sequence length")
    if objective == "pascanu":
        if x is not None or y is not None:
            raise InputError("the pascanu objective takes no data: x and y must be None")
        return
    for name, t, ndims in (("x", x, (2, 3)), ("y", y, (1,))):
        if not isinstance(t, torch.Tensor) or t.ndim not in ndims:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            want = "(N, L) or (N, L, I)" if name == "x" else "(N,)"
            raise InputError(f"data {name} must be a tensor {want}, not {shape}")
        if t.dtype not in REAL:
            raise InputError(f"data {name} must hold float32 or float64 numbers, not {t.dtype}")
    if x.ndim == 3 and x.shape[2] < 1:
        raise InputError(f"data x {tuple(x.shape)} has no features; it must be (N, L) or (N, L, I), I >= 1")
    if y.shape[0] != x.shape[0] or x.shape[0] < 1:
        raise InputError(f"data must be x (N, L) and y (N,) with N >= 1; got x {tuple(x.shape)} and y "
                         f"{tuple(y.shape)}")
    if x.shape[1] != length:
        raise InputError(f"data x has {x.shape[1]} steps, not the length {length}")
    if not bool(torch.isfinite(x).all()):
        raise InputError("data x holds non-finite values (NaN or Inf)")
    if not bool(((y == 0) | (y == 1)).all()):
        raise InputError(f"data y must hold only 0 and 1, found {torch.unique(y)[:5].tolist()}")


def balanced_labels(n: int, gen: torch.Generator) -> torch.Tensor:
    """n labels, n//2 of them ones, in a random order: (n,) float64."""
    y = torch.zeros(n, dtype=torch.float64)
    y[: n // 2] = 1.0
    return y[torch.randperm(n, generator=gen)]


def _latching(length: int, *, n: int, noise: float, gen: torch.Generator) -> TaskData:
    y = balanced_labels(n, gen)  # (N,)
    x = noise * torch.randn(n, length, generator=gen, dtype=torch.float64)  # (N, L)
    x[:, 0] += 2.0 * y - 1.0  # +1 for label 1, -1 for label 0, noise on top
    return TaskData(x, y, length, "bce")


def _relay(length: int, *, n: int, noise: float, gen: torch.Generator) -> TaskData:
    if length < 2:
        raise InputError(f"relay needs a length of at least 2 (got {length}): its second bit is at L//2")
    y = balanced_labels(n, gen)  # (N,)
    first = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()  # (N,)
    second = torch.where(y > 0.5, first, -first)  # same sign iff positive
    x = noise * torch.randn(n, length, generator=gen, dtype=torch.float64)  # (N, L)
    x[:, 0] = first
    x[:, length // 2] = second
    return TaskData(x, y, length, "bce")


def _pascanu(length: int, *, n: int, noise: float, gen: torch.Generator) -> TaskData:
    return TaskData(None, None, length, "pascanu")


@dataclass(frozen=True)
class Task:
    name: str
    make: Callable[..., TaskData]
    takes_input: bool


TASKS: dict[str, Task] = {
    "latching": Task("latching", _latching, True),  # the class is the sign of the first step
    "relay": Task("relay", _relay, True),  # positive iff the signs at steps 0 and L // 2 agree
    "pascanu": Task("pascanu", _pascanu, False),  # x_0 = 0.5, loss (sigmoid(x_L) - 0.7)^2, no input
}


MAX_DATA = 4 << 30  # bytes of a run's input data (float64), generated or loaded


def get_task(name: str) -> Task:
    if not isinstance(name, str) or name not in TASKS:
        raise InputError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]


def make_data(task: str, length: int, *, n: int = 1000, noise: float = 0.1, seed: int = 0) -> TaskData:
    """Seeded data for one length: the same arguments give the same arrays."""
    t = get_task(task)
    length = check_int(length, "sequence length")
    n = check_int(n, "number of samples", lo=2 if t.takes_input else 0)
    noise = check_number(noise, "noise std", lo=0.0)
    if t.takes_input and 8 * n * length > MAX_DATA:
        raise InputError(f"{n} sequences of {length} steps make {8 * n * length / 2**30:.1f} GiB of data; "
                         f"the limit is {MAX_DATA / 2**30:.0f} GiB")
    return _make_data(t, length, n, noise, check_seed(seed))


def _make_data(t: Task, length: int, n: int, noise: float, seed: int) -> TaskData:
    """``make_data`` past its checks."""
    return t.make(length, n=n, noise=noise, gen=torch.Generator().manual_seed(seed))


def load_data(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a user's data file: x (N, T) and y (N,) of 0/1, loaded without pickle."""
    arrays = load_npz(path, "data file")
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise InputError(f"data file {path} lacks array(s) {', '.join(missing)}; "
                         f"it needs x (N, T) and y (N,), has: {', '.join(arrays) or 'none'}")
    x, y = arrays["x"], arrays["y"]
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]  # Keras' (N, T, 1): one feature
    return _check_arrays(x, y, f"data file {path}: ")


def data_from_arrays(x: np.ndarray, y: np.ndarray, length: int) -> TaskData:
    """A user's data at one length: the first ``length`` steps of every sequence, x (N, T) or
    (N, T, I) of I features per step."""
    x, y = _check_arrays(np.asarray(x), np.asarray(y), "")
    return _from_arrays(x, y, check_int(length, "length"))


def _check_arrays(x: np.ndarray, y: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A user's arrays as float64, checked: x (N, T) or (N, T, I) real and finite, y (N,) of 0 and
    1 (the same rule for a file and for arrays; ``TaskData`` checks the tensors again at each
    length)."""
    if (x.ndim not in (2, 3) or min(x.shape) < 1 or y.shape != (x.shape[0],)):
        raise InputError(f"{where}data must be x (N, T) or (N, T, I) and y (N,); got x {x.shape} and y "
                         f"{y.shape}")
    if x.dtype.kind not in "fiub" or y.dtype.kind not in "fiub":
        raise InputError(f"{where}x and y must hold real numbers, not {x.dtype} and {y.dtype}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{where}x holds non-finite values (NaN or Inf)")
    if not np.all((y == 0) | (y == 1)):
        raise InputError(f"{where}y must hold only 0 and 1, found {np.unique(y)[:5]}")
    return x.astype(np.float64), y.astype(np.float64)


def _from_arrays(x: np.ndarray, y: np.ndarray, length: int) -> TaskData:
    """``data_from_arrays`` past its checks of the arrays (as ``load_data`` has made them)."""
    if length > x.shape[1]:
        raise InputError(f"length {length} exceeds the data's {x.shape[1]} steps; "
                         f"valid lengths: 1 to {x.shape[1]}")
    return TaskData(torch.from_numpy(np.ascontiguousarray(x[:, :length], dtype=np.float64)),
                    torch.from_numpy(y.astype(np.float64)), length, "bce")
