"""Redraw a surface file's figures without recomputing: ``python -m landscape.render FILE.npz``.

    python -m landscape.render run.npz             # facets PNG, cliffs PNG, explorer HTML
    python -m landscape.render run.npz --kind contour,slices --format pdf --style paper --width single
    python -m landscape.render run.npz --format html --z-scale log      # the explorer only

Kinds: surface (3-D), contour, heatmap (one length, default the longest), facets (every length,
one shared colour scale), slices (1-D cuts along --axis), grad (facets of the gradient norm,
log scale), cliffs (steepness against length). ``--format html`` writes the interactive
explorer. Every figure is drawn before any file is written.
"""

from __future__ import annotations

import argparse
import os
import sys

from ._cli import (
    OneLineParser,
    add_figure_options,
    choices,
    figure_flag,
    figure_options,
    finite_float,
    report_errors,
)
from ._io import one_run
from .figures.kinds import KINDS
from .surface import load_surface
from .words import SCALES

__all__ = ["main", "KINDS"]


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(
        prog="python -m landscape.render",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("file", help="a surface .npz written by landscape.slice")
    ap.add_argument(
        "--kind",
        default=None,
        metavar="KIND[,KIND...]",
        help=f"figures to draw: {', '.join(KINDS)} (default facets and, for a sweep, cliffs)",
    )
    add_figure_options(ap)
    ap.add_argument("--scale", choices=SCALES, default="linear", help="colour scale of static figures")
    ap.add_argument("--what", default="loss", help="map to draw: loss, accuracy, grad_norm, ...")
    ap.add_argument(
        "--length", type=int, default=None, help="length of surface/contour/heatmap (default the longest)"
    )
    ap.add_argument("--axis", choices=("x", "y"), default="x", help="direction of the 1-D slices")
    ap.add_argument(
        "--at",
        type=finite_float,
        default=None,
        help="where the slices cut the other axis (default its middle)",
    )
    ap.add_argument("--out", default=None, help="folder for the figures (default: beside FILE)")
    ap.add_argument("--name", default=None, help="output stem (default: the file's name)")
    args = ap.parse_args(argv)

    def body() -> list[str]:
        kinds = choices(args.kind, KINDS, "--kind") if args.kind is not None else None
        opts = figure_options(
            args,
            kinds=kinds,
            scale=args.scale,
            what=args.what,
            length=args.length,
            axis=args.axis,
            at=args.at,
        )
        surface = load_surface(args.file)
        name = args.name or os.path.splitext(os.path.basename(args.file))[0]
        stem = os.path.join(args.out or os.path.dirname(args.file) or ".", name)
        with one_run(os.path.dirname(stem) or "."):
            from .figures import write_figures  # matplotlib and plotly load when there is a figure to draw

            return write_figures(surface, stem, opts)

    return report_errors(ap.prog, body, figure_flag)


if __name__ == "__main__":
    sys.exit(main())
