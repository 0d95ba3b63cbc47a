"""Slice a loss landscape: ``python -m landscape.slice --cell rnn --len 50``.

Writes ``<name>.npz`` (the surface), ``<name>.png`` and ``<name>.html`` into ``--out``.
This module only wires the command line to the library.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import replace

import torch

from ._errors import InputError
from .cells import CELLS, GRU_RESETS, HEADS, get_cell
from .cliffs import cliff_metrics, cliff_table
from .evaluate import DEFAULT_MEM
from .fused import BACKENDS
from .inits import INITS
from .params import center_params, save_checkpoint
from .planes import DEFAULT_AXES, MAX_COORD, NORMS, axis_plane, grid_coords, pca_plane, random_plane
from .plot import SCALES
from .render import (
    OneLineParser,
    add_figure_options,
    figure_options,
    print_paths,
    report_errors,
    write_figures,
)
from .surface import compute_surface
from .tasks import TASKS, data_from_arrays, get_task, load_data, make_data
from .train import train_ensemble
from .trajectories import paths_for_lengths, training_paths

__all__ = ["main", "build_parser"]

DEFAULT_TASK = {"rnn": "latching", "lstm": "latching", "gru": "latching", "pascanu": "pascanu"}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
PATH_LR, TRAIN_LR = 0.01, 1e-3
_NEGATIVE_VALUES = ("--xrange", "--yrange", "--start")  # options whose value may start with "-"


def parse_lengths(text: str) -> list[int]:
    """'50' or '5,10,20' -> [5, 10, 20]; every length a positive integer."""
    out = []
    for part in text.split(","):
        try:
            n = int(part)
        except ValueError:
            raise InputError(f"--len {text!r}: {part!r} is not an integer; "
                             "give a length such as 50 or a list such as 5,10,20") from None
        if n < 1:
            raise InputError(f"--len {text!r}: length {n} must be a positive integer")
        out.append(n)
    return out


def parse_range(text: str, option: str) -> tuple[float, float]:
    """'LO:HI' -> (lo, hi) with finite lo < hi."""
    parts = text.split(":")
    try:
        lo, hi = (float(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        lo = hi = None
    if lo is None or not (max(abs(lo), abs(hi)) <= MAX_COORD) or not lo < hi:
        raise InputError(f"{option} {text!r} is not a range; give LO:HI with LO < HI, each finite "
                         f"and within +-{MAX_COORD:g}, such as -4:4")
    return lo, hi


def parse_res(text: str) -> tuple[int, int]:
    """'51' -> (51, 51); '201,2001' -> (nx, ny) = (201, 2001); each at least 2."""
    parts = text.split(",")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) == 1:
        vals *= 2
    if len(vals) != 2 or min(vals) < 2:
        raise InputError(f"--res {text!r}: give N or NX,NY with integers >= 2, such as 51 or 201,2001")
    return vals[0], vals[1]


def parse_point(text: str, option: str) -> tuple[float, float]:
    """'A,B' -> (a, b), two finite numbers."""
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        a = b = float("nan")
    if not (abs(a) < float("inf") and abs(b) < float("inf")):
        raise InputError(f"{option} {text!r}: give two finite numbers X,Y in the plane's coordinates, "
                         "such as 5,-2.7")
    return a, b


def parse_mem(text: str) -> int:
    """'1G', '512M', '65536' -> bytes (> 0)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)i?[bB]?\s*", text)
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    n = int(float(m.group(1)) * scale[m.group(2).lower()]) if m else 0
    if n <= 0:
        raise InputError(f"--mem {text!r}: give a positive size such as 1G, 512M or 65536")
    return n


def build_parser() -> argparse.ArgumentParser:
    axes = "; ".join(f"{c}: {a[0]} x {a[1]}" for c, a in DEFAULT_AXES.items())
    ap = OneLineParser(prog="python -m landscape.slice", description=__doc__,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--cell", choices=CELLS, default="rnn", help="the single-unit model")
    ap.add_argument("--task", choices=TASKS, default=None,
                    help="data and loss (default: latching, or pascanu for the pascanu cell)")
    ap.add_argument("--data", default=None, metavar="FILE.npz",
                    help="your own data: arrays x (N, T) and y (N,) of 0/1; length L uses x[:, :L]")
    ap.add_argument("--len", dest="lengths", default="50", metavar="L[,L...]",
                    help="sequence length, or a comma-separated sweep such as 5,10,20,50,100")
    ap.add_argument("--plane", choices=("axis", "random", "pca"), default="axis",
                    help="two named parameters, two random directions, or the first two principal "
                         "components of the training path (with --center trained)")
    ap.add_argument("--x", default=None, help=f"x-axis parameter of an axis plane ({axes})")
    ap.add_argument("--y", default=None, help="y-axis parameter of an axis plane")
    ap.add_argument("--xrange", default=None, metavar="LO:HI",
                    help="x range (absolute values on an axis plane; default -1:1 on a random plane)")
    ap.add_argument("--yrange", default=None, metavar="LO:HI", help="y range")
    ap.add_argument("--res", default=None, metavar="N|NX,NY",
                    help="grid points per axis (default 51, or 101,1001 for pascanu)")
    ap.add_argument("--norm", choices=NORMS, default="filter", help="random-direction normalization")
    ap.add_argument("--center", default="init", metavar="init|trained|FILE.pt",
                    help="the model at the plane's centre: torch.nn's init for --seed, that model trained "
                         "at each length (saved as <name>_L<n>.pt), or a checkpoint")
    ap.add_argument("--init", choices=INITS, default="torch",
                    help="the initialization of --center init (and of --center trained's start): torch.nn's "
                         "defaults, or Keras's (orthogonal recurrent weights, forget bias 1, glorot inputs)")
    ap.add_argument("--head", choices=HEADS, default="logit",
                    help="the readout: one logit with binary cross-entropy, or Keras's Dense(2, softmax) "
                         "with sparse categorical cross-entropy (axes w_out_0, w_out_1, b_out_0, b_out_1)")
    ap.add_argument("--gru-reset", choices=GRU_RESETS, default="after",
                    help="gru: the reset gate after the recurrent product (torch.nn, Keras >= 2.3) or before "
                         "it (Keras before 2.3, reset_after=False)")
    ap.add_argument("--epochs", type=int, default=5, help="epochs of --center trained")
    ap.add_argument("--batch", type=int, default=16, help="batch size of --center trained")
    ap.add_argument("--grad", action="store_true",
                    help="also store gradient maps: grad_norm, grad_x, grad_y (needs autograd memory)")
    ap.add_argument("--threshold", type=float, default=1.0,
                    help="gradient norm above which a cell counts as steep in the cliff table")
    ap.add_argument("--start", default=None, metavar="X,Y",
                    help="start of a plain and a clipped gradient-descent path, in plane coordinates")
    ap.add_argument("--lr", type=float, default=None,
                    help=f"learning rate of the descent paths (default {PATH_LR}) and of --center trained's "
                         f"Adam (default {TRAIN_LR})")
    ap.add_argument("--steps", type=int, default=50, help="steps of the descent paths")
    ap.add_argument("--clip", type=float, default=1.0,
                    help="gradient-norm threshold of the clipped path (Pascanu et al. Algorithm 1)")
    ap.add_argument("--scale", choices=SCALES, default="linear",
                    help="colour scale of the PNG: linear, log, or clip (1st-99th percentile)")
    ap.add_argument("--samples", type=int, default=1000, help="sequences in the generated data")
    ap.add_argument("--noise", type=float, default=0.1, help="std of the Gaussian input noise")
    ap.add_argument("--seed", type=int, default=0, help="seed of the data, the init and the directions")
    ap.add_argument("--dtype", choices=DTYPES, default="float32")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--backend", choices=BACKENDS, default="auto",
                    help="fused: the compiled kernel on the CPU; reference: the readable torch path; auto: "
                         "fused where it runs and the work repays building it")
    ap.add_argument("--mem", default="1G", help="memory budget of one vectorized chunk")
    add_figure_options(ap)
    ap.add_argument("--out", default="figures", help="output folder")
    ap.add_argument("--name", default=None, help="output file stem (default from the options)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def _join_negative_values(argv: list[str]) -> list[str]:
    """Let ``--xrange -4:4`` through: argparse would take '-4:4' for an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _NEGATIVE_VALUES and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def run(args: argparse.Namespace) -> list[str]:
    """Validate every option, compute the surface, then write the three files; returns the paths."""
    cell = get_cell(args.cell, head=args.head, gru_reset=args.gru_reset)
    task_name = args.task or DEFAULT_TASK[cell.name]
    task = get_task(task_name)
    if task.takes_input != cell.takes_input:
        valid = [t for t, v in TASKS.items() if v.takes_input == cell.takes_input]
        raise InputError(f"task {task_name!r} does not fit cell {cell.name!r}; "
                         f"valid tasks for it: {', '.join(valid)}")
    if args.data and not cell.takes_input:
        raise InputError(f"--data gives input sequences, and cell {cell.name!r} takes no input")
    lengths = parse_lengths(args.lengths)
    fig_opts = figure_options(args)
    res = parse_res(args.res) if args.res else None
    xrange = parse_range(args.xrange, "--xrange") if args.xrange else None
    yrange = parse_range(args.yrange, "--yrange") if args.yrange else None
    mem = parse_mem(args.mem) if args.mem else DEFAULT_MEM
    start = parse_point(args.start, "--start") if args.start else None
    if args.lr is not None and not (args.lr > 0 and args.lr < float("inf")):
        raise InputError(f"--lr {args.lr} must be a finite number > 0")
    if args.steps < 1:
        raise InputError(f"--steps {args.steps} must be a positive integer")
    if not (args.clip > 0 and args.clip < float("inf")):
        raise InputError(f"--clip {args.clip} must be a finite number > 0")
    if not args.threshold > 0:
        raise InputError(f"--threshold {args.threshold} must be a number > 0")
    if args.samples < 2:
        raise InputError(f"--samples {args.samples} must be at least 2")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available here; valid: cpu")

    arrays = load_data(args.data) if args.data else None
    datas = [data_from_arrays(*arrays, n) if arrays else
             make_data(task_name, n, n=args.samples, noise=args.noise, seed=args.seed)
             for n in lengths]
    if args.plane != "axis" and (args.x or args.y):
        raise InputError(f"--x and --y name the axes of --plane axis; a {args.plane} plane has none")
    if args.plane == "pca" and args.center != "trained":
        raise InputError("--plane pca is the plane of a training path: it needs --center trained")
    trained = None
    if args.center == "trained":
        if not cell.takes_input:
            raise InputError(f"--center trained trains a classifier; cell {cell.name!r} has no input")
        trained = train_ensemble(cell, datas, seed=args.seed, epochs=args.epochs, batch=args.batch,
                                 lr=args.lr or TRAIN_LR, record_every=1, dtype=DTYPES[args.dtype],
                                 device=args.device, backend=args.backend, init=args.init,
                                 progress=not args.quiet)
        centers = list(trained.theta)
    else:
        centers = [center_params(cell, args.center, seed=args.seed, init=args.init)] * len(lengths)
    if args.plane == "axis":
        planes = [axis_plane(cell, c, x=args.x, y=args.y, xrange=xrange, yrange=yrange, res=res)
                  for c in centers]
    elif args.plane == "random":
        planes = [random_plane(cell, c, seed=args.seed, norm=args.norm, xrange=xrange or (-1.0, 1.0),
                               yrange=yrange or (-1.0, 1.0), res=res or (51, 51)) for c in centers]
    else:  # one window for all lengths: the widest that covers every length's path
        fits = [pca_plane(cell, torch.from_numpy(p), res=res or (51, 51), xrange=xrange, yrange=yrange)
                for p in trained.path]
        span = max(max(pl.x[-1], pl.y[-1]) for pl, _ in fits)  # a square window: pc2 is often tiny
        planes = [replace(pl, x=pl.x if xrange else grid_coords(-span, span, len(pl.x)),
                          y=pl.y if yrange else grid_coords(-span, span, len(pl.y))) for pl, _ in fits]
        for n, (_, var) in zip(lengths, fits, strict=True):
            print(f"L = {n}: pc1 and pc2 explain {var[0]:.1%} and {var[1]:.1%} of the training path's "
                  "variance")
    plane = planes[0]

    if start and not (plane.x[0] <= start[0] <= plane.x[-1] and plane.y[0] <= start[1] <= plane.y[-1]):
        raise InputError(f"--start {args.start} lies outside the plotted window "
                         f"{plane.x[0]:g}:{plane.x[-1]:g} x {plane.y[0]:g}:{plane.y[-1]:g}")
    config = dict(cell=cell.name, task=task_name, data=args.data, lengths=lengths, plane=args.plane,
                  x=plane.xlabel, y=plane.ylabel, xrange=[float(plane.x[0]), float(plane.x[-1])],
                  yrange=[float(plane.y[0]), float(plane.y[-1])], res=[len(plane.x), len(plane.y)],
                  norm=args.norm if args.plane == "random" else None, center=args.center,
                  samples=None if arrays is not None else args.samples, noise=args.noise,
                  seed=args.seed, init=args.init, head=cell.head,
                  gru_reset=cell.reset if cell.name == "gru" else None, dtype=args.dtype, device=args.device,
                  mem=mem, grad=args.grad,
                  threshold=args.threshold, start=start, lr=(args.lr or PATH_LR) if start else None,
                  steps=args.steps if start else None, clip=args.clip if start else None,
                  train=dict(epochs=args.epochs, batch=args.batch, lr=args.lr or TRAIN_LR, optimizer="adam",
                             val_frac=0.2, final_val_acc=trained.val_acc[:, -1].tolist())
                  if trained is not None else None)
    dtype = DTYPES[args.dtype]
    paths = paths_for_lengths(cell, datas, planes, start=start, lr=args.lr or PATH_LR, steps=args.steps,
                              clip=args.clip, dtype=dtype, device=args.device) if start else {}
    if trained is not None:
        paths.update(training_paths(cell, datas, planes, trained.path))
    surface = compute_surface(cell, planes, datas, dtype=dtype, device=args.device, mem=mem,
                              grad=args.grad, backend=args.backend, progress=not args.quiet, config=config)
    surface.extra.update(paths)
    surface.extra.update(cliff_metrics(surface, threshold=args.threshold))
    print(cliff_table(surface, surface.extra, threshold=args.threshold))

    variant = "".join(f"_{v}" for v, on in (("keras-init", args.init == "keras"),
                                            ("softmax2", cell.head == "softmax2"),
                                            ("reset-before", cell.reset == "before")) if on)
    name = args.name or (f"{cell.name}{variant}_{task_name}_{plane.xlabel}-{plane.ylabel}_"
                         f"L{'-'.join(map(str, lengths))}")
    stem = os.path.join(args.out, name)
    # every figure is drawn before any file lands, so a failed drawing leaves nothing behind
    figures = write_figures(surface, stem, scale=args.scale, **fig_opts)
    checkpoints = [save_checkpoint(f"{stem}_L{n}.pt", cell, c) for n, c in zip(lengths, centers, strict=True)
                   ] if trained is not None else []
    return [surface.save(stem + ".npz"), *figures, *checkpoints]


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    return report_errors(ap.prog, lambda: print_paths(run(args)))


if __name__ == "__main__":
    sys.exit(main())
