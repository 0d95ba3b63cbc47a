"""The light module of word lists (landscape.words): importing the package and every command's
--help loads no drawing library; the renderers draw what the lists name, and both draw each path
from the one table of path styles."""

from __future__ import annotations

import subprocess
import sys

import matplotlib.colors as mcolors
import pytest

import landscape as ls
from landscape.figures import RENDERERS
from landscape.words import PATH_STYLES

PROBE = """
import sys, importlib
for name in {modules!r}:
    importlib.import_module(name)
print(sorted(m for m in ("matplotlib", "plotly", "scipy") if m in sys.modules))
"""

HELP = """
import sys, runpy
sys.argv = ["x", "--help"]
try:
    runpy.run_module("landscape.{command}", run_name="__main__")
except SystemExit:
    pass
print(sorted(m for m in ("matplotlib", "plotly") if m in sys.modules))
"""


@pytest.mark.slow
def test_importing_the_package_and_its_commands_loads_no_drawing_library():
    modules = ["landscape", "landscape.slice", "landscape.render", "landscape.latching", "landscape.tiles"]
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(modules=modules)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
    for command in ("slice", "render", "latching"):
        code = HELP.format(command=command)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip().splitlines()[-1] == "[]", (command, out.stdout[-300:])


def test_drawing_functions_load_on_first_use():
    assert ls.plot_facets.__module__ == "landscape.figures.plot"
    assert ls.interactive_figure.__module__ == "landscape.figures.interactive"
    assert {"plot_facets", "save_figure", "write_html"} <= set(dir(ls))


def test_every_kind_is_one_row_of_the_one_table():
    from landscape.figures import kinds, write

    assert tuple(RENDERERS) == kinds.KINDS and RENDERERS is kinds.RENDERERS is write.RENDERERS


def test_both_renderers_draw_each_path_from_the_one_table(path_surface):
    page = ls.interactive_figure(path_surface)
    fig = ls.plot_facets(path_surface)
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    for name in path_surface.paths:
        label, color, dashed = PATH_STYLES[name]
        shown = [t for t in page.data if t.type == "scatter3d" and t.legendgroup == name]
        assert shown and all(t.name.startswith(label) for t in shown), [t.name for t in shown]
        assert all(t.line.color == color and t.line.dash == ("dash" if dashed else "solid") for t in shown)
        drawn = [ln for ln in lines if ln.get_label().startswith(label)]
        assert drawn, [ln.get_label() for ln in lines]
        for ln in drawn:
            assert mcolors.to_hex(ln.get_color()) == color
            assert ln.get_linestyle() == ("--" if dashed else "-")


def test_the_public_face_names_what_it_exports():
    """About fifteen verbs and the types they take and return, every one there; the rest of the
    toolkit still reachable (existing code keeps working), and nothing named twice."""
    names = [*ls.__all__, *ls.MORE]
    assert [name for name in names if not hasattr(ls, name)] == []
    assert len(names) == len(set(names))
    assert 15 <= len(ls.VERBS) <= 18 and set(ls.__all__) == {"__version__", *ls.VERBS, *ls.TYPES}
    for name in ls.VERBS:
        assert callable(getattr(ls, name)) and not isinstance(getattr(ls, name), type), name
    for name in ls.TYPES:
        assert isinstance(getattr(ls, name), type), name
    public = {n for n in vars(ls) if not n.startswith("_") and not isinstance(getattr(ls, n), type(ls))}
    assert public - {*names, "VERBS", "TYPES", "MORE"} == set(), "a name neither in the face nor in MORE"
