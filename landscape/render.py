"""Redraw a surface file's figures without recomputing: ``python -m landscape.render FILE.npz``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from ._errors import InputError
from .interactive import interactive_figure, write_html
from .plot import SCALES, plot_cliffs, plot_surface, save_figure
from .surface import Surface, load_surface

__all__ = ["write_figures", "report_errors", "OneLineParser", "main"]


def write_figures(surface: Surface, stem: str, *, scale: str = "linear", dpi: int = 150) -> list[str]:
    """Draw every figure first, then write ``stem.png``, ``stem.html`` and, for a sweep with cliff
    metrics, ``stem_cliffs.png``; returns the paths."""
    figs = {stem + ".png": plot_surface(surface, scale=scale)}
    if len(surface.lengths) > 1 and "cliff_max_jump" in surface.extra:
        figs[stem + "_cliffs.png"] = plot_cliffs(surface)
    page = interactive_figure(surface)
    return [*(save_figure(f, p, dpi=dpi) for p, f in figs.items()), write_html(page, stem + ".html")]


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


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m landscape.render", description=__doc__)
    ap.add_argument("file", help="a surface .npz written by landscape.slice")
    ap.add_argument("--out", default=None, help="folder for the figures (default: beside FILE)")
    ap.add_argument("--scale", choices=SCALES, default="linear", help="colour scale of the PNG")
    ap.add_argument("--dpi", type=int, default=150)
    args = ap.parse_args(argv)

    def body() -> None:
        surface = load_surface(args.file)
        name = os.path.splitext(os.path.basename(args.file))[0]
        stem = os.path.join(args.out or os.path.dirname(args.file) or ".", name)
        for path in write_figures(surface, stem, scale=args.scale, dpi=args.dpi):
            print(path)

    return report_errors(ap.prog, body)


if __name__ == "__main__":
    sys.exit(main())
