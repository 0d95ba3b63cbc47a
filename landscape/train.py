"""Ensemble training: many small models trained at once, as one vectorized computation.

M models of one cell type and hidden size (1 by default), of any mix of sequence lengths and
repeats, are rows of one (M, P) parameter matrix. Every step, each model draws its own mini-batch
from its own shuffled, class-balanced training split, the batch runs as one (M, H, B) state
(``landscape.units.final_states``: fused gates, each model leaving the batch once its own
sequence ends), one backward pass gives every model its own gradient, and Adam or SGD updates
all rows elementwise. No Python loop runs over models.

Adam is torch.optim.Adam's update with Keras' defaults (lr 1e-3, betas 0.9 and 0.999,
eps 1e-7); SGD is plain ``theta -= lr * g``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from ._errors import InputError, check_dtype, check_seed, check_type, require
from .backends import BACKENDS, check_features, kernel_refuses, resolve_backend, unit_work
from .cells import Cell
from .inits import check_init
from .steps import batch_grad, evaluate_split, right_fraction
from .tasks import TaskData
from .units import _init_theta, check_units, trained_mask

__all__ = [
    "OPTIMIZERS",
    "SPLITS",
    "TrainConfig",
    "TrainResult",
    "train_ensemble",
    "balanced_split",
    "make_splits",
    "make_schedule",
    "ADAM",
]

OPTIMIZERS = ("adam", "adam-keras", "sgd")
ADAM = dict(betas=(0.9, 0.999), eps=1e-7)  # Keras' defaults
MAX_TRAIN_WORK = 1e14  # cell-steps of one training run: about a day at 1e9 a second
MAX_STEPS = 10**7  # optimizer steps of one training run: hours at a millisecond a step


@dataclass
class TrainResult:
    """Per model m: its length index, repeat, initial and final parameters and its history."""

    theta0: torch.Tensor  # (M, P) float64
    theta: torch.Tensor  # (M, P) float64, after training
    length_index: np.ndarray  # (M,): index into the lengths trained
    repeat: np.ndarray  # (M,)
    train_loss: np.ndarray  # (M, epochs): mean batch loss over each epoch
    train_acc: np.ndarray  # (M, epochs)
    val_loss: np.ndarray  # (M, epochs): on the model's validation split at each epoch's end
    val_acc: np.ndarray  # (M, epochs)
    path: np.ndarray  # (M, R, P): parameters at step 0 and every `record_every` steps
    path_steps: np.ndarray  # (R,)
    config: dict = field(default_factory=dict)
    val_right: np.ndarray | None = None  # (M,): fraction of the validation split right at the end
    # (steps.right_fraction: the paper's criterion for the long-lag tasks and the adding problem)


SPLITS = ("stratified", "shuffled", "ordered")


@dataclass(frozen=True)
class TrainConfig:
    """How an ensemble trains, checked once when it is made: ``repeats`` models per length, the
    first seeded ``seed``; ``epochs`` of mini-batches of ``batch`` sequences; the optimizer
    ("adam": torch.optim.Adam's update with Keras's epsilon, "adam-keras": Keras's own update,
    whose epsilon is added before the bias correction, "sgd") at learning rate ``lr``; the
    validation fraction and ``split`` (``make_splits``; ``keras_split`` is "ordered");
    ``record_every`` > 0 records the parameters every that many steps (0: at the start and every
    epoch's end); the initialization ("torch" or "keras"), floating-point type, device and
    engine."""

    repeats: int = 1
    seed: int = 0
    epochs: int = 5
    batch: int = 16
    lr: float = 1e-3
    optimizer: str = "adam"
    val_frac: float = 0.2
    keras_split: bool = False
    split: str = "stratified"
    record_every: int = 0
    init: str = "torch"
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    backend: str = "auto"

    def __post_init__(self) -> None:
        require(
            self.optimizer in OPTIMIZERS,
            "optimizer",
            f"{self.optimizer!r} is unknown; valid: {', '.join(OPTIMIZERS)}",
        )
        for name in ("repeats", "epochs", "batch"):
            v = getattr(self, name)
            require(_whole(v) and v >= 1, name, f"{v!r} must be a positive integer")
        require(
            _whole(self.record_every) and self.record_every >= 0,
            "record_every",
            f"{self.record_every!r} must be an integer >= 0",
        )
        require(
            isinstance(self.val_frac, numbers.Real)
            and not isinstance(self.val_frac, bool)
            and 0.0 < self.val_frac < 1.0,
            "val_frac",
            f"{self.val_frac!r} must lie strictly between 0 and 1",
        )
        require(
            isinstance(self.lr, numbers.Real)
            and not isinstance(self.lr, bool)
            and self.lr > 0
            and math.isfinite(self.lr),
            "lr",
            f"{self.lr!r} must be a finite number > 0",
        )
        require(self.split in SPLITS, "split", f"{self.split!r} is unknown; valid: {', '.join(SPLITS)}")
        object.__setattr__(self, "seed", check_seed(self.seed))
        object.__setattr__(self, "init", check_init(self.init))
        object.__setattr__(self, "dtype", check_dtype(self.dtype))
        require(
            self.backend in BACKENDS, "backend", f"{self.backend!r} is unknown; valid: {', '.join(BACKENDS)}"
        )

    @property
    def split_used(self) -> str:
        """The split the models train on: "ordered" with ``keras_split``, else ``split``."""
        return "ordered" if self.keras_split else self.split


def _whole(v) -> bool:
    return (
        isinstance(v, numbers.Integral)
        and not isinstance(v, bool)
        or (isinstance(v, float) and math.isfinite(v) and v == int(v))
    )


def balanced_split(y: np.ndarray | torch.Tensor, val_frac: float, *, seed: int) -> tuple:
    """A stratified, shuffled split: (train_idx, val_idx) with each class split in proportion."""
    if isinstance(val_frac, bool) or not isinstance(val_frac, numbers.Real) or not 0.0 < val_frac < 1.0:
        raise InputError(f"validation fraction {val_frac!r} must lie strictly between 0 and 1")
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "fiub":
        raise InputError(f"labels must be a real (N,) array, got {y.dtype} of shape {y.shape}")
    return _balanced_split(y, val_frac, check_seed(seed))


def _balanced_split(y: np.ndarray, val_frac: float, seed: int) -> tuple:
    """``balanced_split`` past its checks."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        k = int(round(val_frac * len(idx)))
        val.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(val))


def make_splits(
    datas: list[TaskData],
    repeats: int,
    *,
    val_frac: float,
    seed: int,
    keras_split: bool = False,
    split: str = "stratified",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and validation indices of every model, (M, n_train) and (M, n_val).

    Model m = k * repeats + r trains on length k. Each gets its own split:
    "stratified" (the default) shuffles each class and splits it in proportion; "shuffled" is
    what Keras's ``validation_split`` gives on shuffled data, the last ``val_frac`` of a random
    permutation; "ordered" (or ``keras_split``) is the posted artifact: the data ordered by label
    (positives first) and the validation set its last ``val_frac``, so one class only. Keras's
    split point is ceil(N (1 - val_frac)).
    """
    if keras_split:
        split = "ordered"
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    train, val = [], []
    for k, d in enumerate(datas):
        y = d.y.numpy()
        at = math.ceil(len(y) * (1.0 - val_frac))  # Keras's split point
        for r in range(repeats):
            rseed = seed * 1_000_003 + k * 1009 + r
            if split == "ordered":
                order = np.argsort(-y, kind="stable")  # all positives first, as posted
                tr, va = order[:at], order[at:]
            elif split == "shuffled":
                order = np.random.default_rng(rseed).permutation(len(y))
                tr, va = order[:at], order[at:]
            elif d.objective == "mse":  # real targets have no classes to stratify by
                order = np.random.default_rng(rseed).permutation(len(y))
                tr, va = order[:at], order[at:]
            else:
                tr, va = _balanced_split(y, val_frac, rseed)
            train.append(tr)
            val.append(va)
    if len({len(t) for t in train}) != 1:
        raise InputError("every length needs the same number of samples to train as one ensemble")
    if min(len(v) for v in val) == 0 or min(len(t) for t in train) == 0:
        n = len(datas[0].y)
        raise InputError(
            f"{n} samples split at validation fraction {val_frac} leave an empty training or "
            "validation set; give more samples (at least 5 at 0.2)"
        )
    return torch.from_numpy(np.stack(train)), torch.from_numpy(np.stack(val))


def make_schedule(n_models: int, n_train: int, epochs: int, *, seed: int) -> torch.Tensor:
    """Each model's own shuffle of its training split for every epoch: (epochs, M, n_train)
    positions into that model's row of train indices."""
    return _schedule(n_models, n_train, epochs, check_seed(seed))


def _schedule(n_models: int, n_train: int, epochs: int, seed: int) -> torch.Tensor:
    """``make_schedule`` past its check."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack(
        [torch.argsort(torch.rand(n_models, n_train, generator=gen), dim=1) for _ in range(epochs)]
    )


class _Optimizer:
    """One update of every model's parameters at once: sgd, torch.optim.Adam's Adam, or Keras's."""

    def __init__(self, kind: str, lr: float):
        self.kind, self.lr, self.t = kind, lr, 0
        self.m1 = self.m2 = 0.0  # the moments, zero before the first step

    def __call__(self, theta: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        self.t += 1
        (b1, b2), eps, lr, t = ADAM["betas"], ADAM["eps"], self.lr, self.t
        if self.kind == "sgd":
            return theta - lr * g
        if self.kind == "adam-keras":  # keras.optimizers.Adam.update_step
            self.m1 = self.m1 + (g - self.m1) * (1 - b1)
            self.m2 = self.m2 + (g * g - self.m2) * (1 - b2)
            return theta - self.m1 * (lr * math.sqrt(1 - b2**t) / (1 - b1**t)) / (self.m2.sqrt() + eps)
        self.m1 = b1 * self.m1 + (1 - b1) * g  # torch.optim.Adam's update
        self.m2 = b2 * self.m2 + (1 - b2) * g * g
        return theta - (lr / (1 - b1**t)) * self.m1 / ((self.m2 / (1 - b2**t)).sqrt() + eps)


def _check_task(cell: Cell, datas: list[TaskData]) -> None:
    if not cell.takes_input or any(d.objective == "pascanu" for d in datas):
        raise InputError(f"training needs a task with targets and an input-taking cell, not {cell.name!r}")
    if len({d.x.shape[0] for d in datas}) != 1:
        raise InputError("every length needs the same number of samples to train as one ensemble")


def _stack(datas: list[TaskData], dtype: torch.dtype, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every length's data as rows of one table: X (K * N, T) (or (K * N, T, I) of I features)
    zero-padded, Y (K * N,); sample i of length k is row k N + i. (Each row's own length, where the
    sequences have theirs, is ``_row_steps``.)"""
    T = max(d.length for d in datas)
    X = torch.zeros(len(datas), datas[0].x.shape[0], T, *datas[0].x.shape[2:], dtype=dtype)  # (K, N, T[, I])
    for k, d in enumerate(datas):
        X[k, :, : d.length] = d.x.to(dtype)
    Y = torch.stack([d.y for d in datas]).to(dtype)  # (K, N)
    return X.reshape(-1, *X.shape[2:]).to(device), Y.reshape(-1).to(device)


def _row_steps(datas: list[TaskData], device: str) -> tuple | None:
    """(each row's own length (K * N,), the squared error's tolerance), or None where every
    sequence runs its length's whole length and no tolerance differs from 0.04."""
    if all(d.steps is None for d in datas) and all(d.tol == 0.04 for d in datas):
        return None
    S = torch.cat([d.steps if d.steps is not None else torch.full((d.x.shape[0],), d.length) for d in datas])
    return S.to(device), datas[0].tol


def train_ensemble(
    cell: Cell,
    datas: list[TaskData],
    config: TrainConfig | None = None,
    *,
    theta0: torch.Tensor | None = None,
    hidden: int | None = None,
    progress: bool = True,
    **fields,
) -> TrainResult:
    """Train ``config.repeats`` models per length (one TaskData per length, all of the same size N),
    as ``config`` says (a TrainConfig; its fields given as keywords replace its own, and without
    it they make one).

    Model m = k * repeats + r starts from the ``init`` ("torch" or "keras") initialization of
    ``nn.RNN/LSTM/GRU(I, H, num_layers=L)`` of the cell's size (``hidden``, if given, sets H) and
    its readout for seed ``seed + m`` (or from ``theta0`` (M, P)).
    """
    cfg = (
        TrainConfig(**fields)
        if config is None
        else replace(check_type(config, TrainConfig, "config"), **fields)
    )
    check_type(cell, Cell, "cell")
    _check_task(cell, datas)
    if hidden is not None:
        cell = replace(cell, hidden=check_units(hidden))
    for d in datas:
        check_features(cell, d)
    return _train(cell, datas, cfg, theta0=theta0, progress=progress)


def _train(
    cell: Cell,
    datas: list[TaskData],
    cfg: TrainConfig,
    *,
    theta0: torch.Tensor | None = None,
    progress: bool = False,
) -> TrainResult:
    """``train_ensemble`` past its checks.

    (Longer than a function should be: the body is the training protocol itself, set up, then
    epochs of steps and a validation, and reads best in one piece.)
    """
    repeats, seed, epochs, batch, record_every = (
        cfg.repeats,
        cfg.seed,
        cfg.epochs,
        cfg.batch,
        cfg.record_every,
    )
    dtype, device = cfg.dtype, cfg.device
    K, M = len(datas), len(datas) * repeats
    update = _Optimizer(cfg.optimizer, cfg.lr)
    lengths = torch.tensor([d.length for d in datas])
    X, Y = _stack(datas, dtype, device)
    ends = _row_steps(datas, device)
    kidx = torch.arange(M) // repeats  # (M,)
    model_lengths = lengths[kidx]  # (M,): each model's own length
    base = kidx.to(device)[:, None] * (Y.shape[0] // K)  # (M, 1): first row of each model's length
    train_idx, val_idx = make_splits(datas, repeats, val_frac=cfg.val_frac, seed=seed, split=cfg.split_used)
    n_train = train_idx.shape[1]
    steps_per_epoch = -(-n_train // batch)
    work = 3.0 * epochs * n_train * float(model_lengths.sum())
    if epochs * steps_per_epoch > MAX_STEPS:
        raise InputError(
            f"{epochs} epochs of {steps_per_epoch} steps are {epochs * steps_per_epoch:.1e} "
            f"optimizer steps; the limit is {MAX_STEPS:.0e}"
        )
    if work > MAX_TRAIN_WORK:
        raise InputError(
            f"{epochs} epochs of {M} models on {n_train} sequences are {work:.1e} "
            f"cell-steps, about {work / 1e9 / 3600:.0f} h at 1e9 a second; "
            f"the limit is {MAX_TRAIN_WORK:.0e}"
        )
    schedule = _schedule(M, n_train, epochs, seed)  # (epochs, M, n_train): only once the size is bounded
    fused = (
        resolve_backend(
            cfg.backend,
            device=device,
            work=work * unit_work(cell),
            why_not=kernel_refuses(cell, datas, device),
        )
        == "fused"
    )
    size = dict(inputs=cell.inputs, layers=cell.layers)
    if theta0 is None:
        theta0 = torch.stack([_init_theta(cell, cell.hidden, seed + m, cfg.init, **size) for m in range(M)])
    if theta0.shape != (M, cell.n_params):
        raise InputError(
            f"theta0 has shape {tuple(theta0.shape)}; {M} {cell.name} models of "
            f"{cell.size_text()} need ({M}, {cell.n_params})"
        )
    keep = trained_mask(cell, cell.hidden, cfg.init, **size).to(device=device, dtype=dtype)  # 0: one stays
    theta = theta0.to(device=device, dtype=dtype).clone()  # (M, P)
    hist = {k: np.zeros((M, epochs)) for k in ("train_loss", "train_acc", "val_loss", "val_acc")}
    path, path_steps = [theta0.to(torch.float64).cpu()], [0]
    with tqdm(
        total=epochs * steps_per_epoch,
        delay=2.0,
        disable=not progress,
        leave=False,
        desc=f"train {M} {cell.name}",
    ) as bar:
        for epoch in range(epochs):
            order = torch.gather(train_idx, 1, schedule[epoch]).to(device)  # (M, n_train)
            tot_loss, tot_acc = torch.zeros(M, dtype=dtype), torch.zeros(M, dtype=dtype)
            for s in range(steps_per_epoch):
                idx = order[:, s * batch : (s + 1) * batch]  # (M, B)
                loss, acc, g = batch_grad(cell, theta, X, Y, base + idx, model_lengths, fused, ends)
                theta = update(theta, g * keep)
                tot_loss += loss.detach().cpu() * idx.shape[1]
                tot_acc += acc.detach().cpu() * idx.shape[1]
                at_epoch_end = s == steps_per_epoch - 1
                if (update.t % record_every == 0) if record_every else at_epoch_end:
                    path.append(theta.to(torch.float64).cpu())
                    path_steps.append(update.t)
                bar.update(1)
            hist["train_loss"][:, epoch] = (tot_loss / n_train).numpy()
            hist["train_acc"][:, epoch] = (tot_acc / n_train).numpy()
            hist["val_loss"][:, epoch], hist["val_acc"][:, epoch] = evaluate_split(
                cell, theta, X, Y, base + val_idx.to(device), model_lengths, fused, ends=ends
            )
    config = dict(
        cell=cell.name,
        hidden=cell.hidden,
        inputs=cell.inputs,
        layers=cell.layers,
        lengths=lengths.tolist(),
        repeats=repeats,
        seed=seed,
        epochs=epochs,
        batch=batch,
        lr=cfg.lr,
        optimizer=cfg.optimizer,
        val_frac=cfg.val_frac,
        keras_split=cfg.keras_split,
        split=cfg.split_used,
        init=cfg.init,
        head=cell.head,
        gru_reset=cell.reset if cell.name == "gru" else None,
        gate=cell.gate if cell.name in ("lstm", "gru") else None,
        backend="fused" if fused else "reference",
    )
    right = (
        hist["val_acc"][:, -1]
        if cell.objective == "bce"  # the same criterion: the logit's sign
        else right_fraction(cell, theta, X, Y, base + val_idx.to(device), model_lengths, ends)
    )
    return TrainResult(
        theta0.to(torch.float64).cpu(),
        theta.to(torch.float64).cpu(),
        kidx.numpy(),
        (torch.arange(M) % repeats).numpy(),
        **hist,
        path=torch.stack(path, 1).numpy(),
        path_steps=np.array(path_steps),
        config=config,
        val_right=right,
    )
