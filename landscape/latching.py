"""How often does a one-unit RNN, LSTM or GRU learn to latch? ``python -m landscape.latching``.

The experiment of the question that started this project, done right: for each cell, task and
sequence length, train ``--repeats`` models (all of them as one vectorized ensemble per cell and
task), each on its own class-balanced, shuffled split, and report the frequency of successful
training (final validation accuracy >= ``--success``) and the mean final validation accuracy.
``--keras-split`` reproduces the posted artifact: the validation set is the last 20% of data
ordered by label, so it holds one class only.

Writes ``<name>.csv`` (one row per trained model), ``<name>.png``/``.pdf`` (success frequency
and mean accuracy with a standard-deviation band, against length) and ``<name>.html``.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._cli import DTYPES, OneLineParser, finite_float, parse_lengths, report_errors
from ._errors import InputError, check_seed
from ._io import atomic_write, one_run
from .backends import BACKENDS
from .cells import GATES, GRU_RESETS, HEADS, MAX_SIZE, get_cell
from .inits import INITS
from .tasks import MAX_DATA, TASKS, get_task, make_data
from .train import MAX_STEPS, MAX_TRAIN_WORK, OPTIMIZERS, SPLITS, train_ensemble

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from matplotlib.figure import Figure

__all__ = ["run_experiment", "summarize", "plot_success", "draw_success", "main", "POSTED_LENGTHS"]

POSTED_LENGTHS = [2, 5, 8, 10, 15, 20, 25, 30, *range(40, 201, 10)]
# The protocols --protocol names: torch.nn's models (the default), or the posted Keras 2.1 models:
# Keras's initializers, Dense(2, softmax) with sparse categorical cross-entropy, Keras's Adam, the
# GRU of Keras before 2.3, Keras 2's hard_sigmoid gates, and Keras's validation_split on shuffled
# data (with --keras-split, on the label-ordered data, as posted).
PROTOCOLS = {
    "torch": dict(init="torch", head="logit", optimizer="adam", gru_reset="after", gate="sigmoid",
                  split="stratified"),
    "keras": dict(init="keras", head="softmax2", optimizer="adam-keras", gru_reset="before",
                  gate="hard_sigmoid", split="shuffled"),
}
QUICK = dict(lengths="2,5,10,20,40", samples=4000, repeats=10, epochs=5)
COLUMNS = ["task", "cell", "units", "length", "repeat", "seed", "val_acc", "val_right", "val_loss",
           "train_acc", "train_loss", "success"]


def run_experiment(*, cells: list[str], tasks: list[str], lengths: list[int], samples: int, repeats: int,
                   epochs: int, batch: int, lr: float, optimizer: str, val_frac: float, noise: float,
                   success: float, seed: int, keras_split: bool, units: int = 1, init: str = "torch",
                   head: str = "logit", gru_reset: str = "after", gate: str = "sigmoid",
                   split: str = "stratified",
                   dtype: torch.dtype = torch.float32, device: str = "cpu", backend: str = "auto",
                   progress: bool = True) -> list[dict]:
    """Train every (task, cell, length, repeat) model; one dict per model. ``init``, ``head``,
    ``gru_reset`` (gru only), ``gate`` (lstm and gru), ``split`` and ``optimizer`` choose the
    protocol (PROTOCOLS)."""
    rows = []
    for task in tasks:
        t = get_task(task)
        # one ensemble per input size: the long-lag tasks' p + 1 inputs grow with the length (p = L)
        groups: dict[int, list[int]] = {}
        for n in lengths:
            groups.setdefault(t.features(n), []).append(n)
        for inputs, group in groups.items():
            datas = [make_data(task, n, n=samples, noise=noise, seed=seed + n) for n in group]
            task_head, classes = t.head(group[0])
            for name in cells:
                cell = get_cell(name, head=head if t.objective == "bce" else task_head,
                                classes=classes or None, gru_reset=gru_reset if name == "gru" else "after",
                                gate=gate if name in ("lstm", "gru") else "sigmoid", inputs=inputs)
                res = train_ensemble(cell, datas, repeats=repeats, seed=seed, epochs=epochs,
                                     batch=batch, lr=lr, optimizer=optimizer, val_frac=val_frac,
                                     keras_split=keras_split, split=split, hidden=units, init=init,
                                     dtype=dtype, device=device, backend=backend, progress=progress)
                rows += _rows(task, name, units, group, res, seed, success, t.objective)
    return rows


def _rows(task: str, name: str, units: int, lengths: list[int], res, seed: int, success: float,
          objective: str) -> list[dict]:
    """One row per trained model. Success: the validation accuracy reaching ``success`` on the
    binary tasks; on Hochreiter and Schmidhuber's tasks their criterion, every validation sequence
    right (``landscape.steps.right_fraction``)."""
    out = []
    for m in range(len(res.repeat)):
        acc, right = float(res.val_acc[m, -1]), float(res.val_right[m])
        ok = acc >= success if objective == "bce" else right == 1.0
        out.append(dict(task=task, cell=name, units=units, length=lengths[res.length_index[m]],
                        repeat=int(res.repeat[m]), seed=seed + m, val_acc=acc, val_right=right,
                        val_loss=float(res.val_loss[m, -1]), train_acc=float(res.train_acc[m, -1]),
                        train_loss=float(res.train_loss[m, -1]), success=int(ok)))
    return out


def summarize(rows: list[dict]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """(task, cell) -> lengths, success frequency, mean and std of the final validation accuracy."""
    out = {}
    for task, cell in dict.fromkeys((r["task"], r["cell"]) for r in rows):
        sel = [r for r in rows if r["task"] == task and r["cell"] == cell]
        lengths = sorted({r["length"] for r in sel})
        by = {n: [r for r in sel if r["length"] == n] for n in lengths}
        out[task, cell] = dict(
            lengths=np.array(lengths),
            success=np.array([np.mean([r["success"] for r in by[n]]) for n in lengths]),
            mean_acc=np.array([np.mean([r["val_acc"] for r in by[n]]) for n in lengths]),
            std_acc=np.array([np.std([r["val_acc"] for r in by[n]]) for n in lengths]),
            repeats=np.array([len(by[n]) for n in lengths]),
        )
    return out


def table(summary: dict) -> str:
    lengths = next(iter(summary.values()))["lengths"]
    lines = [f"{'task':9} {'cell':5} " + " ".join(f"{'L=' + str(n):>6}" for n in lengths)]
    for (task, cell), s in summary.items():
        lines.append(f"{task:9} {cell:5} " + " ".join(f"{v:6.2f}" for v in s["success"]))
    return "\n".join(lines)


def draw_success(ax, summary: dict, task: str, *, title: str | None = None) -> None:
    """One task's curves on ``ax``: success frequency (solid) and mean final validation accuracy
    with its standard deviation (dashed, error bars), one colour per cell."""
    for (t, cell), s in summary.items():
        if t != task:
            continue
        line, = ax.plot(s["lengths"], s["success"], "o-", ms=3, label=f"{cell}: success")
        ax.errorbar(s["lengths"], s["mean_acc"], yerr=s["std_acc"], fmt="--", color=line.get_color(),
                    capsize=2, lw=1, alpha=0.7, label=f"{cell}: mean val. acc. +- std")
    ax.set_title(task if title is None else title, fontsize="medium")
    ax.set_xlabel("sequence length T")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(True, alpha=0.3)


def plot_success(summary: dict, *, title: str = "") -> Figure:
    """Per task: success frequency (solid) and mean final validation accuracy +- std (band)."""
    from matplotlib.figure import Figure  # the drawing libraries load when there is a figure to draw

    tasks = list(dict.fromkeys(t for t, _ in summary))
    fig = Figure(figsize=(4.2 * len(tasks) + 0.4, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(tasks), sharey=True))
    for ax, task in zip(axes, tasks, strict=True):
        draw_success(ax, summary, task)
    axes[0].set_ylabel("frequency of success / accuracy")
    axes[-1].legend(fontsize="x-small", loc="lower left")
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig


def success_page(summary: dict, *, title: str = "") -> go.Figure:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    tasks = list(dict.fromkeys(t for t, _ in summary))
    fig = make_subplots(rows=1, cols=len(tasks), subplot_titles=tasks, shared_yaxes=True)
    for (task, cell), s in summary.items():
        col = tasks.index(task) + 1
        fig.add_trace(go.Scatter(x=s["lengths"], y=s["success"], mode="lines+markers",
                                 name=f"{task} {cell}: success", legendgroup=cell), row=1, col=col)
        fig.add_trace(go.Scatter(x=s["lengths"], y=s["mean_acc"], mode="lines", line=dict(dash="dash"),
                                 error_y=dict(type="data", array=s["std_acc"]), legendgroup=cell,
                                 name=f"{task} {cell}: mean val. acc."), row=1, col=col)
    fig.update_layout(title=dict(text=title), yaxis_title="frequency of success / accuracy")
    fig.update_xaxes(title_text="sequence length T")
    return fig


FULL = dict(lengths=",".join(map(str, POSTED_LENGTHS)), samples=10000, repeats=30, epochs=5)


def build_parser() -> OneLineParser:
    """The options: one add_argument each (a flat list, longer than a function should be)."""
    ap = OneLineParser(prog="python -m landscape.latching", description=__doc__)
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--tasks", default="latching,relay")
    ap.add_argument("--lengths", default=None, help=f"default {FULL['lengths']}")
    ap.add_argument("--samples", type=int, default=None,
                    help=f"sequences per length (N; default {FULL['samples']})")
    ap.add_argument("--val", type=finite_float, default=0.2, help="validation fraction")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=None, help=f"default {FULL['epochs']}")
    ap.add_argument("--repeats", type=int, default=None, help=f"default {FULL['repeats']}")
    ap.add_argument("--lr", type=finite_float, default=1e-3)
    ap.add_argument("--protocol", choices=PROTOCOLS, default="torch",
                    help="torch: torch.nn models, one logit, torch's Adam, stratified split; keras: the "
                         "posted Keras 2.1 models (Keras's init, Dense(2, softmax), Keras's Adam, "
                         "reset-before GRU, hard_sigmoid gates, validation_split on shuffled data); the "
                         "options below override single parts")
    ap.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    ap.add_argument("--init", choices=INITS, default=None, help="torch.nn's or Keras's initialization")
    ap.add_argument("--head", choices=HEADS, default=None,
                    help="logit (binary cross-entropy) or softmax2 (Keras's Dense(2, softmax))")
    ap.add_argument("--gru-reset", choices=GRU_RESETS, default=None,
                    help="gru: reset gate after the recurrent product (torch.nn) or before it (Keras < 2.3)")
    ap.add_argument("--gate", choices=GATES, default=None,
                    help="lstm, gru: the gates' function, the logistic sigmoid (torch.nn, Keras >= 2.3) or "
                         "Keras 2's hard_sigmoid (Keras 2.1, as posted)")
    ap.add_argument("--split", choices=SPLITS, default=None,
                    help="stratified, shuffled (Keras on shuffled data) or ordered (the posted artifact)")
    ap.add_argument("--noise", type=finite_float, default=0.1)
    ap.add_argument("--success", type=finite_float, default=0.9,
                    help="validation accuracy that counts as success")
    ap.add_argument("--units", type=int, default=1,
                    help=f"hidden units per model (1 to {MAX_SIZE}; the fused kernel runs up to 64)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=DTYPES, default="float32")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--backend", choices=BACKENDS, default="auto",
                    help="fused: the compiled kernel (on the CPU, 1 to 64 units); reference: the readable "
                         "torch path; auto: fused where it runs and repays building it")
    ap.add_argument("--keras-split", action="store_true",
                    help="validation = the last 20%% of label-ordered data, as the posted run had it")
    ap.add_argument("--quick", action="store_true",
                    help=f"a one-minute preset: {', '.join(f'--{k} {v}' for k, v in QUICK.items())} "
                         "(options given explicitly win)")
    ap.add_argument("--out", default="figures")
    ap.add_argument("--name", default=None,
                    help="output stem (default latching, latching_keras with --keras-split; "
                         "keras_protocol, keras_protocol_split)")
    ap.add_argument("--quiet", action="store_true")
    return ap


def _unique(text: str, what: str, check) -> list[str]:
    items = text.split(",")
    for v in items:
        check(v)
    seen = {v for v in items if items.count(v) > 1}
    if seen:
        raise InputError(f"--{what} {text!r} names {', '.join(sorted(seen))} more than once")
    return items


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The options, with the presets filled in (an option given explicitly wins) and checked."""
    args = build_parser().parse_args(argv)
    for k, v in {**(QUICK if args.quick else FULL), **PROTOCOLS[args.protocol]}.items():
        if getattr(args, k) is None:
            setattr(args, k, v)

    def training_cell(c: str) -> None:
        if not get_cell(c).takes_input:
            raise InputError(f"cell {c!r} takes no input; valid cells here: rnn, lstm, gru")

    def labelled_task(t: str) -> None:
        if not get_task(t).takes_input:
            valid = ", ".join(n for n, v in TASKS.items() if v.takes_input)
            raise InputError(f"task {t!r} has no targets to learn; valid tasks here: {valid}")

    args.cells = _unique(args.cells, "cells", training_cell)
    args.tasks = _unique(args.tasks, "tasks", labelled_task)
    args.lengths = parse_lengths(args.lengths)
    if args.samples < 5:
        raise InputError(f"--samples {args.samples} must be at least 5, so that both splits hold samples")
    data = args.samples * sum(n * 1.1 * max(get_task(t).features(n) for t in args.tasks)
                              for n in args.lengths) * 8 * 2  # float64 data and the training table
    if data > MAX_DATA:
        raise InputError(f"--samples {args.samples} of lengths up to {max(args.lengths)} make "
                         f"{data / 2**30:.1f} GiB of data; the limit is {MAX_DATA / 2**30:.0f} GiB")
    check_seed(args.seed, "--seed")
    steps = args.epochs * -(-int(args.samples * (1 - args.val)) // max(args.batch, 1))
    if steps > MAX_STEPS:
        raise InputError(f"--epochs {args.epochs} of {args.samples} samples in batches of {args.batch} are "
                         f"{steps:.1e} optimizer steps; the limit is {MAX_STEPS:.0e}")
    work = 3.0 * args.epochs * args.samples * sum(args.lengths) * args.repeats * args.units ** 2
    if work > MAX_TRAIN_WORK:
        raise InputError(f"--epochs {args.epochs} over {args.repeats} repeats of {len(args.lengths)} lengths "
                         f"are about {work:.1e} cell-steps per cell; the limit is {MAX_TRAIN_WORK:.0e}")
    if not 1 <= args.units <= MAX_SIZE:
        raise InputError(f"--units {args.units} must be an integer from 1 to {MAX_SIZE}")
    if not 0 < args.success <= 1:
        raise InputError(f"--success {args.success} must lie in (0, 1]")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available here; valid: cpu")
    return args


def run(args: argparse.Namespace) -> list[str]:
    """Train every model, print the success table, write the CSV and the figures; the paths."""
    t0 = time.perf_counter()
    rows = run_experiment(cells=args.cells, tasks=args.tasks, lengths=args.lengths, samples=args.samples,
                          repeats=args.repeats, epochs=args.epochs, batch=args.batch, lr=args.lr,
                          optimizer=args.optimizer, val_frac=args.val, noise=args.noise,
                          success=args.success, seed=args.seed, keras_split=args.keras_split,
                          units=args.units, init=args.init, head=args.head, gru_reset=args.gru_reset,
                          gate=args.gate, split=args.split, dtype=DTYPES[args.dtype], device=args.device,
                          backend=args.backend, progress=not args.quiet)
    elapsed = time.perf_counter() - t0
    summary = summarize(rows)
    split = {"ordered": "Keras' split (last 20% of ordered data)", "shuffled": "last 20% of shuffled data",
             "stratified": "stratified shuffled split"}["ordered" if args.keras_split else args.split]
    size = "one-unit models" if args.units == 1 else f"{args.units}-unit models"
    title = (f"{args.protocol} protocol, {size}, N = {args.samples}, {args.repeats} repeats, "
             f"{args.epochs} epochs, {args.optimizer} lr {args.lr:g}, {split}")
    seeds = set(args.tasks) - {"latching", "relay"}
    criterion = f"val. acc. >= {args.success}" + ("; longlag, adding: every validation sequence right"
                                                  if seeds else "")
    print(f"frequency of success ({criterion}), trained in {elapsed:.1f} s:")
    print(table(summary))
    default = ("keras_protocol" if args.protocol == "keras" else "latching") + (
        ("_split" if args.protocol == "keras" else "_keras") if args.keras_split else "")
    stem = os.path.join(args.out, args.name or default)
    from .figures import write_pages

    fig, page = plot_success(summary, title=title), success_page(summary, title=title)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return [atomic_write(stem + ".csv", lambda f: f.write(buf.getvalue().encode())),
            *write_pages(stem, fig, page, formats=("png", "pdf"), dpi=200)]


def main(argv: list[str] | None = None) -> int:
    def body() -> None:
        args = parse(argv)
        with one_run(args.out):  # the CSV and the figures land together, or none does
            paths = run(args)
        print(*paths, sep="\n")

    return report_errors("python -m landscape.latching", body)


if __name__ == "__main__":
    sys.exit(main())
