"""Static renderers and the paper style: every kind draws, sizes match LaTeX column widths, fonts
are embedded TrueType, PNGs have the asked resolution, and no text overlaps another or leaves
the figure. PDF checks use poppler's pdffonts and pdfinfo (skipped without them, unless
LANDSCAPE_REQUIRE_BROWSER=1, which .ci/run sets after installing poppler-utils)."""

from __future__ import annotations

import itertools
import os
import pathlib
import shutil
import struct
import subprocess

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text
from matplotlib.transforms import Bbox

import landscape as ls
from landscape import render
from landscape.figures import KINDS, render_static
from landscape.figures.style import WIDTHS, figure_width, use_style

LENGTHS = (1, 10, 30)
REQUIRED = os.environ.get("LANDSCAPE_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A Pascanu sweep over three lengths with gradients, paths and cliff metrics, saved."""
    cell = ls.get_cell("pascanu")
    datas = [ls.make_data("pascanu", n) for n in LENGTHS]
    plane = ls.axis_plane(
        cell, ls.init_params(cell), x="w", y="b", xrange=(4.5, 5.5), yrange=(-3.0, -2.0), res=(41, 51)
    )
    surf = ls.compute_surface(
        cell,
        plane,
        datas,
        grad=True,
        progress=False,
        config={"cell": "pascanu", "task": "pascanu", "plane": "axis"},
    )
    surf = surf.with_parts(
        paths=ls.paths_for_lengths(cell, datas, plane, start=(5.0, -2.64), lr=0.01, steps=20, clip=1.0)
    )
    surf = surf.with_parts(cliffs=ls.cliff_metrics(surf))
    path = tmp_path_factory.mktemp("sweep") / "p.npz"
    surf.save(str(path))
    return surf, path


def _shown_ticks(axis) -> list[Text]:
    lo, hi = sorted(axis.get_view_interval())
    eps = 1e-9 * max(1.0, abs(hi - lo))
    return [
        t.label1
        for t in axis.get_major_ticks()
        if lo - eps <= t.get_loc() <= hi + eps and t.label1.get_visible() and t.label1.get_text()
    ]


def layout_texts(fig) -> list[Text]:
    """Every title, axis label, shown tick label, colourbar label and legend entry."""
    texts = [fig._suptitle] if fig._suptitle is not None else []
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title]
        axes = [ax.xaxis, ax.yaxis] + ([ax.zaxis] if hasattr(ax, "zaxis") else [])
        if hasattr(ax, "zaxis"):
            continue  # a 3-D axes projects its own labels; its bounding box is checked below
        for axis in axes:
            texts += [axis.label, axis.get_offset_text(), *_shown_ticks(axis)]
        if ax.get_legend() is not None:
            texts += list(ax.get_legend().get_texts())
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def assert_no_overlap(fig) -> None:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    page = fig.bbox
    boxes = []
    for t in layout_texts(fig):
        b = t.get_window_extent(renderer)
        assert page.x0 - 1 <= b.x0 and b.x1 <= page.x1 + 1 and page.y0 - 1 <= b.y0 and b.y1 <= page.y1 + 1, (
            f"{t.get_text()!r} leaves the figure: {b} vs {page}"
        )
        boxes.append((t.get_text(), Bbox.from_extents(b.x0 + 0.5, b.y0 + 0.5, b.x1 - 0.5, b.y1 - 0.5)))
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), f"{ta!r} overlaps {tb!r}"
    for ax in fig.axes:  # 3-D axes: everything they draw stays inside the figure
        if hasattr(ax, "zaxis"):
            b = ax.get_tightbbox(renderer)
            assert page.x0 - 2 <= b.x0 and b.x1 <= page.x1 + 2 and page.y0 - 2 <= b.y0 and b.y1 <= page.y1 + 2


@pytest.fixture(scope="module")
def line_sweep():
    """A line from one rnn model to another (an interpolation) at three lengths."""
    cell = ls.get_cell("rnn")
    plane = ls.line_plane(ls.init_params(cell, seed=1), ls.init_params(cell, seed=2))
    datas = [ls.make_data("latching", n, n=64) for n in LENGTHS]
    surf = ls.compute_surface(
        cell,
        plane,
        datas,
        progress=False,
        config={
            "cell": "rnn",
            "task": "latching",
            "plane": "line",
            "marks": [[list(m) for m in plane.marks]],
        },
    )
    return surf.with_parts(cliffs=ls.cliff_metrics(surf))


@pytest.mark.parametrize("width", ["single", "double"])
@pytest.mark.parametrize("kind", KINDS)
def test_paper_figures_fit_and_nothing_overlaps(sweep, line_sweep, kind, width):
    surf = line_sweep if kind == "line" else sweep[0]
    with use_style("paper"):
        fig = render_static(surf, kind, style="paper", width=width)
        assert fig.get_size_inches()[0] == pytest.approx(WIDTHS[width])
        assert fig.get_size_inches()[1] < 1.3 * WIDTHS[width]  # fits a page
        assert_no_overlap(fig)


@pytest.mark.parametrize("style,width", [("screen", None), ("paper", "single"), ("paper", "double")])
def test_facets_of_symmetric_ranges_keep_tick_labels_apart(style, width):
    """Panels side by side over [-1, 1]: a panel with a right neighbour shows no tick label at its
    right edge, where it would read as one number with the neighbour's first ("1.0-1.0")."""
    rng = np.random.default_rng(0)
    s = ls.Surface(
        rng.random((5, 21, 21)),
        np.linspace(-1, 1, 21),
        np.linspace(-1, 1, 21),
        np.array([5, 10, 20, 50, 100]),
        "d1",
        "d2",
        config={"cell": "rnn", "task": "latching"},
    )
    with use_style(style):
        fig = render_static(s, "facets", style=style, width=width)
        assert_no_overlap(fig)
    panels = [ax for ax in fig.axes if ax.get_title().startswith("L = ")]
    for left, right in zip(panels, panels[1:], strict=False):
        if abs(left.get_position().y0 - right.get_position().y0) < 1e-6:  # same row
            assert all(
                t.label1.get_text() == "" or abs(t.get_loc() - 1.0) > 1e-9
                for t in left.xaxis.get_major_ticks()
                if -1.0 <= t.get_loc() <= 1.0
            ), style


@pytest.mark.parametrize("kind", KINDS)
def test_screen_figures_draw(sweep, line_sweep, kind):
    surf = line_sweep if kind == "line" else sweep[0]
    with use_style("screen"):
        assert_no_overlap(render_static(surf, kind, style="screen"))


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if REQUIRED:
            pytest.fail(f"{name} (poppler-utils) is missing")
        pytest.skip(f"{name} (poppler-utils) is not installed")
    return path


def _png_size(path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.mark.pdf
@pytest.mark.parametrize("width", ["single", "double"])
def test_paper_pdf_embeds_truetype_at_column_width(sweep, tmp_path, capsys, width):
    _, npz = sweep
    pdffonts, pdfinfo = _tool("pdffonts"), _tool("pdfinfo")
    args = [
        str(npz),
        "--kind",
        "facets,contour,slices,surface",
        "--format",
        "pdf,svg,png",
        "--style",
        "paper",
        "--width",
        width,
        "--out",
        str(tmp_path),
    ]
    assert render.main(args) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 12 and all(os.path.getsize(p) > 0 for p in printed)
    for kind in ("facets", "contour", "slices", "surface"):
        pdf = tmp_path / f"p_{kind}.pdf"
        fonts = subprocess.run([pdffonts, str(pdf)], capture_output=True, text=True, check=True).stdout
        rows = fonts.splitlines()[2:]
        assert rows, fonts
        for row in rows:
            assert "TrueType" in row and " yes " in row and "Type 3" not in row, fonts
        assert any("cmr10" in r.lower() or "cmr10" in r for r in rows), fonts  # LaTeX's face
        info = subprocess.run([pdfinfo, str(pdf)], capture_output=True, text=True, check=True).stdout
        size = next(line for line in info.splitlines() if line.startswith("Page size:")).split()
        assert float(size[2]) == pytest.approx(72 * WIDTHS[width], abs=0.5), info
        assert float(size[4]) < 72 * 1.3 * WIDTHS[width]
        w_px, _ = _png_size(tmp_path / f"p_{kind}.png")
        assert w_px == pytest.approx(300 * WIDTHS[width], abs=2)  # 300 dpi by default in paper style
        assert (tmp_path / f"p_{kind}.svg").read_text().lstrip().startswith("<?xml")


def test_dpi_and_screen_style(sweep, tmp_path, capsys):
    _, npz = sweep
    assert (
        render.main(
            [
                str(npz),
                "--kind",
                "heatmap",
                "--format",
                "png",
                "--dpi",
                "100",
                "--width",
                "4",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert _png_size(tmp_path / "p_heatmap.png")[0] == pytest.approx(400, abs=2)


def test_figures_do_not_leak_style(sweep):
    import matplotlib as mpl

    before = dict(mpl.rcParams)
    with use_style("paper"):
        render_static(sweep[0], "facets", style="paper")
    assert dict(mpl.rcParams) == before


def test_clipped_scale_says_what_was_clipped(sweep):
    surf, _ = sweep
    fig = render_static(surf, "heatmap", scale="clip")
    assert "clipped" in fig.axes[0].get_title()
    fig = render_static(surf, "facets", scale="clip")
    assert all("clipped" in ax.get_title() for ax in fig.axes[: len(LENGTHS)])


def test_slices_follow_the_surface(sweep):
    surf, _ = sweep
    fig = render_static(surf, "slices", axis="y", at=5.0)
    ax = fig.axes[0]
    j = int(np.argmin(np.abs(surf.x - 5.0)))
    assert len(ax.lines) == len(LENGTHS)
    for k, line in enumerate(ax.lines):
        np.testing.assert_array_equal(line.get_xdata(), surf.y)
        np.testing.assert_array_equal(line.get_ydata(), surf.loss[k, :, j])


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--kind", "wireframe"], "wireframe"),
        (["--format", "gif"], "gif"),
        (["--style", "poster"], "poster"),
        (["--width", "wide"], "--width"),
        (["--width", "0.1"], "--width"),
        (["--dpi", "0"], "--dpi"),
        (["--kind", "heatmap", "--length", "7"], "length 7"),
        (["--kind", "slices", "--at", "nan"], "nan"),
        (["--what", "energy"], "energy"),
        (["--kind", ""], "--kind"),
    ],
)
def test_bad_render_options(sweep, tmp_path, capsys, args, needle):
    _, npz = sweep
    try:
        code = render.main([str(npz), *args, "--out", str(tmp_path / "o")])
    except SystemExit as e:  # argparse's own choices
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "o").exists()


def test_figure_width_parsing():
    assert figure_width("paper", None) == WIDTHS["single"]
    assert figure_width("screen", None) is None
    assert figure_width("paper", "double") == 6.9 and figure_width("screen", "4.5") == 4.5


def test_every_parameter_name_typesets_in_the_paper_style():
    """In Computer Modern (cmr10) the underscore's code point holds a dot accent, so a raw
    'w_hh_g' axis label reads 'w˙hh˙g'. Every name of every cell, readout and plane is typeset as
    mathtext instead, whose glyphs are the name's letters and digits, and no dot accent."""
    from matplotlib import font_manager, ft2font
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    from landscape.figures.style import html_name, math_name

    cmr10 = ft2font.FT2Font(font_manager.findfont("cmr10"))
    assert cmr10.get_glyph_name(cmr10.get_char_index(ord("_"))) == "dotaccent"  # the bug, shown
    names = {n for c in ("rnn", "lstm", "gru", "pascanu") for n in ls.get_cell(c).param_names}
    names |= set(ls.get_cell("lstm", head="softmax2").param_names) | {"d1", "d2", "pc1", "pc2"}
    parser = MathTextParser("path")
    with use_style("paper"):
        for name in sorted(names):
            label = math_name(name)
            if not label.startswith("$"):
                assert "_" not in label
                continue
            glyphs = parser.parse(label, 72, FontProperties()).glyphs
            drawn = [g[0].get_glyph_name(g[0].get_char_index(g[2])) for g in glyphs]
            assert "dotaccent" not in drawn and "underscore" not in drawn, (name, drawn)
            digits = {"zero": "0", "one": "1", "two": "2"}
            chars = sorted(digits.get(d, d) for d in drawn if len(digits.get(d, d)) == 1)
            assert chars == sorted(c for c in name if c.isalnum()), (name, drawn)
            assert "_" not in html_name(name).replace("<sub>", "").replace("</sub>", "")
    assert math_name("w_hh_g") == "$w_{hh}^{(g)}$" and math_name("b_out_1") == "$b_{out}^{(1)}$"
    assert html_name("w_ih_n") == "<i>w</i><sub>ih</sub><sup>(n)</sup>" and math_name("w") == "$w$"
    surf = ls.compute_surface(
        ls.get_cell("lstm"),
        ls.axis_plane(ls.get_cell("lstm"), ls.init_params("lstm"), res=(3, 3)),
        [ls.make_data("latching", 3, n=10)],
        progress=False,
    )
    with use_style("paper"):
        ax = [a for a in ls.plot_facets(surf).axes if a.get_xlabel()][0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("$w_{hh}^{(g)}$", "$b_{hh}^{(f)}$")


@pytest.mark.parametrize(
    "fields,words",
    [
        (dict(kinds=("facets", "pie")), "kinds has an unknown figure kind 'pie'"),
        (dict(formats=("png", "gif")), "formats has an unknown figure format 'gif'"),
        (dict(style="poster"), "style 'poster' is unknown"),
        (dict(width="triple"), "width='triple'"),
        (dict(dpi=10), "dpi 10 must lie between 20 and 2400"),
        (dict(dpi=2400, width=20.0), "pixels wide; the limit is 20000"),
        (dict(scale="sqrt"), "scale 'sqrt' is unknown"),
        (dict(axis="z"), "axis 'z' is unknown"),
        (dict(at=float("nan")), "at nan must be a finite number"),
        (dict(length=0), "length 0 must be a positive integer"),
        (dict(z_scale="clip"), "z_scale 'clip' is unknown"),
        (dict(max_points=1), "max_points 1 must be an integer of at least 2"),
    ],
)
def test_figure_options_check_themselves_once(sweep, tmp_path, fields, words):
    """A bad figure option is refused where the options are made, by its field, before any file;
    write_figures' keywords go through the same check."""
    with pytest.raises(ls.InputError, match=words.replace("(", r"\(")):
        ls.FigureOptions(**fields)
    with pytest.raises(ls.InputError, match=words.replace("(", r"\(")):
        ls.write_figures(sweep[0], str(tmp_path / "x"), **fields)
    assert not os.listdir(tmp_path)


def test_figure_options_and_keywords_draw_alike(sweep, tmp_path):
    """write_figures with FigureOptions, with the same fields as keywords, and with a field
    replaced by a keyword writes the same files, byte for byte."""
    opts = ls.FigureOptions(kinds=("heatmap",), formats=("png",), html=False, scale="log")
    a = ls.write_figures(sweep[0], str(tmp_path / "a"), opts)
    b = ls.write_figures(
        sweep[0], str(tmp_path / "b"), kinds=("heatmap",), formats=("png",), html=False, scale="log"
    )
    c = ls.write_figures(
        sweep[0],
        str(tmp_path / "c"),
        ls.FigureOptions(kinds=("heatmap",), formats=("png",), html=False),
        scale="log",
    )
    data = [pathlib.Path(p).read_bytes() for p in (*a, *b, *c)]
    assert len(data) == 3 and data[0] == data[1] == data[2]
