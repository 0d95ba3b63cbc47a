"""The latching experiment as a library: ``ExperimentConfig`` (every choice, its default and help
written once on its field, validated once), its protocols and presets as ``dataclasses.replace``,
and ``run_experiment``: for each cell, task and sequence length, ``repeats`` models trained as one
vectorized ensemble per cell and task, each on its own split, judged by each task's criterion.
``python -m landscape.latching`` is its command.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from ._cli import finite_float, parse_lengths
from ._errors import DTYPES, MAX_SEED, ConfigError, require
from .backends import BACKENDS
from .cells import CELLS, GATES, GRU_RESETS, HEADS, MAX_SIZE, get_cell
from .inits import INITS
from .options import option
from .tasks import MAX_DATA, TASKS, get_task, make_data
from .train import MAX_STEPS, MAX_TRAIN_WORK, OPTIMIZERS, SPLITS, TrainConfig, train_ensemble

__all__ = [
    "ExperimentConfig",
    "Run",
    "Summary",
    "run_experiment",
    "summarize",
    "table",
    "PROTOCOLS",
    "QUICK",
    "POSTED_LENGTHS",
    "COLUMNS",
]

POSTED_LENGTHS = (2, 5, 8, 10, 15, 20, 25, 30, *range(40, 201, 10))
# The protocols: torch.nn's models (the default), or the posted Keras 2.1 models: Keras's
# initializers, Dense(2, softmax) with sparse categorical cross-entropy, Keras's Adam, the GRU of
# Keras before 2.3, Keras 2's hard_sigmoid gates, and Keras's validation_split on shuffled data
# (with keras_split, on the label-ordered data, as posted).
PROTOCOLS = {
    "torch": dict(
        init="torch", head="logit", optimizer="adam", gru_reset="after", gate="sigmoid", split="stratified"
    ),
    "keras": dict(
        init="keras",
        head="softmax2",
        optimizer="adam-keras",
        gru_reset="before",
        gate="hard_sigmoid",
        split="shuffled",
    ),
}
QUICK = dict(lengths=(2, 5, 10, 20, 40), samples=4000, repeats=10, epochs=5)  # a one-minute preset


@dataclass(frozen=True)
class Run:
    """One trained model of an experiment (a row of its table, and of its CSV): the task, cell,
    units, length, repeat and seed; its final validation accuracy, fraction of validation
    sequences right, validation loss, training accuracy and loss; and whether it succeeded (1)."""

    task: str
    cell: str
    units: int
    length: int
    repeat: int
    seed: int
    val_acc: float
    val_right: float
    val_loss: float
    train_acc: float
    train_loss: float
    success: int


@dataclass(frozen=True)
class Summary:
    """One (task, cell) of an experiment, per length: the success frequency, the mean and standard
    deviation of the final validation accuracy, and the number of models trained."""

    lengths: np.ndarray
    success: np.ndarray
    mean_acc: np.ndarray
    std_acc: np.ndarray
    repeats: np.ndarray


COLUMNS = tuple(f.name for f in fields(Run))  # the CSV's columns, in order
DEVICES = ("cpu", "cuda")


def _names(text: str, flag: str) -> tuple[str, ...]:
    return tuple(text.split(","))


def _lengths(text: str, flag: str) -> tuple[int, ...]:
    return tuple(parse_lengths(text, flag))


def _whole(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _number(v) -> bool:
    real = isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)
    return real and math.isfinite(v)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that decides an experiment's numbers; validated once, here. Each field is an
    option of ``python -m landscape.latching``."""

    cells: tuple[str, ...] = option(
        ("rnn", "lstm", "gru"), "cells to train, comma-separated", text="rnn,lstm,gru", parse=_names
    )
    tasks: tuple[str, ...] = option(
        ("latching", "relay"),
        "tasks, comma-separated: latching, relay, and "
        "Hochreiter and Schmidhuber's longlag, longlag-random, adding",
        text="latching,relay",
        parse=_names,
    )
    lengths: tuple[int, ...] = option(
        POSTED_LENGTHS,
        "sequence lengths, comma-separated",
        text=",".join(map(str, POSTED_LENGTHS)),
        parse=_lengths,
    )
    samples: int = option(10000, "sequences per length (N)", kind=int)
    val_frac: float = option(0.2, "validation fraction", flag="--val", kind=finite_float)
    batch: int = option(16, "batch size", kind=int)
    epochs: int = option(5, "epochs", kind=int)
    repeats: int = option(30, "models per cell, task and length", kind=int)
    lr: float = option(1e-3, "learning rate", kind=finite_float)
    protocol: str = option(
        "torch",
        "torch: torch.nn models, one logit, torch's Adam, stratified split; "
        "keras: the posted Keras 2.1 models (Keras's init, Dense(2, softmax), Keras's "
        "Adam, reset-before GRU, hard_sigmoid gates, validation_split on shuffled data); "
        "the options below override single parts",
        choices=tuple(PROTOCOLS),
    )
    optimizer: str = option("adam", "the optimizer (default: the protocol's)", choices=tuple(OPTIMIZERS))
    init: str = option(
        "torch", "torch.nn's or Keras's initialization (default: the protocol's)", choices=tuple(INITS)
    )
    head: str = option(
        "logit",
        "logit (binary cross-entropy) or softmax2 (Keras's Dense(2, softmax)) (default: the protocol's)",
        choices=tuple(HEADS),
    )
    gru_reset: str = option(
        "after",
        "gru: reset gate after the recurrent product (torch.nn) or before it "
        "(Keras < 2.3) (default: the protocol's)",
        choices=tuple(GRU_RESETS),
    )
    gate: str = option(
        "sigmoid",
        "lstm, gru: the gates' function, the logistic sigmoid (torch.nn, Keras >= "
        "2.3) or Keras 2's hard_sigmoid (Keras 2.1, as posted) (default: the protocol's)",
        choices=tuple(GATES),
    )
    split: str = option(
        "stratified",
        "stratified, shuffled (Keras on shuffled data) or ordered (the posted "
        "artifact) (default: the protocol's)",
        choices=tuple(SPLITS),
    )
    noise: float = option(0.1, "std of the Gaussian input noise", kind=finite_float)
    success: float = option(0.9, "validation accuracy that counts as success", kind=finite_float)
    units: int = option(
        1, f"hidden units per model (1 to {MAX_SIZE}; the fused kernel runs up to 64)", kind=int
    )
    seed: int = option(0, "seed of the data, the inits and the splits", kind=int)
    dtype: str = option("float32", "the floating-point type of the training", choices=tuple(DTYPES))
    device: str = option("cpu", "where it runs", choices=DEVICES)
    backend: str = option(
        "auto",
        "fused: the compiled kernel (on the CPU, 1 to 64 units); reference: the "
        "readable torch path; auto: fused where it runs and repays building it",
        choices=BACKENDS,
    )
    keras_split: bool = option(
        False, "validation = the last 20%% of label-ordered data, as the posted run had it", switch=True
    )

    def __post_init__(self) -> None:
        for param in ("cells", "tasks", "lengths"):
            v = getattr(self, param)
            if isinstance(v, (list, np.ndarray)):
                object.__setattr__(self, param, tuple(v))
        for param, valid in (
            ("protocol", PROTOCOLS),
            ("optimizer", OPTIMIZERS),
            ("init", INITS),
            ("head", HEADS),
            ("gru_reset", GRU_RESETS),
            ("gate", GATES),
            ("split", SPLITS),
            ("dtype", DTYPES),
            ("device", DEVICES),
            ("backend", BACKENDS),
        ):
            v = getattr(self, param)
            require(isinstance(v, str) and v in valid, param, f"{v!r} is unknown; valid: {', '.join(valid)}")
        for param, valid in (
            ("cells", [n for n, c in CELLS.items() if c.takes_input]),
            ("tasks", [n for n, t in TASKS.items() if t.takes_input]),
        ):
            v = getattr(self, param)
            require(isinstance(v, tuple) and len(v) > 0, param, f"{v!r} must name at least one")
            for name in v:
                require(name in valid, param, f"{name!r} cannot be trained here; valid: {', '.join(valid)}")
            twice = sorted({n for n in v if v.count(n) > 1})
            require(not twice, param, f"{','.join(v)!r} names {', '.join(twice)} more than once")
        require(
            isinstance(self.lengths, tuple)
            and len(self.lengths) > 0
            and all(_whole(n) and n >= 1 for n in self.lengths),
            "lengths",
            f"{self.lengths!r} must be positive integers",
        )
        for param in ("samples", "batch", "epochs", "repeats", "units", "seed"):
            require(_whole(getattr(self, param)), param, f"{getattr(self, param)!r} must be an integer")
        for param in ("val_frac", "lr", "noise", "success"):
            require(_number(getattr(self, param)), param, f"{getattr(self, param)!r} must be a finite number")
        require(
            self.samples >= 5,
            "samples",
            f"{self.samples} must be at least 5, so that both splits hold samples",
        )
        require(0 < self.val_frac < 1, "val_frac", f"{self.val_frac} must lie strictly between 0 and 1")
        for param in ("batch", "epochs", "repeats"):
            require(getattr(self, param) >= 1, param, f"{getattr(self, param)} must be a positive integer")
        require(self.lr > 0, "lr", f"{self.lr} must be a finite number > 0")
        require(self.noise >= 0, "noise", f"{self.noise} must be a finite number >= 0")
        require(0 <= self.seed <= MAX_SEED, "seed", f"{self.seed} must be an integer from 0 to {MAX_SEED}")
        require(1 <= self.units <= MAX_SIZE, "units", f"{self.units} must be an integer from 1 to {MAX_SIZE}")
        require(0 < self.success <= 1, "success", f"{self.success} must lie in (0, 1]")
        data = (
            self.samples
            * sum(n * 1.1 * max(get_task(t).features(n) for t in self.tasks) for n in self.lengths)
            * 8
            * 2
        )  # float64 data and the training table
        require(
            data <= MAX_DATA,
            "samples",
            f"{self.samples} of lengths up to {max(self.lengths)} make "
            f"{data / 2**30:.1f} GiB of data; the limit is {MAX_DATA / 2**30:.0f} GiB",
        )
        steps = self.epochs * -(-int(self.samples * (1 - self.val_frac)) // self.batch)
        require(
            steps <= MAX_STEPS,
            "epochs",
            f"{self.epochs} of {self.samples} samples in batches of "
            f"{self.batch} are {steps:.1e} optimizer steps; the limit is {MAX_STEPS:.0e}",
        )
        work = 3.0 * self.epochs * self.samples * sum(self.lengths) * self.repeats * self.units**2
        require(
            work <= MAX_TRAIN_WORK,
            "epochs",
            f"{self.epochs} over {self.repeats} repeats of "
            f"{len(self.lengths)} lengths are about {work:.1e} cell-steps per cell; the limit is "
            f"{MAX_TRAIN_WORK:.0e}",
        )
        require(
            self.device != "cuda" or torch.cuda.is_available(),
            "device",
            "cuda: no CUDA device is available here; valid: cpu",
        )

    @classmethod
    def preset(cls, protocol: str = "torch", *, quick: bool = False) -> ExperimentConfig:
        """The experiment of a protocol (its parts), at the posted size or the one-minute ``quick``."""
        require(protocol in PROTOCOLS, "protocol", f"{protocol!r} is unknown; valid: {', '.join(PROTOCOLS)}")
        return replace(cls(), protocol=protocol, **PROTOCOLS[protocol], **(QUICK if quick else {}))

    @property
    def split_used(self) -> str:
        return self.train_config.split_used

    @property
    def train_config(self) -> TrainConfig:
        """How each ensemble of the experiment trains."""
        return TrainConfig(
            repeats=self.repeats,
            seed=self.seed,
            epochs=self.epochs,
            batch=self.batch,
            lr=self.lr,
            optimizer=self.optimizer,
            val_frac=self.val_frac,
            keras_split=self.keras_split,
            split=self.split,
            init=self.init,
            dtype=DTYPES[self.dtype],
            device=self.device,
            backend=self.backend,
        )


def run_experiment(cfg: ExperimentConfig, *, progress: bool = True) -> list[Run]:
    """Train every (task, cell, length, repeat) model of ``cfg``; one ``Run`` per model."""
    if not isinstance(cfg, ExperimentConfig):
        raise ConfigError("cfg", f"must be an ExperimentConfig, not {type(cfg).__name__}")
    rows = []
    for task in cfg.tasks:
        t = get_task(task)
        # one ensemble per input size: the long-lag tasks' p + 1 inputs grow with the length (p = L)
        groups: dict[int, list[int]] = {}
        for n in cfg.lengths:
            groups.setdefault(t.features(n), []).append(n)
        for inputs, group in groups.items():
            datas = [make_data(task, n, n=cfg.samples, noise=cfg.noise, seed=cfg.seed + n) for n in group]
            task_head, classes = t.head(group[0])
            for name in cfg.cells:
                cell = get_cell(
                    name,
                    head=cfg.head if t.objective == "bce" else task_head,
                    classes=classes or None,
                    gru_reset=cfg.gru_reset if name == "gru" else "after",
                    gate=cfg.gate if name in ("lstm", "gru") else "sigmoid",
                    inputs=inputs,
                )
                res = train_ensemble(cell, datas, cfg.train_config, hidden=cfg.units, progress=progress)
                rows += _rows(task, name, cfg.units, group, res, cfg.seed, cfg.success, t.objective)
    return rows


def _rows(
    task: str, name: str, units: int, lengths: list[int], res, seed: int, success: float, objective: str
) -> list[Run]:
    """One row per trained model. Success: the validation accuracy reaching ``success`` on the
    binary tasks; on Hochreiter and Schmidhuber's tasks their criterion, every validation sequence
    right (``landscape.steps.right_fraction``)."""
    out = []
    for m in range(len(res.repeat)):
        acc, right = float(res.val_acc[m, -1]), float(res.val_right[m])
        ok = acc >= success if objective == "bce" else right == 1.0
        out.append(
            Run(
                task=task,
                cell=name,
                units=units,
                length=lengths[res.length_index[m]],
                repeat=int(res.repeat[m]),
                seed=seed + m,
                val_acc=acc,
                val_right=right,
                val_loss=float(res.val_loss[m, -1]),
                train_acc=float(res.train_acc[m, -1]),
                train_loss=float(res.train_loss[m, -1]),
                success=int(ok),
            )
        )
    return out


def summarize(rows: list[Run]) -> dict[tuple[str, str], Summary]:
    """(task, cell) -> its ``Summary``: per length, the success frequency, mean and std of the final
    validation accuracy."""
    out = {}
    for task, cell in dict.fromkeys((r.task, r.cell) for r in rows):
        sel = [r for r in rows if r.task == task and r.cell == cell]
        lengths = sorted({r.length for r in sel})
        by = {n: [r for r in sel if r.length == n] for n in lengths}
        out[task, cell] = Summary(
            lengths=np.array(lengths),
            success=np.array([np.mean([r.success for r in by[n]]) for n in lengths]),
            mean_acc=np.array([np.mean([r.val_acc for r in by[n]]) for n in lengths]),
            std_acc=np.array([np.std([r.val_acc for r in by[n]]) for n in lengths]),
            repeats=np.array([len(by[n]) for n in lengths]),
        )
    return out


def table(summary: dict[tuple[str, str], Summary]) -> str:
    """The success frequencies as text: a row per (task, cell), a column per length."""
    lengths = next(iter(summary.values())).lengths
    lines = [f"{'task':9} {'cell':5} " + " ".join(f"{'L=' + str(n):>6}" for n in lengths)]
    for (task, cell), s in summary.items():
        lines.append(f"{task:9} {cell:5} " + " ".join(f"{v:6.2f}" for v in s.success))
    return "\n".join(lines)
