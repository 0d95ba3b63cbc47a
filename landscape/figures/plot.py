"""Static figures (matplotlib): take a Surface, return a Figure; never show or touch pyplot state."""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .._errors import InputError, check_type
from ..planes import window_exit
from ..surface import Surface
from ..words import PATH_STYLES, SCALES
from .style import math_name

__all__ = [
    "plot_facets",
    "plot_heatmap",
    "plot_contour",
    "plot_slices",
    "plot_line",
    "plot_cliffs",
    "color_norm",
    "SCALES",
]

MAX_PANELS = 24  # facets of one figure; a longer sweep shows this many of its lengths


def color_norm(values: np.ndarray, scale: str, *, clip: tuple[float, float] = (1.0, 99.0)) -> Normalize:
    """One colour scale for all panels, from the finite values (positive ones for log).

    ``clip`` scale: percentiles ``clip`` of the finite values bound the colours; cells beyond
    them saturate and are counted by the caller.
    """
    if scale not in SCALES:
        raise InputError(f"unknown colour scale {scale!r}; valid: {', '.join(SCALES)}")
    finite = values[np.isfinite(values)]
    if scale == "log":
        finite = finite[finite > 0]
    if finite.size == 0:
        return LogNorm(1e-3, 1.0) if scale == "log" else Normalize(0.0, 1.0)
    if scale == "clip":
        lo, hi = (float(v) for v in np.percentile(finite, clip))
    else:
        lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        hi = lo + (abs(lo) * 1e-6 or 1e-6)
    return LogNorm(lo, hi) if scale == "log" else Normalize(lo, hi)


def _panel_note(z: np.ndarray, norm: Normalize, scale: str) -> str:
    """What the colours do not show: non-finite cells, and cells outside the colour range."""
    finite = np.isfinite(z)
    notes = []
    if (~finite).any():
        notes.append(f"{np.count_nonzero(~finite)} non-finite")
    if scale == "log" and (finite & (z <= 0)).any():
        notes.append(f"{np.count_nonzero(finite & (z <= 0))} <= 0 hidden")
    if scale == "clip":
        out = np.count_nonzero(finite & ((z < norm.vmin) | (z > norm.vmax)))
        notes.append(f"{out} clipped")
    return f" ({', '.join(notes)})" if notes else ""


def _draw_paths(ax, surface: Surface, k: int, *, legend: bool = True) -> None:
    _draw_marks(ax, surface, k)
    xlim, ylim = (surface.x[0], surface.x[-1]), (surface.y[0], surface.y[-1])
    for name, (label, color, dashed) in PATH_STYLES.items():
        if name not in surface.paths:
            continue
        c = surface.paths[name].coords[k]  # (S + 1, 2)
        step, edge = window_exit(c, xlim, ylim)
        shown = c[:step] if step is None else np.vstack([c[:step], edge])
        label += "" if step is None else f" (leaves the window at step {step})"
        ax.plot(shown[:, 0], shown[:, 1], color=color, ls="--" if dashed else "-", lw=1.3, label=label)
        ax.plot(*c[0], "o", color=color, ms=4)
        if step is not None:
            ax.plot(*edge, marker="X", color=color, ms=8, mec="black", mew=0.5)
    if legend and any(n in surface.paths for n in PATH_STYLES):
        ax.legend(fontsize="x-small", loc="upper right", framealpha=0.6)


def _draw_marks(ax, surface: Surface, k: int) -> None:
    """The models an interpolation plane passes through (A, B, C), as labelled points."""
    for name, a, b in surface.marks(k):
        ax.plot(a, b, "o", color="white", mec="black", mew=0.8, ms=6, zorder=5)
        ax.annotate(
            name,
            (a, b),
            xytext=(4, 4),
            textcoords="offset points",
            color="white",
            fontsize="small",
            fontweight="bold",
            zorder=5,
        )


def _two_d(surface: Surface, kind: str) -> None:
    if surface.is_line:
        raise InputError(
            f"a {kind} needs a plane, and the surface is a line (one row of "
            f"{len(surface.x)} points); draw it with the kind line"
        )


def _length_index(surface: Surface, length: int | None) -> int:
    """Index of ``length`` in the surface (None: the longest)."""
    if length is None:
        return len(surface.lengths) - 1
    found = np.flatnonzero(np.asarray(surface.lengths) == length)
    if found.size == 0:
        raise InputError(
            f"length {length} is not in the surface; valid: {', '.join(str(int(n)) for n in surface.lengths)}"
        )
    return int(found[0])


def _values(surface: Surface, what: str) -> np.ndarray:
    maps = surface.maps()
    if what not in maps:
        raise InputError(f"surface has no {what!r} map; valid: {', '.join(maps)}")
    return maps[what]


def _label(what: str, scale: str) -> str:
    return what + {"log": " (log scale)", "clip": " (clipped)"}.get(scale, "")


def _title(surface: Surface, fig: Figure, title: bool, note: str = "") -> None:
    text = "; ".join(t for t in (surface.caption() if title else "", note) if t)
    if text:
        fig.suptitle(text)


def plot_facets(
    surface: Surface,
    *,
    what: str = "loss",
    scale: str = "linear",
    ncols: int = 3,
    cmap: str = "viridis",
    paths: bool = True,
    width: float | None = None,
    title: bool = True,
) -> Figure:
    """The facet grid: a heatmap per length, on one shared colour scale, with labelled axes and
    a colourbar.

    Non-finite cells (overflow on a cliff) are left blank, never filled in, and counted in the
    panel's title, as are cells a clipped scale saturates. Descent paths in the surface are drawn
    on top; a path that leaves the window is cut at the edge and marked with an X there.
    ``width`` (inches) fixes the figure's width, the height follows from the panels. A sweep of
    more than MAX_PANELS lengths shows MAX_PANELS of them, evenly spread, first and last included
    (the colour scale still spans them all). (Longer than a function should be: the shared scale,
    the panel grid and each panel's paths and labels are one figure's layout, read in one piece.)
    """
    check_type(surface, Surface, "surface")
    _two_d(surface, "facet grid")
    values = _values(surface, what)
    shown = (
        np.unique(np.round(np.linspace(0, len(surface.lengths) - 1, MAX_PANELS)).astype(int))
        if len(surface.lengths) > MAX_PANELS
        else np.arange(len(surface.lengths))
    )
    n = len(shown)
    if width is not None:
        ncols = max(1, min(ncols, int(width // 1.6)))
    ncols = min(n, ncols)
    nrows = math.ceil(n / ncols)
    if width is None:
        size = (3.4 * ncols + 0.9, 2.9 * nrows + 0.4)
    else:
        panel = (width - 0.6) / ncols
        size = (width, panel * 0.95 * nrows + (0.35 if title else 0.1))
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    norm = color_norm(values, scale)
    mesh = None
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_axis_off()
            continue
        z = values[shown[k]]
        mesh = ax.pcolormesh(
            surface.x,
            surface.y,
            np.ma.masked_invalid(z),
            shading="nearest",
            cmap=cmap,
            norm=norm,
            rasterized=True,
        )
        if paths:
            _draw_paths(ax, surface, shown[k], legend=width is None or k == 0)
        ax.set_xlim(surface.x[0], surface.x[-1])
        ax.set_ylim(surface.y[0], surface.y[-1])
        ax.set_title(f"L = {int(surface.lengths[shown[k]])}" + _panel_note(z, norm, scale))
        if k // ncols == nrows - 1 or k + ncols >= n:
            ax.set_xlabel(math_name(surface.xlabel))
        if k % ncols == 0:
            ax.set_ylabel(math_name(surface.ylabel))
        # the last x tick of a panel would touch the first of its right neighbour's: drop it
        last_col = k % ncols == ncols - 1 or k == n - 1
        ax.xaxis.set_major_locator(
            MaxNLocator(3 if width is not None else "auto", prune=None if last_col else "upper")
        )
        if width is not None:
            ax.yaxis.set_major_locator(MaxNLocator(4))
            ax.tick_params(labelbottom=k + ncols >= n)
    extend = "both" if scale == "clip" else "neither"
    fig.colorbar(mesh, ax=axes, label=_label(what, scale), shrink=0.9, extend=extend)
    more = n < len(surface.lengths)
    _title(surface, fig, title, f"{n} of {len(surface.lengths)} lengths shown" if more else "")
    return fig


def plot_heatmap(
    surface: Surface,
    *,
    length: int | None = None,
    what: str = "loss",
    scale: str = "linear",
    cmap: str = "viridis",
    paths: bool = True,
    width: float | None = None,
    title: bool = True,
) -> Figure:
    """One length (default the longest) as a heatmap with a colourbar and the paths on top."""
    check_type(surface, Surface, "surface")
    _two_d(surface, "heatmap")
    k = _length_index(surface, length)
    w = width or 5.0
    fig = Figure(figsize=(w, w * 0.8), layout="constrained")
    ax = fig.subplots()
    values = _values(surface, what)
    norm = color_norm(values[k], scale)
    mesh = ax.pcolormesh(
        surface.x,
        surface.y,
        np.ma.masked_invalid(values[k]),
        shading="nearest",
        cmap=cmap,
        norm=norm,
        rasterized=True,
    )
    if paths:
        _draw_paths(ax, surface, k)
    _frame(ax, surface, k, norm, values[k], scale)
    fig.colorbar(mesh, ax=ax, label=_label(what, scale), extend="both" if scale == "clip" else "neither")
    _title(surface, fig, title)
    return fig


def _frame(ax, surface: Surface, k: int, norm: Normalize, z: np.ndarray, scale: str) -> None:
    ax.set_xlim(surface.x[0], surface.x[-1])
    ax.set_ylim(surface.y[0], surface.y[-1])
    ax.set_xlabel(math_name(surface.xlabel))
    ax.set_ylabel(math_name(surface.ylabel))
    ax.set_title(f"L = {int(surface.lengths[k])}" + _panel_note(z, norm, scale))


def plot_contour(
    surface: Surface,
    *,
    length: int | None = None,
    what: str = "loss",
    scale: str = "linear",
    cmap: str = "viridis",
    levels: int = 14,
    paths: bool = True,
    width: float | None = None,
    title: bool = True,
) -> Figure:
    """One length as filled contours with labelled contour lines; non-finite cells stay blank."""
    check_type(surface, Surface, "surface")
    _two_d(surface, "contour plot")
    k = _length_index(surface, length)
    w = width or 5.0
    fig = Figure(figsize=(w, w * 0.8), layout="constrained")
    ax = fig.subplots()
    z = _values(surface, what)[k]
    norm = color_norm(z, scale)
    if scale == "log":
        lv = np.geomspace(norm.vmin, norm.vmax, levels)
    else:
        lv = np.linspace(norm.vmin, norm.vmax, levels)
    shown = np.ma.masked_invalid(np.clip(z, norm.vmin, norm.vmax) if scale == "clip" else z)
    if scale == "log":
        shown = np.ma.masked_where(~(shown > 0), shown)
    filled = ax.contourf(surface.x, surface.y, shown, levels=lv, cmap=cmap, norm=norm)
    lines = ax.contour(surface.x, surface.y, shown, levels=lv[::3], colors="k", linewidths=0.4, alpha=0.6)
    ax.clabel(lines, fontsize="x-small", fmt="%.3g")
    if paths:
        _draw_paths(ax, surface, k)
    _frame(ax, surface, k, norm, z, scale)
    fig.colorbar(filled, ax=ax, label=_label(what, scale), extend="both" if scale == "clip" else "neither")
    _title(surface, fig, title)
    return fig


def plot_slices(
    surface: Surface,
    *,
    axis: str = "x",
    at: float | None = None,
    what: str = "loss",
    scale: str = "linear",
    width: float | None = None,
    title: bool = True,
) -> Figure:
    """1-D slices: ``what`` along one axis of the plane at every length, the other axis held at
    the grid value nearest ``at`` (default: the middle of its range). Lengths are coloured from
    light (short) to dark (long); log puts the values on a log axis."""
    check_type(surface, Surface, "surface")
    if axis not in ("x", "y"):
        raise InputError(f"unknown slice axis {axis!r}; valid: x, y")
    if axis == "y" and surface.is_line:
        raise InputError("the surface is a line: it has no y axis to slice along; valid: x")
    values = _values(surface, what)
    other = surface.y if axis == "x" else surface.x
    if at is None:
        j = len(other) // 2
    else:
        if not np.isfinite(at):
            raise InputError(f"slice position {at!r} must be a finite number")
        j = int(np.argmin(np.abs(other - at)))
    along = surface.x if axis == "x" else surface.y
    w = width or 5.0
    fig = Figure(figsize=(w, w * 0.7), layout="constrained")
    ax = fig.subplots()
    colors = _length_colors(len(surface.lengths))
    for k, n in enumerate(surface.lengths):
        line = values[k, j, :] if axis == "x" else values[k, :, j]
        ax.plot(along, line, color=colors[k], label=f"L = {int(n)}")
    if scale == "log" and (values > 0).any():
        ax.set_yscale("log")
    elif scale == "clip":
        norm = color_norm(values, "clip")
        ax.set_ylim(norm.vmin, norm.vmax)
    names = (surface.xlabel, surface.ylabel) if axis == "x" else (surface.ylabel, surface.xlabel)
    ax.set_xlabel(math_name(names[0]))
    ax.set_ylabel(_label(what, "clip" if scale == "clip" else "linear"))
    ax.set_title(f"{names[1]} = {other[j]:.4g}")
    ax.grid(True, alpha=0.3)
    ax.legend(ncols=2 if len(surface.lengths) > 4 else 1)
    _title(surface, fig, title)
    return fig


def plot_line(
    surface: Surface,
    *,
    what: str = "loss",
    scale: str = "linear",
    width: float | None = None,
    title: bool = True,
) -> Figure:
    """A line surface (an interpolation from model A to B, Goodfellow et al. 2015): ``what``
    against alpha at every length (light: short, dark: long), the accuracy dashed on the right
    axis where the surface has it, and A and B marked where the line passes them. Non-finite
    losses are gaps in the line, counted in the title."""
    check_type(surface, Surface, "surface")
    if not surface.is_line:
        raise InputError(
            f"a line plot needs a line surface (one row); this one is {len(surface.y)} x "
            f"{len(surface.x)}: draw it with facets, heatmap, contour or slices"
        )
    values = _values(surface, what)[:, 0, :]  # (n_len, nx)
    w = width or 5.5
    fig = Figure(figsize=(w, w * 0.62), layout="constrained")
    ax = fig.subplots()
    colors = _length_colors(len(surface.lengths))
    for k, n in enumerate(surface.lengths):
        ax.plot(
            surface.x,
            np.where(np.isfinite(values[k]), values[k], np.nan),
            color=colors[k],
            label=f"L = {int(n)}",
        )
    if scale == "log" and (values > 0).any():
        ax.set_yscale("log")
    elif scale == "clip":
        norm = color_norm(values, "clip")
        ax.set_ylim(norm.vmin, norm.vmax)
    acc = surface.accuracy
    if acc is not None and what == "loss":
        right = ax.twinx()
        for k in range(len(surface.lengths)):
            right.plot(surface.x, acc[k, 0], color=colors[k], ls="--", lw=0.9, alpha=0.8)
        right.set_ylim(-0.02, 1.02)
        right.set_ylabel("accuracy (dashed)")
    for name, a, _ in surface.marks():
        ax.axvline(a, color="0.5", lw=0.7, ls=":")
        ax.annotate(
            name,
            (a, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontweight="bold",
        )
    ax.set_xlim(surface.x[0], surface.x[-1])
    ax.set_xlabel(math_name(surface.xlabel) + (" (A to B)" if surface.marks() else ""))
    ax.set_ylabel(_label(what, "clip" if scale == "clip" else "linear"))
    ax.grid(True, alpha=0.3)
    ax.legend(ncols=2 if len(surface.lengths) > 4 else 1, fontsize="small")
    bad = int(np.count_nonzero(~np.isfinite(values)))
    _title(surface, fig, title, f"{bad} non-finite points" if bad else "")
    return fig


def _length_colors(n: int) -> list:
    cmap = colormaps["viridis_r"]
    return [cmap(0.15 + 0.8 * k / max(n - 1, 1)) for k in range(n)]


def plot_cliffs(surface: Surface, *, width: float | None = None, title: bool = True) -> Figure:
    """Cliff steepness against sequence length (log scale), from the surface's cliff metrics."""
    check_type(surface, Surface, "surface")
    if surface.cliffs is None:
        raise InputError("surface has no cliff metrics; compute them with landscape.cliffs.cliff_metrics")
    e, lengths = surface.cliffs, surface.lengths
    fig = Figure(figsize=(4.6, 3.2) if width is None else (width, width * 0.7), layout="constrained")
    ax = fig.subplots()
    if np.isfinite(e.max_grad).any():
        ax.plot(lengths, e.max_grad, "o-", label="largest gradient norm")
    ax.plot(lengths, e.max_jump, "s--", label="largest jump between neighbours")
    shown = np.concatenate([e.max_grad, e.max_jump])
    if (np.isfinite(shown) & (shown > 0)).any():  # a flat sweep has nothing to put on a log axis
        ax.set_yscale("log")
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("cliff steepness")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    caption = surface.caption() if title else ""
    if caption:
        ax.set_title(caption, fontsize="medium")
    return fig
