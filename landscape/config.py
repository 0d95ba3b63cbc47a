"""A slice's configuration: ``SliceConfig``, frozen, its defaults and their help written once on
its fields, validated once.

Every field is an option of ``python -m landscape.slice`` (``landscape.options``: the command's
parser is built from the fields); an invalid value raises ``ConfigError`` naming the field, which
the command says as its flag. ``landscape.pipeline.slice_surface`` computes what a configuration describes.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ._cli import finite_float, parse_files, parse_lengths, parse_mem, parse_point, parse_range, parse_res
from ._errors import DTYPES, MAX_SEED, ConfigError, InputError, require
from ._io import npz_header
from .backends import BACKENDS
from .cells import CELLS, GATES, GRU_RESETS, HEADS, MAX_CLASSES, MAX_SIZE, get_cell
from .evaluate import DEFAULT_MEM
from .inits import INITS
from .keras_files import KERAS_SUFFIXES, read_keras
from .options import option
from .params import CENTERS, _load_checkpoint, checkpoint_size
from .planes import LINE_RES, MAX_COORD, NORMS, check_res
from .tasks import MAX_DATA, TASKS, get_task
from .tiles import TIMEOUT, scheduler_address
from .trajectories import MAX_STEPS

__all__ = [
    "SliceConfig",
    "PLANES",
    "PATH_LR",
    "TRAIN_LR",
    "MAX_RESULT",
    "MAX_WORK",
    "MAX_LENGTHS",
    "max_workers",
]

PLANES = ("axis", "random", "pca", "line", "through")
PATH_LR, TRAIN_LR = 0.01, 1e-3  # default learning rates of descent paths and of --center trained
MAX_RESULT = 4 << 30  # bytes of the surface's arrays
MAX_WORK = 1e14  # cell-steps of one slice: about a day at 1e9 a second
MAX_LENGTHS = 1000  # lengths of one sweep (each its own plane, data and panel)
MAX_TIMEOUT = 3600.0  # seconds a Dask connection may be waited for
WORKER_BYTES = 1 << 30  # memory a local worker process takes besides its chunk (torch, the data)
DEVICES = ("cpu", "cuda")
_AXES = "; ".join(f"{n}: {c.default_plane[0]} x {c.default_plane[1]}" for n, c in CELLS.items())


def max_workers(mem: int) -> int:
    """Local worker processes this machine holds: one per core, each with ``mem`` bytes of chunk
    and WORKER_BYTES more within its memory."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        ram = 0
    return max(1, min(cores, ram // (mem + WORKER_BYTES) if ram else cores))


def _size_text(name: str, size: tuple[int, int, int]) -> str:
    try:
        return get_cell(name, hidden=size[0], inputs=size[1], layers=size[2]).size_text()
    except InputError:
        return f"{size[0]} units, {size[1]} inputs, {size[2]} layers"


def _real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _whole(v) -> bool:
    return _real(v) and math.isfinite(v) and int(v) == v


def _finite_pair(v, param: str, *, ordered: bool) -> None:
    ok = v is None or (
        isinstance(v, (tuple, list))
        and len(v) == 2
        and all(_real(a) for a in v)
        and all(math.isfinite(a) and abs(a) <= MAX_COORD for a in v)
        and (not ordered or v[0] < v[1])
    )
    order = ", LO < HI" if ordered else ""
    require(ok, param, f"{v!r} must be two finite numbers within +-{MAX_COORD:g}{order}")


@dataclass(frozen=True)
class SliceConfig:
    """Everything that decides a slice's numbers; validated once, here. Each field is an option of
    ``python -m landscape.slice``, its default and help written once, below."""

    cell: str = option(
        "rnn",
        "the recurrence: nn.RNN, nn.LSTM, nn.GRU (of --units, --layers, --inputs) with an "
        "nn.Linear readout, or Pascanu's one-unit map",
        choices=tuple(CELLS),
    )
    task: str | None = option(
        None, "data and loss (default: latching, or pascanu for the pascanu cell)", choices=tuple(TASKS)
    )
    lengths: tuple[int, ...] = option(
        (50,),
        "sequence length, or a comma-separated sweep such as 5,10,20,50,100",
        flag="--len",
        metavar="L[,L...]",
        text="50",
        parse=lambda s, flag: tuple(parse_lengths(s)),
    )
    data: str | None = option(
        None,
        "your own data: arrays x (N, T) or (N, T, I) and y (N,) of 0/1; length L uses x[:, :L]",
        metavar="FILE.npz",
    )  # None: generated
    plane: str = option(
        "axis",
        "two named parameters, two random directions, the first two principal "
        "components of the training path (with --center trained), or an interpolation "
        "between models: a line A to B or the plane through A, B, C (--to)",
        choices=PLANES,
    )
    to: tuple[str, ...] | None = option(
        None,
        "interpolation: --plane line runs from --center (A, at alpha 0) to the model file B (at 1); "
        "--plane through is the plane through A, B and C (A at 0,0; B at 1,0; C at beta 1); checkpoints or "
        "Keras files of the same model. With --center trained, a line without --to runs from the "
        "initialization to the trained model",
        metavar="B.pt[,C.pt]",
        parse=parse_files,
    )
    x: str | None = option(
        None,
        f"x-axis parameter of an axis plane ({_AXES}; beyond one unit, state_dict "
        "names such as weight_hh_l0[3,5] or bias_ih_l1[2], the short names meaning unit "
        "0)",
    )
    y: str | None = option(None, "y-axis parameter of an axis plane")
    xrange: tuple[float, float] | None = option(
        None,
        "x range (absolute values on an axis plane; default -1:1 on a random plane)",
        metavar="LO:HI",
        parse=parse_range,
        negative=True,
    )
    yrange: tuple[float, float] | None = option(
        None, "y range", metavar="LO:HI", parse=parse_range, negative=True
    )
    res: tuple[int, int] | None = option(
        None,
        "grid points per axis (default 51, or 101,1001 for pascanu)",
        metavar="N|NX,NY",
        parse=lambda s, flag: parse_res(s),
    )
    norm: str = option("filter", "random-direction normalization", choices=NORMS)
    center: str = option(
        "init",
        "the model at the plane's centre: torch.nn's init for --seed, that model "
        "trained at each length (saved as <name>_L<n>.pt), or a checkpoint",
        metavar="init|trained|FILE.pt",
    )
    init: str = option(
        "torch",
        "the initialization of --center init (and of --center trained's start): "
        "torch.nn's defaults, or Keras's (orthogonal recurrent weights, forget bias 1, glorot "
        "inputs)",
        choices=tuple(INITS),
    )
    head: str | None = option(
        None,
        "the readout: one logit with binary cross-entropy, Keras's Dense(2, "
        "softmax) with sparse categorical cross-entropy (axes w_out_0, w_out_1, "
        "b_out_0, b_out_1), softmax over --classes K, or linear (one real output, "
        "squared error) "
        "(default: the task's: logit, softmax for longlag, linear for adding)",
        choices=tuple(HEADS),
    )
    classes: int | None = option(
        None, "classes of the softmax head (default: the task's, p + 1 for longlag)", metavar="K", kind=int
    )
    symbols: int | None = option(
        None, "longlag tasks: p, the symbols a_1..a_p besides y (default: the length)", metavar="P", kind=int
    )
    gru_reset: str = option(
        "after",
        "gru: the reset gate after the recurrent product (torch.nn, Keras >= 2.3) "
        "or before it (Keras before 2.3, reset_after=False)",
        choices=tuple(GRU_RESETS),
    )
    units: int | None = option(
        None,
        f"hidden units per layer, 1 to {MAX_SIZE} (default: the checkpoint's, else 1)",
        metavar="H",
        kind=int,
    )
    layers: int | None = option(
        None, "stacked recurrent layers (default: the checkpoint's, else 1)", metavar="L", kind=int
    )
    inputs: int | None = option(
        None, "features per step (default: the data's or the checkpoint's, else 1)", metavar="I", kind=int
    )
    gate: str = option(
        "sigmoid",
        "lstm, gru: the gates' function, the logistic sigmoid (torch.nn, Keras >= 2.3) "
        "or Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1)",
        choices=tuple(GATES),
    )
    epochs: int = option(5, "epochs of --center trained", kind=int)
    batch: int = option(16, "batch size of --center trained", kind=int)
    grad: bool = option(
        False, "also store gradient maps: grad_norm, grad_x, grad_y (needs autograd memory)", switch=True
    )
    threshold: float = option(
        1.0, "gradient norm above which a cell counts as steep in the cliff table", kind=finite_float
    )
    start: tuple[float, float] | None = option(
        None,
        "start of a plain and a clipped gradient-descent path, in plane coordinates",
        metavar="X,Y",
        parse=parse_point,
        negative=True,
    )
    lr: float | None = option(
        None,
        f"learning rate of the descent paths (default {PATH_LR}) and of --center "
        f"trained's Adam (default {TRAIN_LR})",
        kind=finite_float,
    )
    steps: int = option(50, "steps of the descent paths", kind=int)
    clip: float = option(
        1.0, "gradient-norm threshold of the clipped path (Pascanu et al. Algorithm 1)", kind=finite_float
    )
    samples: int = option(1000, "sequences in the generated data", kind=int)
    noise: float = option(0.1, "std of the Gaussian input noise", kind=finite_float)
    seed: int = option(0, "seed of the data, the init and the directions", kind=int)
    dtype: str = option("float32", "the floating-point type of the computation", choices=tuple(DTYPES))
    device: str = option("cpu", "where it runs", choices=DEVICES)
    backend: str = option(
        "auto",
        "fused: the compiled kernel on the CPU; reference: the readable torch path; "
        "auto: fused where it runs and the work repays building it",
        choices=BACKENDS,
    )
    mem: int = option(
        DEFAULT_MEM, "memory budget of one vectorized chunk", text="1G", parse=lambda s, flag: parse_mem(s)
    )  # bytes
    tile_rows: int | None = option(
        None,
        "split the sweep into tiles of R grid rows per length, each saved in "
        "<name>.tiles/ as it is done: run the same command again after an "
        "interruption to resume",
        metavar="R",
        kind=int,
    )
    workers: int | None = option(
        None,
        "compute the tiles on a local Dask cluster of N processes (pip install 'rnn-landscape[distributed]')",
        metavar="N",
        kind=int,
    )
    scheduler: str | None = option(
        None, "compute the tiles on an existing Dask cluster", metavar="tcp://HOST:PORT"
    )
    timeout: float | None = option(
        None,
        "wait at most this long to reach --scheduler, then for its first worker (default 30)",
        metavar="SECONDS",
        kind=finite_float,
    )

    def __post_init__(self) -> None:
        # numpy numbers and lists are welcome from Python callers; the record keeps plain ones
        if isinstance(self.seed, numbers.Integral) and not isinstance(self.seed, bool):
            object.__setattr__(self, "seed", int(self.seed))
        if isinstance(self.to, str):
            object.__setattr__(self, "to", (self.to,))
        elif isinstance(self.to, list):
            object.__setattr__(self, "to", tuple(self.to))
        if isinstance(self.lengths, numbers.Integral):
            object.__setattr__(self, "lengths", (int(self.lengths),))
        elif isinstance(self.lengths, (tuple, list, np.ndarray)) and all(
            isinstance(n, numbers.Integral) for n in self.lengths
        ):
            object.__setattr__(self, "lengths", tuple(int(n) for n in self.lengths))
        for param, value, valid in (
            ("cell", self.cell, CELLS),
            ("plane", self.plane, PLANES),
            ("norm", self.norm, NORMS),
            ("init", self.init, INITS),
            ("head", self.head or "logit", HEADS),
            ("gru_reset", self.gru_reset, GRU_RESETS),
            ("gate", self.gate, GATES),
            ("dtype", self.dtype, DTYPES),
            ("device", self.device, DEVICES),
            ("backend", self.backend, BACKENDS),
        ):
            require(
                isinstance(value, str) and value in valid,
                param,
                f"{value!r} is unknown; valid: {', '.join(valid)}",
            )
        get_cell(self.cell, gru_reset=self.gru_reset, gate=self.gate)  # what the cell has
        for param in ("classes", "symbols"):
            v = getattr(self, param)
            require(
                v is None or (_whole(v) and 2 <= v <= MAX_CLASSES),
                param,
                f"{v!r} must be an integer from 2 to {MAX_CLASSES}",
            )
        for param in ("units", "layers", "inputs"):
            v = getattr(self, param)
            require(
                v is None or (_whole(v) and 1 <= v <= MAX_SIZE),
                param,
                f"{v!r} must be an integer from 1 to {MAX_SIZE}",
            )
        require(
            self.task is None or self.task in TASKS,
            "task",
            f"{self.task!r} is unknown; valid: {', '.join(TASKS)}",
        )
        for param in ("samples", "steps", "epochs", "batch", "mem", "tile_rows", "workers"):
            v = getattr(self, param)
            require(
                _whole(v) or (v is None and param in ("tile_rows", "workers")),
                param,
                f"{v!r} must be an integer",
            )
        for param in ("lr", "clip", "threshold", "noise", "timeout"):
            v = getattr(self, param)
            require(_real(v) or (v is None and param in ("lr", "timeout")), param, f"{v!r} must be a number")
        if self.res is not None:
            try:
                object.__setattr__(self, "res", check_res(self.res))
            except InputError:
                raise ConfigError(
                    "res", f"{self.res!r} must be (nx, ny) or one number, each an integer >= 2"
                ) from None
        require(
            isinstance(self.lengths, (tuple, list)), "lengths", f"{self.lengths!r} must be a list of integers"
        )
        require(len(self.lengths) > 0, "lengths", "is empty; give at least one length")
        require(
            len(self.lengths) <= MAX_LENGTHS,
            "lengths",
            f"has {len(self.lengths)} lengths; the limit is {MAX_LENGTHS}",
        )
        for n in self.lengths:
            require(_whole(n) and n >= 1, "lengths", f"{n!r} must be a positive integer")
        self._check_values()

    def _check_values(self) -> None:
        """Each field's range, then how the fields fit together (after ``__post_init__`` has
        checked their types and names)."""
        _finite_pair(self.xrange, "xrange", ordered=True)
        _finite_pair(self.yrange, "yrange", ordered=True)
        _finite_pair(self.start, "start", ordered=False)
        require(self.lr is None or 0 < self.lr < math.inf, "lr", f"{self.lr} must be a finite number > 0")
        require(1 <= self.steps <= MAX_STEPS, "steps", f"{self.steps} must be from 1 to {MAX_STEPS}")
        require(0 < self.clip < math.inf, "clip", f"{self.clip} must be a finite number > 0")
        require(0 < self.threshold < math.inf, "threshold", f"{self.threshold} must be a finite number > 0")
        require(
            self.timeout is None or 0 < self.timeout <= MAX_TIMEOUT,
            "timeout",
            f"{self.timeout} must be a number of seconds > 0 and <= {MAX_TIMEOUT:g}",
        )
        require(self.samples >= 2, "samples", f"{self.samples} must be at least 2")
        require(0 <= self.noise < math.inf, "noise", f"{self.noise} must be a finite number >= 0")
        require(self.mem > 0, "mem", f"{self.mem} must be a positive number of bytes")
        require(
            not isinstance(self.seed, bool)
            and isinstance(self.seed, numbers.Integral)
            and 0 <= self.seed <= MAX_SEED,
            "seed",
            f"{self.seed} must be an integer from 0 to {MAX_SEED}",
        )
        require(
            self.epochs >= 1 and self.batch >= 1,
            "epochs",
            f"{self.epochs} and {{batch}} {self.batch} must be positive integers",
        )
        self._check_fit()

    def _check_fit(self) -> None:
        """The fields against each other and the cell: task, data, axes, centre, device, size, tiles."""
        cell = self.model_cell
        task = get_task(self.task_name)
        if task.takes_input != cell.takes_input:
            valid = [t for t, v in TASKS.items() if v.takes_input == cell.takes_input]
            raise ConfigError(
                "task",
                f"{self.task_name!r} does not fit cell {cell.name!r}; valid tasks for it: {', '.join(valid)}",
            )
        require(
            not (self.data and not cell.takes_input),
            "data",
            f"gives input sequences, and cell {cell.name!r} takes no input",
        )
        require(
            self.data or not cell.takes_input or task.objective == cell.objective,
            "head",
            f"{cell.head} is scored by the {cell.objective} loss; the {task.name} task's targets are for "
            f"{task.objective}",
        )
        if self.keras_model is not None:
            kcell = self.keras_model[0]
            require(
                kcell.reset == cell.reset,
                "gru_reset",
                f"{cell.reset}: {self.center} holds a GRU with the reset gate {kcell.reset} the product; "
                f"give {{gru_reset={kcell.reset}}}",
            )
            require(
                kcell.gate == cell.gate,
                "gate",
                f"{cell.gate}: {self.center}'s gates are {kcell.gate}; give {{gate={kcell.gate}}}",
            )
            require(
                kcell.layout == cell.layout, "head", f"{cell.head}: {self.center}'s readout is {kcell.head}"
            )
        K = task.head(max(self.lengths), self.symbols)[1]
        require(
            self.data or cell.objective != "ce" or cell.classes >= K,
            "classes",
            f"{cell.classes}: the {task.name} task's targets are classes 0 to {K - 1}",
        )
        require(
            self.symbols is None or task.name.startswith("longlag"),
            "symbols",
            f"is the p of the longlag tasks, not of {task.name}",
        )
        require(
            self.data or len({task.features(n, self.symbols) for n in self.lengths}) == 1,
            "lengths",
            f"give the {task.name} task "
            f"{sorted({task.features(n, self.symbols) for n in self.lengths})[:4]} inputs: one model "
            "cannot take them all (longlag-random with {symbols} keeps p fixed)",
        )
        require(
            self.plane == "axis" or not (self.x or self.y),
            "x",
            f"and {{y}} name the axes of {{plane=axis}}; a {self.plane} plane has none",
        )
        for param in ("x", "y"):
            v = getattr(self, param)
            require(
                v is None or cell.index(v) is not None,
                param,
                f"{v!r} is no parameter of a {cell.name} model of {cell.size_text()}; valid: "
                f"{cell.names_hint()}",
            )
        x, y = self.axes
        require(
            cell.index(x) != cell.index(y),
            "x",
            f"and {{y}} must be different parameters, both are {x!r}" + (f" and {y!r}" if x != y else ""),
        )
        gives = get_task(self.task_name).features(max(self.lengths), self.symbols)
        require(
            not cell.takes_input or self.data or cell.inputs == gives,
            "inputs",
            f"{cell.inputs}: the {self.task_name} task gives {gives} input(s) per step; give {{data}} of "
            f"{cell.inputs} features",
        )
        self._check_ends()
        require(
            self.plane != "pca" or self.center == "trained",
            "plane",
            "pca is the plane of a training path: it needs {center=trained}",
        )
        if self.data and self.center == "trained" and os.path.isfile(self.data):
            yshape = npz_header(self.data, "data file").get("y", ((0,),))[0]
            require(
                len(yshape) != 2,
                "center",
                f"trained trains on one target per sequence; {self.data} "
                "holds a target per step (y of (N, T)): slice a model trained elsewhere ({center=FILE})",
            )
        require(
            self.center != "trained" or cell.takes_input,
            "center",
            f"trained trains a classifier; cell {cell.name!r} has no input",
        )
        require(
            self.device != "cuda" or torch.cuda.is_available(),
            "device",
            "cuda: no CUDA device is available here; valid: cpu",
        )
        self._check_size()
        require(self.tile_rows is None or self.tile_rows >= 1, "tile_rows", f"{self.tile_rows} must be >= 1")
        most = max_workers(self.mem)
        require(
            self.workers is None or 1 <= self.workers <= most,
            "workers",
            f"{self.workers} must be an integer from 1 to {most}: this machine's cores, each worker with "
            f"{{mem}} and {WORKER_BYTES >> 30} GiB more within its memory",
        )
        require(
            not (self.workers and self.scheduler),
            "workers",
            "starts a local cluster; {scheduler} names an existing one: give one of them",
        )
        if self.scheduler is not None:
            normal, why = scheduler_address(self.scheduler)
            shown = repr(self.scheduler)[:80].translate({ord("{"): "(", ord("}"): ")"})
            require(normal is not None, "scheduler", f"{shown} {why}")
            object.__setattr__(self, "scheduler", normal)

    def _check_ends(self) -> None:
        """The models an interpolation runs through: ``to`` for line and through planes only, as
        many as the plane takes, each a file of the same model (its cell, size and readout)."""
        need = {"line": (0, 1) if self.center == "trained" else (1,), "through": (2,)}.get(self.plane, (0,))
        to = self.to or ()
        require(
            isinstance(to, tuple) and all(isinstance(f, str) and f for f in to),
            "to",
            f"{self.to!r} must be model files",
        )
        what = {
            "line": "one model FILE (the line's end B)"
            + (
                ", or none with {center=trained}: from the initialization to the trained model"
                if self.center == "trained"
                else ""
            ),
            "through": "two model FILEs (B and C; the centre is A)",
        }.get(self.plane, "no models")
        require(len(to) in need, "to", f"gives {len(to)} model(s); plane {self.plane} takes {what}")
        require(
            not (self.start and self.plane == "line"),
            "start",
            "is a point of a plane; a line plane has one axis: give {plane=through} or axis",
        )
        self.end_models  # noqa: B018 - read and checked here, once

    @functools.cached_property
    def end_models(self) -> tuple[torch.Tensor, ...]:
        """The (P,) float64 parameters of the models in ``to``, each file read and checked once
        against the centre's model: its cell, size, readout and gates."""
        cell, out = self.model_cell, []
        for f in self.to or ():
            require(
                os.path.isfile(f), "to", f"{f}: no such file; give checkpoints FILE.pt or Keras model files"
            )
            kcell, theta = read_keras(f) if f.endswith(KERAS_SUFFIXES) else (None, None)
            name, size = (
                checkpoint_size(f)
                if kcell is None
                else (kcell.name, (kcell.hidden, kcell.inputs, kcell.layers))
            )
            require(
                name == cell.name and size == (cell.hidden, cell.inputs, cell.layers),
                "to",
                f"{f} holds a {name} model of {_size_text(name, size)}; the centre is a {cell.name} model "
                f"of {cell.size_text()}",
            )
            if kcell is not None:
                same = (kcell.layout, kcell.reset, kcell.gate) == (cell.layout, cell.reset, cell.gate)
                require(
                    same,
                    "to",
                    f"{f} holds a {name} model with the {kcell.head} readout, {kcell.gate} "
                    f"gates; the centre's are {cell.head}, {cell.gate}",
                )
            out.append((_load_checkpoint(f, cell) if theta is None else theta).to(torch.float64))
        return tuple(out)

    @property
    def tiled(self) -> bool:
        """Whether the sweep runs as tiles (resumable, and on Dask with workers or a scheduler)."""
        return bool(self.tile_rows or self.workers or self.scheduler)

    def _check_size(self) -> None:
        """Refuse, before any allocation, a result or data too big for memory or a run too long."""
        cell, (nx, ny) = self.model_cell, self.grid_res
        maps = 2 + (3 if self.grad else 0)  # loss, accuracy, gradient maps
        result = len(self.lengths) * nx * ny * maps * 8
        require(
            result <= MAX_RESULT,
            "res",
            f"{nx},{ny} over {len(self.lengths)} length(s) makes a "
            f"result of {result / 2**30:.1f} GiB; the limit is {MAX_RESULT / 2**30:.0f} GiB",
        )
        n = 1 if not cell.takes_input else self.samples
        data = n * sum(self.lengths) * 8 * 2  # float64 inputs, and their cast
        require(
            data <= MAX_DATA,
            "samples",
            f"{self.samples} sequences of {max(self.lengths)} steps "
            f"make {data / 2**30:.1f} GiB of data; the limit is {MAX_DATA / 2**30:.0f} GiB",
        )
        work = nx * ny * n * sum(self.lengths) * (3 if self.grad else 1)
        require(
            work <= MAX_WORK,
            "lengths",
            f"{list(self.lengths)[:5]} on a {nx} x {ny} grid of {n} "
            f"sequences is {work:.1e} cell-steps, about {work / 1e9 / 3600:.0f} h at 1e9 a second; "
            f"the limit is {MAX_WORK:.0e}",
        )

    @functools.cached_property
    def model_size(self) -> tuple[int, int, int]:
        """(units, inputs, layers): as given, else the checkpoint's (``center``) and the data's
        features per step, else 1; a given size that differs from the file's is refused."""
        found = {}
        if self.keras_model is not None:
            kcell = self.keras_model[0]
            name, size = kcell.name, (kcell.hidden, kcell.inputs, kcell.layers)
            require(
                name == self.cell,
                "center",
                f"{self.center} holds a {name!r} model, not the {self.cell!r} asked for by {{cell}}",
            )
            found.update(zip(("units", "inputs", "layers"), size, strict=True))
            found["from"] = f"Keras model {self.center}"
        elif self.center not in CENTERS and isinstance(self.center, str) and os.path.isfile(self.center):
            name, size = checkpoint_size(self.center)
            require(
                name == self.cell,
                "center",
                f"{self.center} holds a {name!r} model, not the {self.cell!r} asked for by {{cell}}",
            )
            found.update(zip(("units", "inputs", "layers"), size, strict=True))
            found["from"] = f"checkpoint {self.center}"
        if self.data and os.path.isfile(self.data):
            shape = npz_header(self.data, "data file").get("x", ((0, 0),))[0]
            features = shape[2] if len(shape) == 3 else 1
            if "inputs" in found and found["inputs"] != features:
                raise ConfigError(
                    "data",
                    f"{self.data} has {features} feature(s) per step; the model in "
                    f"{found['from']} takes {found['inputs']}",
                )
            found["inputs"] = features
        elif "inputs" not in found and self.task_name in TASKS:
            task = TASKS[self.task_name]
            if task.takes_input:
                found["inputs"] = task.features(max(self.lengths), self.symbols)
                found["from"] = f"the {self.task_name} task"
        size = []
        for param in ("units", "inputs", "layers"):
            given, there = getattr(self, param), found.get(param)
            require(
                given is None or there is None or given == there,
                param,
                f"{given} differs from the {there} of {found.get('from', 'the data')}",
            )
            size.append(int(given if given is not None else there if there is not None else 1))
        return tuple(size)

    @functools.cached_property
    def keras_model(self):
        """(cell, theta) of a Keras model file given as ``center`` (``landscape.keras_files``), or None."""
        if isinstance(self.center, str) and self.center.endswith(KERAS_SUFFIXES):
            return read_keras(self.center)
        return None

    @property
    def model_head(self) -> tuple[str, int | None]:
        """The readout and its classes: as given, else a Keras model's, else the task's (longlag:
        softmax of p + 1, adding: linear; one logit for the others and for data files)."""
        if self.keras_model is not None and self.head is None:
            kcell = self.keras_model[0]
            return kcell.head, kcell.classes or None
        task = TASKS.get(self.task_name)
        head, classes = task.head(max(self.lengths), self.symbols) if task and not self.data else ("logit", 0)
        if self.head is not None:
            head, classes = self.head, (classes if self.head == "softmax" else 0)
        return head, (self.classes if self.classes is not None else classes) or None

    @functools.cached_property
    def model_cell(self):
        hidden, inputs, layers = self.model_size
        head, classes = self.model_head
        if not CELLS[self.cell].module and self.head is None:
            head, classes = "logit", None
        try:
            return get_cell(
                self.cell,
                head=head,
                gru_reset=self.gru_reset,
                gate=self.gate,
                hidden=hidden,
                inputs=inputs,
                layers=layers,
                classes=classes,
            )
        except InputError as e:
            raise ConfigError("classes" if "classes" in str(e) else "head", f"is refused: {e}") from None

    @property
    def axes(self) -> tuple[str, str]:
        """The axis plane's two parameters: ``x`` and ``y``, or the cell's default plane's."""
        return self.x or self.model_cell.default_plane[0], self.y or self.model_cell.default_plane[1]

    @property
    def grid_res(self) -> tuple[int, int]:
        """Grid points (nx, ny): ``res``, or the cell's default axis plane's, or 51 x 51."""
        if self.plane == "line":  # one row: the points along the line
            return (self.res[0] if self.res else LINE_RES), 1
        if self.res is None and self.plane == "axis":
            return self.model_cell.default_plane[4]
        return self.res or (51, 51)

    @property
    def wait(self) -> float:
        """Seconds to wait for a Dask scheduler, then for its first worker."""
        return TIMEOUT if self.timeout is None else float(self.timeout)

    @property
    def train_lr(self) -> float:
        return self.lr or TRAIN_LR

    @property
    def train_config(self):
        """How a trained centre trains (``landscape.train.TrainConfig``): this configuration's
        seed, epochs, batch, learning rate, initialization, type, device and engine, every step
        recorded (the training paths)."""
        from .train import TrainConfig  # here: the configuration module stays below the training one

        return TrainConfig(
            seed=self.seed,
            epochs=self.epochs,
            batch=self.batch,
            lr=self.train_lr,
            record_every=1,
            init=self.init,
            dtype=DTYPES[self.dtype],
            device=self.device,
            backend=self.backend,
        )

    @property
    def path_lr(self) -> float:
        return self.lr or PATH_LR

    def record(self, planes, trained=None) -> dict:
        """This configuration as a surface file keeps it (``Surface.config``, JSON), with what the
        defaults resolved to: the planes' axes and windows, the model's size and variant, and a
        trained centre's training (``trained``, a TrainResult)."""
        c, plane = asdict(self), planes[0]
        c.update(
            task=self.task_name,
            lengths=list(self.lengths),
            x=plane.xlabel,
            y=plane.ylabel,
            xrange=[float(plane.x[0]), float(plane.x[-1])],
            yrange=[float(plane.y[0]), float(plane.y[-1])],
            res=[len(plane.x), len(plane.y)],
            norm=self.norm if self.plane == "random" else None,
            marks=[[list(m) for m in p.marks] for p in planes] or None,
            to=list(self.to) if self.to else None,
            samples=None if self.data else self.samples,
            head=self.model_cell.head,
            gru_reset=self.gru_reset if self.cell == "gru" else None,
            gate=self.gate if self.cell in ("lstm", "gru") else None,
            units=self.model_cell.hidden,
            inputs=self.model_cell.inputs,
            layers=self.model_cell.layers,
            start=list(self.start) if self.start else None,
            lr=self.path_lr if self.start else None,
            steps=self.steps if self.start else None,
            clip=self.clip if self.start else None,
            train=dict(
                epochs=self.epochs,
                batch=self.batch,
                lr=self.train_lr,
                optimizer=self.train_config.optimizer,
                val_frac=self.train_config.val_frac,
                final_val_acc=trained.val_acc[:, -1].tolist(),
            )
            if trained is not None
            else None,
        )
        for k in ("epochs", "batch"):
            c.pop(k)
        return c

    @property
    def task_name(self) -> str:
        return self.task or CELLS[self.cell].default_task
