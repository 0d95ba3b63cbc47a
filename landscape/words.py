"""The figures' word lists and limits, in one light module: what the commands offer and check
before any drawing library is imported (matplotlib and plotly load only when a figure is drawn)."""

from __future__ import annotations

__all__ = ["FORMATS", "SCALES", "Z_SCALES", "MAX_DISPLAY", "MAX_PIXELS", "PATH_STYLES"]

FORMATS = ("png", "pdf", "svg")  # static figure formats; "html" is the explorer
SCALES = ("linear", "log", "clip")  # colour scales of static figures
Z_SCALES = ("linear", "log")  # z axis of the explorer
MAX_DISPLAY = 101  # points per axis shown in the explorer; the surface file keeps full resolution
MAX_PIXELS = 20000  # width of a raster figure

# How each kind of path is drawn, the one table of both renderers (the static figures and the
# explorer): its label, its colour, and whether its line is dashed. Keyed by the names of
# Surface.paths, in the order they are drawn.
PATH_STYLES: dict[str, tuple[str, str, bool]] = {
    "plain": ("plain GD", "#d62728", False),
    "clip": ("clipped GD", "#ffffff", True),
    "train": ("training path", "#ff7f0e", False),
}
