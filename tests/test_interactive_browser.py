"""The explorer page in a real headless Chromium, offline: it loads with no console error and no
network request, the plot is drawn, the slider and play button change the length and the data,
and hover text names the parameters.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` package (which drives
that binary; no browser is downloaded). Without them the tests are skipped, unless
LANDSCAPE_REQUIRE_BROWSER=1 (set by .ci/run), where they fail instead.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import landscape as ls
from landscape import render

pytestmark = pytest.mark.browser  # python -m pytest -m "not browser" skips these

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
REQUIRED = os.environ.get("LANDSCAPE_REQUIRE_BROWSER") == "1"
LENGTHS = (1, 10, 30)


def _need(ok: bool, why: str) -> None:
    if not ok:
        if REQUIRED:
            pytest.fail(why + " (LANDSCAPE_REQUIRE_BROWSER=1)")
        pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    _need(os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "playwright is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    """A Pascanu sweep with gradient norms and descent paths, through the render command."""
    out = tmp_path_factory.mktemp("explorer")
    cell = ls.get_cell("pascanu")
    center = ls.init_params(cell)
    datas = [ls.make_data("pascanu", n) for n in LENGTHS]
    plane = ls.axis_plane(cell, center, x="w", y="b", xrange=(4.5, 5.5), yrange=(-3.0, -2.0), res=(41, 31))
    surf = ls.compute_surface(
        cell,
        plane,
        datas,
        grad=True,
        progress=False,
        config={"cell": "pascanu", "task": "pascanu", "plane": "axis", "seed": 0},
    )
    surf = surf.with_parts(
        paths=ls.paths_for_lengths(cell, datas, plane, start=(5.0, -2.64), lr=0.01, steps=20, clip=1.0)
    )
    surf.save(str(out / "p.npz"))
    assert render.main([str(out / "p.npz"), "--format", "html"]) == 0
    return out / "p.html"


class Page:
    """A page opened with every request outside file:// refused and recorded."""

    def __init__(self, browser, path):
        self.page = browser.new_page(viewport={"width": 1280, "height": 720})
        self.errors, self.remote = [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def route(r):
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                self.remote.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)
        self.page.goto(path.as_uri())
        self.page.wait_for_function(
            "() => { const gd = document.getElementById('landscape');"
            " return gd && gd._fullLayout && gd._fullData.length > 0; }"
        )

    def js(self, expr: str):
        script = f"() => {{ const gd = document.getElementById('landscape'); return {expr}; }}"
        return self.page.evaluate(script)

    def heatmap_z(self) -> np.ndarray:
        return np.array(self.js("Array.from(gd._fullData[1].z, row => Array.from(row))"), dtype=float)


@pytest.fixture
def page(browser, page_file):
    p = Page(browser, page_file)
    yield p
    p.page.close()


def test_page_loads_offline_without_errors_and_draws(page):
    page.page.wait_for_timeout(500)
    assert page.remote == [] and page.errors == []
    assert page.js("gd._fullData.map(t => t.type)")[:2] == ["surface", "heatmap"]
    # the 3-D scene is a WebGL canvas of real size; the heatmap is an image in the SVG
    size = page.js(
        "(() => { const c = document.querySelector('.gl-container canvas');"
        " return c ? [c.width, c.height] : null; })()"
    )
    assert size is not None and size[0] > 100 and size[1] > 100
    assert page.js("document.querySelectorAll('.hm image').length") == 1
    assert "cell pascanu" in page.js("gd._fullLayout.title.text")
    assert page.js("gd._fullLayout.scene.zaxis.range") == pytest.approx(
        page.js("[gd._fullData[0].cmin, gd._fullData[0].cmax]")
    )


def test_slider_changes_length_and_data(page):
    before = page.heatmap_z()
    zrange = page.js("gd._fullLayout.scene.zaxis.range")
    assert page.js("gd._fullLayout.sliders[0].active") == 0
    # a user clicks the rail under the last length's label (the rail takes the pointer there)
    label = page.page.locator(".slider-label-group .slider-label", has_text=str(LENGTHS[-1]))
    box = label.first.bounding_box()
    page.page.mouse.click(box["x"] + box["width"] / 2, box["y"] - 12)
    page.page.wait_for_function(
        f"() => document.getElementById('landscape')._fullLayout.sliders[0].active === {len(LENGTHS) - 1}"
    )
    page.page.wait_for_timeout(300)
    current = page.page.locator(".slider-container text", has_text="sequence length L = ").first
    assert current.text_content() == f"sequence length L = {LENGTHS[-1]}"
    after = page.heatmap_z()
    assert after.shape == before.shape and not np.allclose(after, before, equal_nan=True)
    assert page.js("gd._fullLayout.scene.zaxis.range") == pytest.approx(zrange, rel=1e-12)  # the scale stays
    assert page.errors == []


def test_play_button_steps_through_lengths(page):
    page.page.locator(".updatemenu-button", has_text="Play").click()
    page.page.wait_for_function(
        f"() => document.getElementById('landscape')._fullLayout.sliders[0].active === {len(LENGTHS) - 1}",
        timeout=15000,
    )
    assert page.errors == []


def test_hover_names_parameters_and_values(page):
    box = page.page.locator(".xy .nsewdrag").first.bounding_box()
    page.page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    tip = page.page.locator(".hoverlayer .hovertext").first
    tip.wait_for(timeout=5000)
    text = tip.text_content()
    for needle in ("w = ", "b = ", "loss = ", "grad_norm = "):
        assert needle in text, text
    assert page.errors == []


def test_log_scale_page(browser, page_file, tmp_path):
    assert (
        render.main(
            [
                str(page_file.with_suffix(".npz")),
                "--format",
                "html",
                "--z-scale",
                "log",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    p = Page(browser, tmp_path / "p.html")
    try:
        assert p.js("gd._fullLayout.scene.zaxis.title.text") == "log10 loss"
        z = np.array(p.js("Array.from(gd._fullData[0].z, row => Array.from(row))"), dtype=float)
        loss = ls.load_surface(str(page_file.with_suffix(".npz"))).loss[0]
        np.testing.assert_allclose(z, np.log10(loss), rtol=1e-5)  # float32 in the page
        assert p.remote == [] and p.errors == []
    finally:
        p.page.close()


def test_line_page_draws_loss_and_accuracy_and_hovers(browser, tmp_path):
    """The explorer of an interpolation (a line surface): every length's loss and accuracy are
    drawn as lines, the legend hides a length, and the hover gives alpha, the loss and accuracy."""
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
    surf.save(str(tmp_path / "line.npz"))
    assert render.main([str(tmp_path / "line.npz"), "--format", "html", "--out", str(tmp_path)]) == 0
    p = Page(browser, tmp_path / "line.html")
    try:
        assert p.js("gd._fullData.map(t => t.type)") == ["scatter"] * (2 * len(LENGTHS))
        y = np.array(p.js("Array.from(gd._fullData[2].y)"), dtype=float)  # L = 10's loss
        np.testing.assert_allclose(y, surf.loss[1, 0], rtol=1e-6)
        assert p.js("gd._fullLayout.annotations.map(a => a.text)") == ["<b>A</b>", "<b>B</b>"]
        assert "line from A to B" in p.js("gd._fullLayout.title.text")
        assert p.page.locator(".scatterlayer .trace").count() == 2 * len(LENGTHS)
        p.page.locator(".legend .traces", has_text="L = 10").click()  # hides L = 10 and its accuracy
        p.page.wait_for_function(
            "() => document.getElementById('landscape')._fullData[2].visible === 'legendonly'"
        )
        assert p.js("gd._fullData[3].visible") == "legendonly"
        box = p.page.locator(".xy .nsewdrag").first.bounding_box()
        p.page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.3)
        tip = p.page.locator(".hoverlayer").first
        p.page.wait_for_function(
            "() => document.querySelector('.hoverlayer').textContent.includes('loss')", timeout=5000
        )
        text = tip.text_content()
        assert "alpha" in text and "loss = " in text, text
        assert p.remote == [] and p.errors == []
    finally:
        p.page.close()
