"""Figure styles: ``paper`` for a LaTeX manuscript, ``screen`` for reading on a monitor.

``paper`` sets Computer Modern (matplotlib's own ``cmr10``, the face of a default LaTeX body)
at 8 pt, thin lines, 300 dpi for PNG, and TrueType (Type 42) fonts embedded in PDF and PS, which
publishers require instead of Type 3. Widths match a two-column paper: ``single`` is one
column (3.3 in, ``\\columnwidth``), ``double`` the full text width (6.9 in, ``\\textwidth``).
A figure saved at these sizes drops into LaTeX with ``\\includegraphics[width=\\columnwidth]``
without being scaled, so its 8 pt text stays 8 pt.

Use ``with use_style("paper"):`` around both drawing and saving (matplotlib reads some settings,
such as the PDF font type, when it saves).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from .._errors import ConfigError, InputError

__all__ = ["STYLES", "WIDTHS", "use_style", "figure_width", "default_dpi", "math_name", "html_name"]

_COMMON = {"pdf.fonttype": 42, "ps.fonttype": 42, "image.cmap": "viridis", "savefig.bbox": None}

STYLES: dict[str, dict] = {
    "paper": {
        **_COMMON,
        "font.family": "serif",
        "font.serif": ["cmr10", "DejaVu Serif"],
        "mathtext.fontset": "cm",
        "axes.formatter.use_mathtext": True,  # cmr10 has no minus sign; mathtext's does
        "font.size": 8.0,
        "axes.titlesize": 8.0,
        "axes.labelsize": 8.0,
        "xtick.labelsize": 7.0,
        "ytick.labelsize": 7.0,
        "legend.fontsize": 6.5,
        "figure.titlesize": 8.0,
        "axes.linewidth": 0.6,
        "lines.linewidth": 1.0,
        "lines.markersize": 3.0,
        "xtick.major.width": 0.6,
        "ytick.major.width": 0.6,
        "xtick.major.size": 2.5,
        "ytick.major.size": 2.5,
        "axes.titlepad": 3.0,
        "axes.labelpad": 2.0,
        "legend.frameon": False,
        "figure.constrained_layout.h_pad": 0.02,
        "figure.constrained_layout.w_pad": 0.02,
        "savefig.dpi": 300,
    },
    "screen": {**_COMMON, "font.size": 10.0, "savefig.dpi": 150},
}

WIDTHS = {"single": 3.3, "double": 6.9}  # inches: one column and the text width of a two-column paper


def _check(style: str) -> str:
    if style not in STYLES:
        raise InputError(f"unknown style {style!r}; valid: {', '.join(STYLES)}")
    return style


@contextlib.contextmanager
def use_style(style: str) -> Iterator[None]:
    """Draw and save inside this block; matplotlib's global settings are restored after it."""
    fonttools = logging.getLogger("fontTools")  # it logs cmr10's 1990s timestamps while embedding
    level = fonttools.level
    fonttools.setLevel(logging.ERROR)
    try:
        import matplotlib as mpl  # here, so that the word lists above cost no drawing library

        with mpl.rc_context(STYLES[_check(style)]):
            yield
    finally:
        fonttools.setLevel(level)


def figure_width(style: str, width: str | float | None) -> float | None:
    """Inches for ``width`` ('single', 'double' or a number); None lets a screen figure choose."""
    _check(style)
    if width is None:
        return WIDTHS["single"] if style == "paper" else None
    if isinstance(width, str) and width in WIDTHS:
        return WIDTHS[width]
    try:
        inches = float(width)
    except (TypeError, ValueError):
        inches = float("nan")
    if not 1.0 <= inches <= 20.0:
        raise ConfigError(
            "width", "gives no figure width: give single, double or inches from 1 to 20", value=str(width)
        )
    return inches


def default_dpi(style: str) -> int:
    return int(STYLES[_check(style)]["savefig.dpi"])


def _parts(name: str) -> tuple[str, str, str]:
    """'w_hh_g' -> ('w', 'hh', 'g'); 'b_out_1' -> ('b', 'out', '1'); 'd1' -> ('d', '1', '');
    'pc2' -> ('PC', '2', ''); 'w' -> ('w', '', '')."""
    if name.startswith("pc") and name[2:].isdigit():
        return "PC", name[2:], ""
    if name.startswith("d") and name[1:].isdigit():
        return "d", name[1:], ""
    head, *rest = name.split("_")
    return head, rest[0] if rest else "", rest[1] if len(rest) > 1 else ""


def math_name(name: str) -> str:
    """A parameter name as matplotlib mathtext: 'w_hh_g' -> '$w_{hh}^{(g)}$'. Every style uses
    it: an underscore is a glyph Computer Modern lacks, and a subscript reads as one anyway."""
    base, sub, sup = _parts(name)
    if base == "PC":
        return f"PC {sub}"
    return "$" + base + (f"_{{{sub}}}" if sub else "") + (f"^{{({sup})}}" if sup else "") + "$"


def html_name(name: str) -> str:
    """The same name for a web page (Plotly draws HTML, not TeX, offline): 'w<sub>hh</sub><sup>(g)</sup>'."""
    base, sub, sup = _parts(name)
    if base == "PC":
        return f"PC {sub}"
    return f"<i>{base}</i>" + (f"<sub>{sub}</sub>" if sub else "") + (f"<sup>({sup})</sup>" if sup else "")
