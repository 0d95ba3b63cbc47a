"""Slice a loss landscape: ``python -m landscape.slice --cell rnn --len 50``.

Writes ``<name>.npz`` (the surface), ``<name>.png`` and ``<name>.html`` into ``--out`` (and, with
``--center trained``, each length's model as ``<name>_L<n>.pt``). This module only wires the
command line to the library: it parses the options into a ``SliceConfig`` and ``Outputs``,
and ``landscape.pipeline.write_slice`` computes and writes the slice.
"""

from __future__ import annotations

import argparse
import sys

from ._cli import (
    DTYPES,
    OneLineParser,
    add_figure_options,
    figure_options,
    finite_float,
    join_negative_values,
    parse_files,
    parse_lengths,
    parse_mem,
    parse_point,
    parse_range,
    parse_res,
    report_errors,
)
from ._errors import ConfigError, InputError
from .backends import BACKENDS
from .cells import CELLS, GATES, GRU_RESETS, HEADS, MAX_SIZE
from .config import PATH_LR, PLANES, TRAIN_LR, SliceConfig
from .inits import INITS
from .pipeline import Outputs, write_slice
from .planes import NORMS
from .tasks import TASKS
from .words import SCALES

__all__ = ["main", "build_parser", "parse"]

_NEGATIVE_VALUES = ("--xrange", "--yrange", "--start")  # options whose value may start with "-"
# SliceConfig's fields by the flag that sets them, for its errors
FLAGS = {"lengths": "--len", "gru_reset": "--gru-reset"}


def build_parser() -> argparse.ArgumentParser:
    """The options: one add_argument each (a flat list, longer than a function should be)."""
    axes = "; ".join(f"{n}: {c.default_plane[0]} x {c.default_plane[1]}" for n, c in CELLS.items())
    ap = OneLineParser(prog="python -m landscape.slice", description=__doc__,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--cell", choices=CELLS, default="rnn",
                    help="the recurrence: nn.RNN, nn.LSTM, nn.GRU (of --units, --layers, --inputs) with an "
                         "nn.Linear readout, or Pascanu's one-unit map")
    ap.add_argument("--task", choices=TASKS, default=None,
                    help="data and loss (default: latching, or pascanu for the pascanu cell)")
    ap.add_argument("--data", default=None, metavar="FILE.npz",
                    help="your own data: arrays x (N, T) or (N, T, I) and y (N,) of 0/1; length L uses "
                         "x[:, :L]")
    ap.add_argument("--len", dest="lengths", default="50", metavar="L[,L...]",
                    help="sequence length, or a comma-separated sweep such as 5,10,20,50,100")
    ap.add_argument("--plane", choices=PLANES, default="axis",
                    help="two named parameters, two random directions, the first two principal "
                         "components of the training path (with --center trained), or an interpolation "
                         "between models: a line A to B or the plane through A, B, C (--to)")
    ap.add_argument("--to", default=None, metavar="B.pt[,C.pt]",
                    help="interpolation: --plane line runs from --center (A, at alpha 0) to the model file B "
                         "(at 1); --plane through is the plane through A, B and C (A at 0,0; B at 1,0; C at "
                         "beta 1); checkpoints or Keras files of the same model. With --center trained, a "
                         "line without --to runs from the initialization to the trained model")
    ap.add_argument("--x", default=None,
                    help=f"x-axis parameter of an axis plane ({axes}; beyond one unit, state_dict names "
                         "such as weight_hh_l0[3,5] or bias_ih_l1[2], the short names meaning unit 0)")
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
    ap.add_argument("--head", choices=HEADS, default=None,
                    help="the readout: one logit with binary cross-entropy, Keras's Dense(2, softmax) with "
                         "sparse categorical cross-entropy (axes w_out_0, w_out_1, b_out_0, b_out_1), "
                         "softmax over --classes K, or linear (one real output, squared error) (default: the "
                         "task's: logit, softmax for longlag, linear for adding)")
    ap.add_argument("--classes", type=int, default=None, metavar="K",
                    help="classes of the softmax head (default: the task's, p + 1 for longlag)")
    ap.add_argument("--symbols", type=int, default=None, metavar="P",
                    help="longlag tasks: p, the symbols a_1..a_p besides y (default: the length)")
    ap.add_argument("--gru-reset", choices=GRU_RESETS, default="after",
                    help="gru: the reset gate after the recurrent product (torch.nn, Keras >= 2.3) or before "
                         "it (Keras before 2.3, reset_after=False)")
    ap.add_argument("--units", type=int, default=None, metavar="H",
                    help=f"hidden units per layer, 1 to {MAX_SIZE} (default: the checkpoint's, else 1)")
    ap.add_argument("--layers", type=int, default=None, metavar="L",
                    help="stacked recurrent layers (default: the checkpoint's, else 1)")
    ap.add_argument("--inputs", type=int, default=None, metavar="I",
                    help="features per step (default: the data's or the checkpoint's, else 1)")
    ap.add_argument("--gate", choices=GATES, default="sigmoid",
                    help="lstm, gru: the gates' function, the logistic sigmoid (torch.nn, Keras >= 2.3) or "
                         "Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1)")
    ap.add_argument("--epochs", type=int, default=5, help="epochs of --center trained")
    ap.add_argument("--batch", type=int, default=16, help="batch size of --center trained")
    ap.add_argument("--grad", action="store_true",
                    help="also store gradient maps: grad_norm, grad_x, grad_y (needs autograd memory)")
    ap.add_argument("--threshold", type=finite_float, default=1.0,
                    help="gradient norm above which a cell counts as steep in the cliff table")
    ap.add_argument("--start", default=None, metavar="X,Y",
                    help="start of a plain and a clipped gradient-descent path, in plane coordinates")
    ap.add_argument("--lr", type=finite_float, default=None,
                    help=f"learning rate of the descent paths (default {PATH_LR}) and of --center trained's "
                         f"Adam (default {TRAIN_LR})")
    ap.add_argument("--steps", type=int, default=50, help="steps of the descent paths")
    ap.add_argument("--clip", type=finite_float, default=1.0,
                    help="gradient-norm threshold of the clipped path (Pascanu et al. Algorithm 1)")
    ap.add_argument("--scale", choices=SCALES, default="linear",
                    help="colour scale of the PNG: linear, log, or clip (1st-99th percentile)")
    ap.add_argument("--samples", type=int, default=1000, help="sequences in the generated data")
    ap.add_argument("--noise", type=finite_float, default=0.1, help="std of the Gaussian input noise")
    ap.add_argument("--seed", type=int, default=0, help="seed of the data, the init and the directions")
    ap.add_argument("--dtype", choices=DTYPES, default="float32")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--backend", choices=BACKENDS, default="auto",
                    help="fused: the compiled kernel on the CPU; reference: the readable torch path; auto: "
                         "fused where it runs and the work repays building it")
    ap.add_argument("--mem", default="1G", help="memory budget of one vectorized chunk")
    ap.add_argument("--tile-rows", type=int, default=None, metavar="R",
                    help="split the sweep into tiles of R grid rows per length, each saved in <name>.tiles/ "
                         "as it is done: run the same command again after an interruption to resume")
    ap.add_argument("--workers", type=int, default=None, metavar="N",
                    help="compute the tiles on a local Dask cluster of N processes (pip install "
                         "'rnn-landscape[distributed]')")
    ap.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                    help="compute the tiles on an existing Dask cluster")
    ap.add_argument("--timeout", type=finite_float, default=None, metavar="SECONDS",
                    help="wait at most this long to reach --scheduler, then for its first worker "
                         "(default 30)")
    add_figure_options(ap)
    ap.add_argument("--out", default="figures", help="output folder")
    ap.add_argument("--name", default=None, help="output file stem (default from the options)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def parse(argv: list[str]) -> tuple[SliceConfig, Outputs]:
    """The command line -> the slice's configuration and where and how its files go (validated)."""
    args = build_parser().parse_args(join_negative_values(list(argv), _NEGATIVE_VALUES))
    given = lambda v: v is not None  # noqa: E731 - an empty value is a bad value, not the default
    text = dict(lengths=parse_lengths(args.lengths), res=parse_res(args.res) if given(args.res) else None,
                xrange=parse_range(args.xrange, "--xrange") if given(args.xrange) else None,
                yrange=parse_range(args.yrange, "--yrange") if given(args.yrange) else None,
                start=parse_point(args.start, "--start") if given(args.start) else None,
                mem=parse_mem(args.mem), to=parse_files(args.to) if given(args.to) else None)
    fields = SliceConfig.__dataclass_fields__
    given = {k: v for k, v in vars(args).items() if k in fields and k not in text}
    try:
        cfg = SliceConfig(**given, **{**text, "lengths": tuple(text["lengths"])})
    except ConfigError as e:
        raise InputError(_flags(e)) from None
    out = Outputs(args.out, args.name, dict(figure_options(args), scale=args.scale), progress=not args.quiet)
    return cfg, out


def _flags(e: ConfigError) -> str:
    """A configuration error in the command line's words: its flags, not SliceConfig's fields."""
    return e.render(lambda name: FLAGS.get(name, "--" + name.replace("_", "-")))


def main(argv: list[str] | None = None) -> int:
    def body() -> list[str]:
        cfg, out = parse(list(sys.argv[1:] if argv is None else argv))
        try:
            return write_slice(cfg, out)
        except ConfigError as e:  # a value the configuration could only be checked against by running
            raise InputError(_flags(e)) from None

    return report_errors("python -m landscape.slice", body)


if __name__ == "__main__":
    sys.exit(main())
