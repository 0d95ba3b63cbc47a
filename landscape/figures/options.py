"""How figures are drawn and written, as one validated value: ``FigureOptions`` checks itself
once when it is made, and the writers (``write_figures``, ``render_static``) take it as it is.
Light: it loads no drawing library, so a command checks its figure options before any work."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .._errors import require
from ..words import FORMATS, MAX_DISPLAY, MAX_PIXELS, SCALES, Z_SCALES
from .kinds import KINDS
from .style import STYLES, figure_width

__all__ = ["FigureOptions"]


@dataclass(frozen=True)
class FigureOptions:
    """The figures of a surface: which kinds (None: the facets, and for a sweep with cliff metrics
    the cliffs), in which static formats, with or without the HTML explorer; their style, width
    and resolution (None: the style's); the map drawn (``what``), its colour scale, the length of
    single-length kinds (None: the longest), the slices' axis and cut (None: the middle), and the
    explorer's z scale and points per axis."""

    kinds: tuple[str, ...] | None = None
    formats: tuple[str, ...] = ("png",)
    html: bool = True
    style: str = "screen"
    width: str | float | None = None
    dpi: int | None = None
    scale: str = "linear"
    what: str = "loss"
    length: int | None = None
    axis: str = "x"
    at: float | None = None
    z_scale: str = "linear"
    max_points: int = MAX_DISPLAY

    def __post_init__(self) -> None:
        if self.kinds is not None:
            object.__setattr__(self, "kinds", tuple(self.kinds))
            for k in self.kinds:
                require(k in KINDS, "kinds", f"has an unknown figure kind {k!r}; valid: {', '.join(KINDS)}")
        object.__setattr__(self, "formats", tuple(self.formats))
        for f in self.formats:
            require(
                f in FORMATS, "formats", f"has an unknown figure format {f!r}; valid: {', '.join(FORMATS)}"
            )
        require(self.style in STYLES, "style", f"{self.style!r} is unknown; valid: {', '.join(STYLES)}")
        inches = figure_width(self.style, self.width) or 8.0
        if self.dpi is not None:
            require(
                _whole(self.dpi) and 20 <= self.dpi <= 2400,
                "dpi",
                f"{self.dpi!r} must lie between 20 and 2400",
            )
            require(
                inches * self.dpi <= MAX_PIXELS,
                "dpi",
                f"{self.dpi} at {{width={self.width}}} is {inches * self.dpi:.0f} pixels wide; "
                f"the limit is {MAX_PIXELS}",
            )
        require(self.scale in SCALES, "scale", f"{self.scale!r} is unknown; valid: {', '.join(SCALES)}")
        require(
            isinstance(self.what, str) and bool(self.what), "what", "must name a map: loss, accuracy, ..."
        )
        require(
            self.length is None or (_whole(self.length) and self.length >= 1),
            "length",
            f"{self.length!r} must be a positive integer",
        )
        require(self.axis in ("x", "y"), "axis", f"{self.axis!r} is unknown; valid: x, y")
        require(
            self.at is None or (isinstance(self.at, numbers.Real) and math.isfinite(self.at)),
            "at",
            f"{self.at!r} must be a finite number",
        )
        require(
            self.z_scale in Z_SCALES, "z_scale", f"{self.z_scale!r} is unknown; valid: {', '.join(Z_SCALES)}"
        )
        require(
            _whole(self.max_points) and self.max_points >= 2,
            "max_points",
            f"{self.max_points!r} must be an integer of at least 2",
        )


def _whole(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)
