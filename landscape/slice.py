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
    OneLineParser,
    add_figure_options,
    figure_flag,
    figure_options,
    join_negative_values,
    report_errors,
)
from .config import SliceConfig
from .figures.options import FigureOptions
from .options import add_options, flag_of, from_options, negative_flags
from .pipeline import Outputs, write_slice
from .words import SCALES

__all__ = ["main", "build_parser", "parse"]


def build_parser() -> argparse.ArgumentParser:
    """The options: every field of ``SliceConfig`` (its flag, help and default written there), then
    where and how the files go."""
    ap = OneLineParser(
        prog="python -m landscape.slice",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_options(ap, SliceConfig)
    ap.add_argument(
        "--scale",
        choices=SCALES,
        default="linear",
        help="colour scale of the PNG: linear, log, or clip (1st-99th percentile)",
    )
    add_figure_options(ap)
    ap.add_argument("--out", default="figures", help="output folder")
    ap.add_argument("--name", default=None, help="output file stem (default from the options)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def parse(argv: list[str]) -> tuple[SliceConfig, Outputs]:
    """The command line -> the slice's configuration and where and how its files go (validated)."""
    args = build_parser().parse_args(join_negative_values(list(argv), negative_flags(SliceConfig)))
    cfg = from_options(SliceConfig, args)  # a bad value: a ConfigError, said as its flag by main
    out = Outputs(args.out, args.name, figure_options(args, scale=args.scale), progress=not args.quiet)
    return cfg, out


def _flag(name: str) -> str:
    """A field in the command line's words: SliceConfig's by its option, FigureOptions' and Outputs'
    folder (--out) by the figure flags."""
    if name in FigureOptions.__dataclass_fields__:
        return figure_flag(name)
    return "--out" if name == "folder" else flag_of(SliceConfig, name)


def main(argv: list[str] | None = None) -> int:
    def body() -> list[str]:
        cfg, out = parse(list(sys.argv[1:] if argv is None else argv))
        return write_slice(cfg, out)

    return report_errors("python -m landscape.slice", body, _flag)


if __name__ == "__main__":
    sys.exit(main())
