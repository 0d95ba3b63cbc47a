"""The figure registry: every figure kind by the word ``--kind`` takes, and the one writer of
figure files (``write_figures`` for a surface, ``write_pages`` for any drawn figures: every
figure drawn before any file is written; ``save_figure`` writes one static figure and
``write_html`` one explorer page, each atomically)."""

from __future__ import annotations

import os
from dataclasses import replace

import plotly.graph_objects as go
from matplotlib.figure import Figure

from .._errors import InputError, check_type
from .._io import atomic_write
from ..surface import Surface
from ..words import FORMATS
from .interactive import _interactive_figure
from .kinds import KINDS, RENDERERS
from .options import FigureOptions
from .style import default_dpi, figure_width, use_style

__all__ = [
    "RENDERERS",
    "KINDS",
    "FORMATS",
    "FigureOptions",
    "render_static",
    "write_figures",
    "save_figure",
    "write_html",
    "write_pages",
]


def render_static(surface: Surface, kind: str, options: FigureOptions | None = None, **fields) -> Figure:
    """One static figure of the surface, as ``options`` (a FigureOptions, or its fields) say.
    Draw it (and save it) inside ``use_style(options.style)``."""
    check_type(surface, Surface, "surface")
    return _render(surface, kind, _options(options, fields))


def _options(options: FigureOptions | None, fields: dict) -> FigureOptions:
    if options is None:
        return FigureOptions(**fields)
    return replace(check_type(options, FigureOptions, "options"), **fields)


def _render(surface: Surface, kind: str, o: FigureOptions) -> Figure:
    """``render_static`` past the surface's check (``write_figures`` has made it)."""
    if kind not in RENDERERS:
        raise InputError(f"unknown figure kind {kind!r}; valid: {', '.join(KINDS)}")
    if kind == "grad" and surface.grads is None:
        raise InputError("surface has no gradient norms; compute it with landscape.slice --grad")
    if kind == "cliffs" and surface.cliffs is None:
        raise InputError("surface has no cliff metrics; a sweep over lengths from landscape.slice has them")
    # a paper's caption lives in LaTeX (the PDF keeps it as its Title), so the paper style has no title
    size = dict(width=figure_width(o.style, o.width), title=o.style != "paper")
    return RENDERERS[kind](surface, o, size)


def write_figures(surface: Surface, stem: str, options: FigureOptions | None = None, **fields) -> list[str]:
    """Draw every figure first, then write them; returns the paths. ``options``: a FigureOptions
    (its fields, given as keywords, replace its own; without it, the fields make one).

    Without ``kinds``: ``stem.<fmt>`` (the facets), ``stem_cliffs.<fmt>`` for a sweep with cliff
    metrics, and ``stem.html``. With ``kinds``: ``stem_<kind>.<fmt>`` for each kind and format.
    """
    return _write_figures(check_type(surface, Surface, "surface"), stem, _options(options, fields))


def _write_figures(surface: Surface, stem: str, o: FigureOptions) -> list[str]:
    """``write_figures`` past its checks."""
    named: dict[str, str] = {}
    if o.kinds is None:
        named[""] = "line" if surface.is_line else "facets"
        if len(surface.lengths) > 1 and surface.cliffs is not None:
            named["_cliffs"] = "cliffs"
    else:
        named = {f"_{k}": k for k in o.kinds}
    with use_style(o.style):  # matplotlib reads some settings (the PDF font type) when it saves
        figs = {suffix: _render(surface, kind, o) for suffix, kind in named.items()}
        page = _interactive_figure(surface, o.z_scale, o.max_points) if o.html else None
        title = surface.caption()
        out = [
            save_figure(fig, f"{stem}{suffix}.{fmt}", dpi=o.dpi or default_dpi(o.style), title=title)
            for suffix, fig in figs.items()
            for fmt in o.formats
        ]
    return out + ([] if page is None else [_write_html(page, stem + ".html")])


def save_figure(fig: Figure, path: str, *, dpi: int = 150, title: str = "") -> str:
    """Write a figure atomically in the format its extension names (png, pdf, svg); ``title``
    goes into the file's metadata."""
    check_type(fig, Figure, "fig")
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext not in FORMATS:
        raise InputError(f"unknown figure format {ext!r}; valid: {', '.join(FORMATS)}")
    # no creation date: the same figure gives the same bytes
    meta = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(ext, {})
    if title:
        meta["Title"] = title
    atomic_write(path, lambda f: fig.savefig(f, format=ext, dpi=dpi, metadata=meta))
    return path


def write_html(fig: go.Figure, path: str) -> str:
    """Write a self-contained page (plotly.js inlined, no CDN, no MathJax) atomically."""
    return _write_html(check_type(fig, go.Figure, "fig"), path)


def _write_html(fig: go.Figure, path: str) -> str:
    """``write_html`` past its check."""
    html = fig.to_html(
        include_plotlyjs=True,
        include_mathjax=False,
        full_html=True,
        auto_play=False,
        div_id="landscape",
        config={"displaylogo": False, "responsive": True},
    )
    atomic_write(path, lambda f: f.write(html.encode("utf-8")))
    return path


def write_pages(
    stem: str,
    fig: Figure | None,
    page=None,
    *,
    formats: tuple[str, ...] = ("png",),
    dpi: int = 150,
    title: str = "",
) -> list[str]:
    """Write figures already drawn: ``fig`` as ``stem.<fmt>`` for each format, ``page`` (a plotly
    figure) as ``stem.html``; returns the paths."""
    out = [] if fig is None else [save_figure(fig, f"{stem}.{fmt}", dpi=dpi, title=title) for fmt in formats]
    if page is not None:
        out.append(write_html(page, stem + ".html"))
    return out
