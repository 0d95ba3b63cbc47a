"""The figure kinds, one row each: the word ``--kind`` takes, and how that figure is drawn from a
surface, its options and its size. The one place a new kind is added; its word list (``KINDS``)
is read from it. Light: a row loads its renderer (matplotlib) only when it draws."""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["RENDERERS", "KINDS"]


def _draw(where: str, name: str) -> Callable:
    """The renderer ``name`` of ``landscape.figures.<where>``, imported when first called."""

    def draw(*args, **kwargs):
        return getattr(importlib.import_module(f".{where}", __package__), name)(*args, **kwargs)

    return draw


surface3d = _draw("plot3d", "plot_surface3d")
contour, heatmap, facets = (
    _draw("plot", "plot_contour"),
    _draw("plot", "plot_heatmap"),
    _draw("plot", "plot_facets"),
)
slices, line, cliffs = _draw("plot", "plot_slices"), _draw("plot", "plot_line"), _draw("plot", "plot_cliffs")

# kind -> (surface, FigureOptions, size: width and title) -> matplotlib Figure
RENDERERS: dict[str, Callable] = {
    "surface": lambda s, o, size: surface3d(s, length=o.length, what=o.what, scale=o.scale, **size),
    "contour": lambda s, o, size: contour(s, length=o.length, what=o.what, scale=o.scale, **size),
    "heatmap": lambda s, o, size: heatmap(s, length=o.length, what=o.what, scale=o.scale, **size),
    "facets": lambda s, o, size: facets(s, what=o.what, scale=o.scale, **size),
    "slices": lambda s, o, size: slices(s, axis=o.axis, at=o.at, what=o.what, scale=o.scale, **size),
    "line": lambda s, o, size: line(s, what=o.what, scale=o.scale, **size),
    "grad": lambda s, o, size: (line if s.is_line else facets)(
        s, what="grad_norm", scale="log" if o.scale == "linear" else o.scale, **size
    ),
    "cliffs": lambda s, o, size: cliffs(s, **size),
}
KINDS = tuple(RENDERERS)
