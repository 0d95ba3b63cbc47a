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
from functools import partial

import numpy as np
import torch

from ._errors import InputError, check_int, check_number, check_seed
from ._io import load_npz

__all__ = [
    "TaskData",
    "Task",
    "TASKS",
    "get_task",
    "make_data",
    "load_data",
    "data_from_arrays",
    "balanced_labels",
    "check_data",
    "OBJECTIVES",
]


@dataclass(frozen=True)
class TaskData:
    """Inputs and labels for one sequence length.

    x: (N, L) float64 inputs (one feature per step), (N, L, I) of I features, or None for an
    input-free task.
    y: (N,) float64 labels in {0, 1} ("bce"), class indices 0..K-1 ("ce"), real targets ("mse"),
    or None; or (N, L), a target at every step (next-symbol tasks): the loss is then the mean over
    samples and steps of the readout of each step's state, and the accuracy the share of steps right.
    objective: "bce" (binary classification through the readout), "ce" (K classes), "mse" (a real
    target), or "pascanu".
    """

    x: torch.Tensor | None
    y: torch.Tensor | None
    length: int
    objective: str
    steps: torch.Tensor | None = None  # (N,) each sequence's own length <= length, or None: all of it
    tol: float = 0.04  # "mse": a sample is right within this distance of its target

    def __post_init__(self) -> None:
        """The one check of data, whichever way it came in (a file, arrays, generated, built by
        hand): a known objective, a length within the data, real finite inputs, 0/1 labels. One
        feature per step is kept as (N, L), however it came."""
        check_data(self.x, self.y, self.length, self.objective)
        if self.steps is not None and self.per_step:
            raise InputError(
                "data of a target per step are scored at every step; sequences of their own "
                "lengths (steps) are not supported with them"
            )
        if self.steps is not None:
            s = self.steps
            if (
                not isinstance(s, torch.Tensor)
                or s.shape != (self.x.shape[0],)
                or s.is_floating_point()
                or int(s.min()) < 1
                or int(s.max()) > self.length
            ):
                raise InputError(f"data steps must be ({self.x.shape[0]},) integers from 1 to {self.length}")
        if not (isinstance(self.tol, (int, float)) and 0 < self.tol < float("inf")):
            raise InputError(f"data tol {self.tol!r} must be a finite number > 0")
        if self.x is not None and self.x.ndim == 3 and self.x.shape[2] == 1:
            object.__setattr__(self, "x", self.x[..., 0])

    @property
    def per_step(self) -> bool:
        """Whether y holds a target at every step (N, L), not one per sequence."""
        return self.y is not None and self.y.ndim == 2

    @property
    def features(self) -> int:
        """Inputs per step: I of (N, L, I), 1 of (N, L), 0 without input."""
        return 0 if self.x is None else (1 if self.x.ndim == 2 else self.x.shape[2])

    def to(self, dtype: torch.dtype, device: str | torch.device) -> TaskData:
        cast = lambda t: None if t is None else t.to(device=device, dtype=dtype)
        return TaskData(
            cast(self.x),
            cast(self.y),
            self.length,
            self.objective,
            None if self.steps is None else self.steps.to(device),
            self.tol,
        )


OBJECTIVES = ("bce", "ce", "mse", "pascanu")  # two classes, K classes, a real target, Pascanu's target
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
    for name, t, ndims in (("x", x, (2, 3)), ("y", y, (1, 2))):
        if not isinstance(t, torch.Tensor) or t.ndim not in ndims:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            want = "(N, L) or (N, L, I)" if name == "x" else "(N,) or (N, L) (a target per step)"
            raise InputError(f"data {name} must be a tensor {want}, not {shape}")
        if t.dtype not in REAL:
            raise InputError(f"data {name} must hold float32 or float64 numbers, not {t.dtype}")
    if x.ndim == 3 and x.shape[2] < 1:
        raise InputError(f"data x {tuple(x.shape)} has no features; it must be (N, L) or (N, L, I), I >= 1")
    if y.shape[0] != x.shape[0] or x.shape[0] < 1:
        raise InputError(
            f"data must be x (N, L) and y (N,) with N >= 1; got x {tuple(x.shape)} and y {tuple(y.shape)}"
        )
    if x.shape[1] != length:
        raise InputError(f"data x has {x.shape[1]} steps, not the length {length}")
    if y.ndim == 2 and y.shape[1] != length:
        raise InputError(f"data y of a target per step has {y.shape[1]} steps; x has {length}")
    if not bool(torch.isfinite(x).all()):
        raise InputError("data x holds non-finite values (NaN or Inf)")
    _check_targets(y.numpy() if y.device.type == "cpu" else y.cpu().numpy(), objective, "data ")


def _check_targets(y: np.ndarray, objective: str, where: str) -> None:
    """InputError unless y fits the objective: 0 and 1 (bce), class indices 0, 1, ... (ce), finite
    numbers (mse)."""
    if objective == "bce" and not np.all((y == 0) | (y == 1)):
        raise InputError(f"{where}y must hold only 0 and 1, found {np.unique(y)[:5]}")
    if objective == "ce" and not (np.all(np.isfinite(y)) and np.all(y >= 0) and np.all(y == np.round(y))):
        raise InputError(f"{where}y must hold class indices 0, 1, 2, ..., found {np.unique(y)[:5]}")
    if objective == "mse" and not np.all(np.isfinite(y)):
        raise InputError(f"{where}y holds non-finite targets (NaN or Inf)")


def balanced_labels(n: int, gen: torch.Generator) -> torch.Tensor:
    """n labels, n//2 of them ones, in a random order: (n,) float64."""
    y = torch.zeros(n, dtype=torch.float64)
    y[: n // 2] = 1.0
    return y[torch.randperm(n, generator=gen)]


def _latching(length: int, *, n: int, noise: float, gen: torch.Generator, symbols=None) -> TaskData:
    y = balanced_labels(n, gen)  # (N,)
    x = noise * torch.randn(n, length, generator=gen, dtype=torch.float64)  # (N, L)
    x[:, 0] += 2.0 * y - 1.0  # +1 for label 1, -1 for label 0, noise on top
    return TaskData(x, y, length, "bce")


def _relay(length: int, *, n: int, noise: float, gen: torch.Generator, symbols=None) -> TaskData:
    if length < 2:
        raise InputError(f"relay needs a length of at least 2 (got {length}): its second bit is at L//2")
    y = balanced_labels(n, gen)  # (N,)
    first = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()  # (N,)
    second = torch.where(y > 0.5, first, -first)  # same sign iff positive
    x = noise * torch.randn(n, length, generator=gen, dtype=torch.float64)  # (N, L)
    x[:, 0] = first
    x[:, length // 2] = second
    return TaskData(x, y, length, "bce")


def _pascanu(length: int, *, n: int, noise: float, gen: torch.Generator, symbols=None) -> TaskData:
    return TaskData(None, None, length, "pascanu")


def _longlag(
    length: int,
    *,
    n: int,
    noise: float,
    gen: torch.Generator,
    symbols: int | None = None,
    random_middle: bool = False,
) -> TaskData:
    """Hochreiter & Schmidhuber 1997, experiment 2a (or 2b with ``random_middle``): p + 1 symbols
    a_1 .. a_{p-1}, x = a_p, y = a_{p+1}, one-hot over p + 1 inputs. A sequence is (s, a_1, ...,
    a_{p-1}) with s = x or y, each with probability 0.5 (here: exactly half of each, in random
    order), and the target is the symbol that follows, s again: class p - 1 (x) or p (y) of p + 1.
    The length L is p steps; 2b draws the L - 1 middle symbols at random from a_1 .. a_{p-1}, so its
    p (``symbols``) may differ from L. Noise-free: ``noise`` is not used."""
    p = length if symbols is None else symbols
    if not random_middle and p != length:
        raise InputError(
            f"longlag (experiment 2a) has p = L: its length {length} and symbols {p} differ "
            "(longlag-random takes any p)"
        )
    if p < 2 or length < 1:
        raise InputError(f"longlag needs p >= 2 symbols besides x and y's slots, got p = {p}")
    y = balanced_labels(n, gen)  # 1: the sequence starts with y, 0: with x
    first = torch.where(y > 0.5, p, p - 1).long()  # (N,): x is a_p (index p - 1), y is a_{p+1} (index p)
    if random_middle:
        middle = torch.randint(0, p - 1, (n, length - 1), generator=gen)
    else:
        middle = torch.arange(length - 1).expand(n, -1)  # a_1 .. a_{p-1} in order
    idx = torch.cat([first[:, None], middle], 1)  # (N, L)
    x = torch.nn.functional.one_hot(idx, p + 1).to(torch.float64)  # (N, L, p + 1)
    return TaskData(x, first.to(torch.float64), length, "ce")


def _adding(length: int, *, n: int, noise: float, gen: torch.Generator, symbols=None) -> TaskData:
    """Hochreiter & Schmidhuber 1997, experiment 4, the adding problem in its 1997 definition: each
    step a pair (value uniform in [-1, 1], marker); each sequence's own length uniform in [T, T +
    T/10] (T = ``length``); X_1 one of the first ten pairs and X_2 one of the first T/2 - 1 pairs
    not yet marked, both marked 1.0; the first and the last pair marked -1 unless marked 1.0, the
    others 0; the value of a marked first pair set to 0. Target 0.5 + (X_1 + X_2) / 4 at the
    sequence's end; right if within 0.04. Steps past a sequence's end are zero (``TaskData.steps``
    says where each ends). ``noise`` is not used."""
    T = length
    if T < 6:
        raise InputError(
            f"the adding problem needs a length T >= 6 (X_2 among the first T/2 - 1 pairs), got {T}"
        )
    top = T + T // 10
    steps = T + torch.randint(0, T // 10 + 1, (n,), generator=gen)  # (N,) in [T, T + T/10]
    value = torch.rand(n, top, generator=gen, dtype=torch.float64) * 2 - 1
    marker = torch.zeros(n, top, dtype=torch.float64)
    rows = torch.arange(n)
    i1 = torch.randint(0, min(10, T // 2 - 1), (n,), generator=gen)
    i2 = torch.randint(0, T // 2 - 2, (n,), generator=gen)
    i2 = i2 + (i2 >= i1).long()  # one of the first T/2 - 1 pairs, not X_1's
    marker[rows, 0] = -1.0
    marker[rows, steps - 1] = -1.0
    marker[rows, i1] = 1.0
    marker[rows, i2] = 1.0
    value[marker[:, 0] == 1.0, 0] = 0.0  # a marked first pair adds 0 (the paper's X_1 = 0)
    live = torch.arange(top)[None, :] < steps[:, None]
    x = torch.stack([value * live, marker * live], -1)  # (N, top, 2), zero past each end
    target = 0.5 + (x[rows, i1, 0] + x[rows, i2, 0]) / 4
    return TaskData(x, target, top, "mse", steps=steps)


@dataclass(frozen=True)
class Task:
    name: str
    make: Callable[..., TaskData]
    takes_input: bool
    objective: str = "bce"  # the loss its targets are for (TaskData.objective)

    def features(self, length: int, symbols: int | None = None) -> int:
        """Inputs per step of this task's data at a length (0: no input)."""
        if not self.takes_input:
            return 0
        if self.name.startswith("longlag"):
            return (length if symbols is None else symbols) + 1
        return 2 if self.name == "adding" else 1

    def head(self, length: int, symbols: int | None = None) -> tuple[str, int]:
        """The readout its targets are scored through, and its classes (0 but for softmax)."""
        if self.objective == "ce":
            return "softmax", self.features(length, symbols)
        return ("linear", 0) if self.objective == "mse" else ("logit", 0)


TASKS: dict[str, Task] = {
    "latching": Task("latching", _latching, True),  # the class is the sign of the first step
    "relay": Task("relay", _relay, True),  # positive iff the signs at steps 0 and L // 2 agree
    "pascanu": Task("pascanu", _pascanu, False, "pascanu"),  # x_0 = 0.5, loss (sigmoid(x_L) - 0.7)^2
    # Hochreiter & Schmidhuber 1997: 2a (p = L), 2b (a random middle), and the adding problem
    "longlag": Task("longlag", _longlag, True, "ce"),
    "longlag-random": Task("longlag-random", partial(_longlag, random_middle=True), True, "ce"),
    "adding": Task("adding", _adding, True, "mse"),
}


MAX_DATA = 4 << 30  # bytes of a run's input data (float64), generated or loaded
MAX_SYMBOLS = 1023  # p of the long-lag tasks: p + 1 one-hot inputs and classes


def get_task(name: str) -> Task:
    if not isinstance(name, str) or name not in TASKS:
        raise InputError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]


def make_data(
    task: str, length: int, *, n: int = 1000, noise: float = 0.1, seed: int = 0, symbols: int | None = None
) -> TaskData:
    """Seeded data for one length: the same arguments give the same arrays. ``symbols``: the p of
    Hochreiter & Schmidhuber's long-lag tasks (default: the length)."""
    t = get_task(task)
    length = check_int(length, "sequence length")
    n = check_int(n, "number of samples", lo=2 if t.takes_input else 0)
    noise = check_number(noise, "noise std", lo=0.0)
    if symbols is not None:
        symbols = check_int(symbols, "symbols", lo=2, hi=MAX_SYMBOLS)
    size = 8 * n * (length + length // 10) * max(t.features(length, symbols), 1)
    if t.takes_input and size > MAX_DATA:
        raise InputError(
            f"{n} sequences of {length} steps make {size / 2**30:.1f} GiB of data; "
            f"the limit is {MAX_DATA / 2**30:.0f} GiB"
        )
    return _make_data(t, length, n, noise, check_seed(seed), symbols)


def _make_data(t: Task, length: int, n: int, noise: float, seed: int, symbols: int | None = None) -> TaskData:
    """``make_data`` past its checks."""
    return t.make(length, n=n, noise=noise, gen=torch.Generator().manual_seed(seed), symbols=symbols)


def load_data(path: str, objective: str = "bce") -> tuple[np.ndarray, np.ndarray]:
    """Read a user's data file: x (N, T) or (N, T, I) and y (N,) fit for ``objective`` (0/1
    labels for "bce", class indices for "ce", real targets for "mse"), loaded without pickle."""
    arrays = load_npz(path, "data file")
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise InputError(
            f"data file {path} lacks array(s) {', '.join(missing)}; "
            f"it needs x (N, T) and y (N,) or (N, T), has: {', '.join(arrays) or 'none'}"
        )
    x, y = arrays["x"], arrays["y"]
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]  # Keras' (N, T, 1): one feature
    return _check_arrays(x, y, f"data file {path}: ", objective)


def data_from_arrays(x: np.ndarray, y: np.ndarray, length: int, *, objective: str = "bce") -> TaskData:
    """A user's data at one length: the first ``length`` steps of every sequence, x (N, T) or
    (N, T, I) of I features per step; y (N,) or a target per step (N, T), as ``objective`` wants
    it ("bce": 0 and 1, "ce": class indices, "mse": real targets)."""
    if objective not in OBJECTIVES[:3]:
        raise InputError(f"objective {objective!r} is unknown; valid: {', '.join(OBJECTIVES[:3])}")
    x, y = _check_arrays(np.asarray(x), np.asarray(y), "", objective)
    return _from_arrays(x, y, check_int(length, "length"), objective)


def _check_arrays(x: np.ndarray, y: np.ndarray, where: str, objective: str) -> tuple[np.ndarray, np.ndarray]:
    """A user's arrays as float64, checked: x (N, T) or (N, T, I) real and finite, y (N,) fit for
    the objective (the same rule for a file and for arrays; ``TaskData`` checks the tensors again
    at each length)."""
    if x.ndim not in (2, 3) or min(x.shape) < 1 or y.shape not in ((x.shape[0],), x.shape[:2]):
        raise InputError(
            f"{where}data must be x (N, T) or (N, T, I) and y (N,) or (N, T) (a target per "
            f"step); got x {x.shape} and y {y.shape}"
        )
    if x.dtype.kind not in "fiub" or y.dtype.kind not in "fiub":
        raise InputError(f"{where}x and y must hold real numbers, not {x.dtype} and {y.dtype}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{where}x holds non-finite values (NaN or Inf)")
    _check_targets(y, objective, where)
    return x.astype(np.float64), y.astype(np.float64)


def _from_arrays(x: np.ndarray, y: np.ndarray, length: int, objective: str = "bce") -> TaskData:
    """``data_from_arrays`` past its checks of the arrays (as ``load_data`` has made them)."""
    if length > x.shape[1]:
        raise InputError(
            f"length {length} exceeds the data's {x.shape[1]} steps; valid lengths: 1 to {x.shape[1]}"
        )
    return TaskData(
        torch.from_numpy(np.ascontiguousarray(x[:, :length], dtype=np.float64)),
        torch.from_numpy(np.ascontiguousarray(y[:, :length] if y.ndim == 2 else y, dtype=np.float64)),
        length,
        objective,
    )
