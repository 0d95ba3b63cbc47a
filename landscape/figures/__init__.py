"""The figures: matplotlib renderers (``plot``, ``plot3d``) in the paper and screen styles
(``style``), the plotly explorer (``interactive``), and the one writer of figure files
(``write``: static formats and self-contained HTML pages), with the figure kinds' one table
(``kinds``) and the figures' validated options (``options``).

This door is light: its names load the drawing libraries on first use, so that the commands can
check their options (``landscape.words``, ``style``) without importing matplotlib or plotly."""

from __future__ import annotations

import importlib

__all__ = [
    "RENDERERS",
    "KINDS",
    "FORMATS",
    "render_static",
    "write_figures",
    "save_figure",
    "write_html",
    "write_pages",
    "FigureOptions",
    "interactive_figure",
    "plot_facets",
    "plot_cliffs",
    "plot_surface3d",
    "use_style",
]

_WHERE = {
    "interactive_figure": "interactive",
    "plot_facets": "plot",
    "plot_cliffs": "plot",
    "use_style": "style",
    "FigureOptions": "options",
    "RENDERERS": "kinds",
    "KINDS": "kinds",
    "plot_surface3d": "plot3d",
    **{
        name: "write"
        for name in (
            "FORMATS",
            "render_static",
            "write_figures",
            "_write_figures",
            "save_figure",
            "write_html",
            "write_pages",
        )
    },
}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
