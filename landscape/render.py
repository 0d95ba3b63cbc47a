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
from collections.abc import Callable

from matplotlib.figure import Figure

from ._errors import InputError
from .interactive import MAX_DISPLAY, Z_SCALES, interactive_figure, page_size, write_html
from .plot import (
    FORMATS,
    SCALES,
    plot_cliffs,
    plot_contour,
    plot_heatmap,
    plot_slices,
    plot_surface,
    plot_surface3d,
    save_figure,
)
from .style import STYLES, default_dpi, figure_width, use_style
from .surface import Surface, load_surface

__all__ = ["write_figures", "render_static", "print_paths", "report_errors", "OneLineParser", "main", "KINDS",
           "RENDERERS"]

# the figure kinds, keyed by the word --kind takes: (surface, common options) -> Figure
RENDERERS: dict[str, Callable[[Surface, dict], Figure]] = {
    "surface": lambda s, o: plot_surface3d(s, length=o["length"], what=o["what"], scale=o["scale"],
                                           **o["size"]),
    "contour": lambda s, o: plot_contour(s, length=o["length"], what=o["what"], scale=o["scale"],
                                         **o["size"]),
    "heatmap": lambda s, o: plot_heatmap(s, length=o["length"], what=o["what"], scale=o["scale"],
                                         **o["size"]),
    "facets": lambda s, o: plot_surface(s, what=o["what"], scale=o["scale"], **o["size"]),
    "slices": lambda s, o: plot_slices(s, axis=o["axis"], at=o["at"], what=o["what"], scale=o["scale"],
                                       **o["size"]),
    "grad": lambda s, o: plot_surface(s, what="grad_norm", scale="log" if o["scale"] == "linear"
                                      else o["scale"], **o["size"]),
    "cliffs": lambda s, o: plot_cliffs(s, **o["size"]),
}
KINDS = tuple(RENDERERS)


def render_static(surface: Surface, kind: str, *, style: str = "screen", width: str | float | None = None,
                  scale: str = "linear", what: str = "loss", length: int | None = None, axis: str = "x",
                  at: float | None = None) -> Figure:
    """One static figure of the surface. Draw it (and save it) inside ``use_style(style)``."""
    if kind not in RENDERERS:
        raise InputError(f"unknown figure kind {kind!r}; valid: {', '.join(KINDS)}")
    if kind == "grad" and "grad_norm" not in surface.maps():
        raise InputError("surface has no gradient norms; compute it with landscape.slice --grad")
    if kind == "cliffs" and "cliff_max_jump" not in surface.extra:
        raise InputError("surface has no cliff metrics; a sweep over lengths from landscape.slice has them")
    # a paper's caption lives in LaTeX (the PDF keeps it as its Title), so the paper style has no title
    size = dict(width=figure_width(style, width), title=style != "paper")
    return RENDERERS[kind](surface, dict(length=length, what=what, scale=scale, axis=axis, at=at, size=size))


def write_figures(surface: Surface, stem: str, *, kinds: tuple[str, ...] | None = None,
                  formats: tuple[str, ...] = ("png",), style: str = "screen",
                  width: str | float | None = None, dpi: int | None = None, scale: str = "linear",
                  what: str = "loss", length: int | None = None,
                  axis: str = "x", at: float | None = None, html: bool = True, z_scale: str = "linear",
                  max_points: int = MAX_DISPLAY) -> list[str]:
    """Draw every figure first, then write them; returns the paths.

    Without ``kinds``: ``stem.<fmt>`` (the facets), ``stem_cliffs.<fmt>`` for a sweep with cliff
    metrics, and ``stem.html``. With ``kinds``: ``stem_<kind>.<fmt>`` for each kind and format.
    """
    for fmt in formats:
        if fmt not in FORMATS:
            raise InputError(f"unknown figure format {fmt!r}; valid: {', '.join((*FORMATS, 'html'))}")
    opts = dict(style=style, width=width, scale=scale, what=what, length=length, axis=axis, at=at)
    named: dict[str, str] = {}
    if kinds is None:
        named[""] = "facets"
        if len(surface.lengths) > 1 and "cliff_max_jump" in surface.extra:
            named["_cliffs"] = "cliffs"
    else:
        named = {f"_{k}": k for k in kinds}
    figs = {}
    with use_style(style):
        for suffix, kind in named.items():
            figs[suffix] = render_static(surface, kind, **opts)
    page = interactive_figure(surface, z_scale=z_scale, max_points=max_points) if html else None
    with use_style(style):  # matplotlib reads some settings (the PDF font type) when it saves
        out = [save_figure(fig, f"{stem}{suffix}.{fmt}", dpi=dpi or default_dpi(style),
                           title=surface.caption()) for suffix, fig in figs.items() for fmt in formats]
    if page is not None:
        out.append(write_html(page, stem + ".html"))
    return out


def report_errors(prog: str, body: Callable[[], None]) -> int:
    """Run a command's body: bad input (or an unwritable output) is one line on stderr, status 2."""
    try:
        body()
    except (InputError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    return 0


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def print_paths(paths: list[str]) -> None:
    """The size of each explorer page written, then every path, one per line (paths come last)."""
    for p in paths:
        if p.endswith(".html"):
            print(f"explorer page: {page_size(p)}")
    print(*paths, sep="\n")


def _csv(text: str, valid: tuple[str, ...], option: str) -> tuple[str, ...]:
    items = tuple(v for v in text.split(",") if v)
    for v in items:
        if v not in valid:
            raise InputError(f"{option} {v!r} is unknown; valid: {', '.join(valid)}")
    if not items:
        raise InputError(f"{option} is empty; valid: {', '.join(valid)}")
    return items


def add_figure_options(ap: argparse.ArgumentParser) -> None:
    """The options that choose how figures look, shared by landscape.slice and landscape.render."""
    ap.add_argument("--format", default=None, metavar="FMT[,FMT...]",
                    help=f"figure formats: {', '.join((*FORMATS, 'html'))} (default png,html)")
    ap.add_argument("--style", choices=tuple(STYLES), default="screen",
                    help="paper: LaTeX serif fonts at 8 pt, embedded TrueType, column widths; screen: larger")
    ap.add_argument("--width", default=None, metavar="single|double|INCHES",
                    help="figure width: single (3.3 in) or double (6.9 in) column, or inches")
    ap.add_argument("--dpi", type=int, default=None, help="PNG resolution (default 300 paper, 150 screen)")
    ap.add_argument("--z-scale", choices=Z_SCALES, default="linear", help="z axis of the HTML explorer")
    ap.add_argument("--max-points", type=int, default=MAX_DISPLAY,
                    help="points per axis shown in the HTML (a stride beyond; the .npz keeps all)")


def figure_options(args: argparse.Namespace, *, kinds: tuple[str, ...] | None = None) -> dict:
    """write_figures' keyword arguments from the parsed options."""
    fmts = _csv(args.format, (*FORMATS, "html"), "--format") if args.format is not None else ("png", "html")
    if args.dpi is not None and not 20 <= args.dpi <= 2400:
        raise InputError(f"--dpi {args.dpi} must lie between 20 and 2400")
    if args.max_points < 2:
        raise InputError(f"--max-points {args.max_points} must be at least 2")
    figure_width(args.style, args.width)
    return dict(kinds=kinds, formats=tuple(f for f in fmts if f != "html"), html="html" in fmts,
                style=args.style, width=args.width, dpi=args.dpi, z_scale=args.z_scale,
                max_points=args.max_points)


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m landscape.render", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", help="a surface .npz written by landscape.slice")
    ap.add_argument("--kind", default=None, metavar="KIND[,KIND...]",
                    help=f"figures to draw: {', '.join(KINDS)} (default facets and, for a sweep, cliffs)")
    add_figure_options(ap)
    ap.add_argument("--scale", choices=SCALES, default="linear", help="colour scale of static figures")
    ap.add_argument("--what", default="loss", help="map to draw: loss, accuracy, grad_norm, ...")
    ap.add_argument("--length", type=int, default=None,
                    help="length of surface/contour/heatmap (default the longest)")
    ap.add_argument("--axis", choices=("x", "y"), default="x", help="direction of the 1-D slices")
    ap.add_argument("--at", type=float, default=None,
                    help="where the slices cut the other axis (default its middle)")
    ap.add_argument("--out", default=None, help="folder for the figures (default: beside FILE)")
    ap.add_argument("--name", default=None, help="output stem (default: the file's name)")
    args = ap.parse_args(argv)

    def body() -> None:
        kinds = _csv(args.kind, KINDS, "--kind") if args.kind is not None else None
        opts = figure_options(args, kinds=kinds)
        surface = load_surface(args.file)
        name = args.name or os.path.splitext(os.path.basename(args.file))[0]
        stem = os.path.join(args.out or os.path.dirname(args.file) or ".", name)
        print_paths(write_figures(surface, stem, scale=args.scale, what=args.what, length=args.length,
                                  axis=args.axis, at=args.at, **opts))

    return report_errors(ap.prog, body)


if __name__ == "__main__":
    sys.exit(main())
