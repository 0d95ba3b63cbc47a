"""Cliff metrics on hand-built surfaces with known walls, and the --grad sweep through the CLI."""

from __future__ import annotations

import os

import numpy as np
import pytest

import landscape as ls
import landscape.slice as cli

from references import pascanu_grad

KEYS = (
    "cliff_max_grad",
    "cliff_max_grad_x",
    "cliff_max_grad_y",
    "cliff_max_jump",
    "cliff_wall_x",
    "cliff_wall_y",
    "cliff_share",
    "cliff_nonfinite",
)


def surface(loss, x=None, y=None, lengths=None, extra=None) -> ls.Surface:
    loss = np.asarray(loss, dtype=np.float64)
    n, ny, nx = loss.shape
    x = np.linspace(-1.0, 1.0, nx) if x is None else np.asarray(x, dtype=np.float64)
    y = np.linspace(0.0, 3.0, ny) if y is None else np.asarray(y, dtype=np.float64)
    lengths = np.arange(1, n + 1) * 10 if lengths is None else np.asarray(lengths)
    grads = None if not extra else ls.Grads(extra["grad_norm"], extra["grad_norm"], extra["grad_norm"])
    return ls.Surface(loss, x, y, lengths, "u", "v", {}, None, grads)


def cliff_arrays(s: ls.Surface, **kwargs) -> dict[str, np.ndarray]:
    """The metrics under the surface file's keys."""
    return ls.cliff_metrics(s, **kwargs).arrays()


def ramp(ny: int, nx: int, slope_x: float = 0.01, slope_y: float = 0.02) -> np.ndarray:
    i, j = np.mgrid[0:ny, 0:nx]
    return slope_x * j + slope_y * i


def wall_x(ny: int, nx: int, j0: int, i0: int, height: float) -> np.ndarray:
    """A ramp with a wall between columns j0 - 1 and j0, highest (by 0.05) on row i0.

    Largest jump: |height + 0.05| + 0.01 (same sign) at (mid x, y[i0]); jumps across rows stay
    at most 0.07.
    """
    z = ramp(ny, nx)
    z[:, j0:] += height
    z[i0, j0:] += 0.05 * np.sign(height)
    return z


def wall_y(ny: int, nx: int, i0: int, j0: int, height: float) -> np.ndarray:
    """A ramp with a wall between rows i0 - 1 and i0, highest (by 0.05) in column j0."""
    z = ramp(ny, nx)
    z[i0:, :] += height
    z[i0:, j0] += 0.05 * np.sign(height)
    return z


# ---------------------------------------------------------------- jumps and walls


def test_step_along_x_gives_its_height_and_midpoint():
    ny, nx = 5, 7
    x = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 4.5, 5.0])  # uneven, so the midpoint is checked
    y = np.linspace(-2.0, 2.0, ny)
    z = wall_x(ny, nx, j0=4, i0=3, height=1.5)
    m = cliff_arrays(surface(z[None], x, y))
    assert set(m) == set(KEYS)
    assert m["cliff_max_jump"].shape == (1,)
    assert m["cliff_max_jump"][0] == pytest.approx(1.56)
    assert m["cliff_wall_x"][0] == pytest.approx(3.0)  # (2 + 4) / 2
    assert m["cliff_wall_y"][0] == pytest.approx(y[3])
    assert m["cliff_nonfinite"][0] == 0
    # no gradient maps: the gradient metrics are undefined
    for key in ("cliff_max_grad", "cliff_max_grad_x", "cliff_max_grad_y", "cliff_share"):
        assert np.isnan(m[key][0])


def test_step_along_y_gives_its_height_and_midpoint():
    ny, nx = 6, 4
    x = np.linspace(-3.0, 3.0, nx)
    y = np.array([0.0, 0.1, 0.3, 0.7, 1.5, 3.1])
    z = wall_y(ny, nx, i0=3, j0=2, height=-2.0)  # a drop
    m = cliff_arrays(surface(z[None], x, y))
    assert m["cliff_max_jump"][0] == pytest.approx(2.05 - 0.02)
    assert m["cliff_wall_x"][0] == pytest.approx(x[2])
    assert m["cliff_wall_y"][0] == pytest.approx(0.5)  # (0.3 + 0.7) / 2


def test_pure_ramp_jump_is_the_steeper_neighbour_difference():
    m = cliff_arrays(surface(ramp(4, 5, slope_x=0.3, slope_y=0.1)[None]))
    assert m["cliff_max_jump"][0] == pytest.approx(0.3)
    m = cliff_arrays(surface(ramp(4, 5, slope_x=0.1, slope_y=-0.4)[None]))
    assert m["cliff_max_jump"][0] == pytest.approx(0.4)
    flat = cliff_arrays(surface(np.full((1, 3, 3), 0.25)))
    assert flat["cliff_max_jump"][0] == 0.0


def test_metrics_per_length_follow_their_own_panel():
    ny, nx = 4, 6
    x = np.linspace(0.0, 5.0, nx)
    y = np.linspace(-1.0, 1.0, ny)
    z = np.stack(
        [
            wall_x(ny, nx, j0=2, i0=1, height=0.5),
            wall_y(ny, nx, i0=2, j0=4, height=5.0),
            wall_x(ny, nx, j0=5, i0=0, height=-50.0),
        ]
    )
    m = cliff_arrays(surface(z, x, y, lengths=[5, 10, 20]))
    np.testing.assert_allclose(m["cliff_max_jump"], [0.56, 5.07, 50.04])
    np.testing.assert_allclose(m["cliff_wall_x"], [1.5, x[4], 4.5])
    np.testing.assert_allclose(m["cliff_wall_y"], [y[1], (y[1] + y[2]) / 2, y[0]])
    assert m["cliff_nonfinite"].tolist() == [0, 0, 0]


# ---------------------------------------------------------------- gradient norm and share


def test_max_grad_location_and_share_above_threshold():
    ny, nx = 3, 4
    x = np.array([10.0, 11.0, 12.0, 13.0])
    y = np.array([-1.0, 0.0, 1.0])
    gn = np.arange(12, dtype=np.float64).reshape(1, ny, nx)  # 0..11
    gn[0, 0, 1] = 40.0  # the steepest cell at (x[1], y[0])
    s = surface(ramp(ny, nx)[None], x, y, extra={"grad_norm": gn})
    m = cliff_arrays(s, threshold=5.5)
    assert m["cliff_max_grad"][0] == 40.0
    assert (m["cliff_max_grad_x"][0], m["cliff_max_grad_y"][0]) == (11.0, -1.0)
    # values > 5.5: 6, 7, 8, 9, 10, 11 and 40 -> 7 of 12
    assert m["cliff_share"][0] == pytest.approx(7 / 12)
    # "exceeds": a cell exactly at the threshold does not count
    assert cliff_arrays(s, threshold=11.0)["cliff_share"][0] == pytest.approx(1 / 12)
    assert cliff_arrays(s, threshold=100.0)["cliff_share"][0] == 0.0
    assert cliff_arrays(s, threshold=1e-9)["cliff_share"][0] == pytest.approx(11 / 12)


def test_share_default_threshold_is_one():
    gn = np.array([[[0.5, 1.0], [1.5, 3.0]]])
    m = cliff_arrays(surface(np.zeros((1, 2, 2)), extra={"grad_norm": gn}))
    assert m["cliff_share"][0] == pytest.approx(0.5)


# ---------------------------------------------------------------- non-finite cells


def test_nan_and_inf_cells_are_ignored_and_counted():
    ny, nx = 5, 6
    x = np.linspace(0.0, 1.0, nx)
    y = np.linspace(0.0, 1.0, ny)
    z = np.stack([wall_x(ny, nx, j0=3, i0=1, height=0.7), ramp(ny, nx)])  # wall between x[2], x[3]
    z[0, 2, 2] = np.nan
    z[0, 4, 5] = np.inf  # isolated cells: their jumps are non-finite and must be left out
    z[0, 0, 0] = -np.inf
    gn = np.ones((2, ny, nx))
    gn[0, 3, 1] = 9.0
    gn[0, 2, 2] = np.nan
    gn[0, 0, 4] = np.inf
    gn[1] = np.nan  # a panel with no finite gradient at all
    m = cliff_arrays(surface(z, x, y, extra={"grad_norm": gn}), threshold=2.0)
    assert m["cliff_nonfinite"].tolist() == [3, 0]
    assert m["cliff_max_jump"][0] == pytest.approx(0.76)
    assert (m["cliff_wall_x"][0], m["cliff_wall_y"][0]) == pytest.approx(((x[2] + x[3]) / 2, y[1]))
    assert m["cliff_max_grad"][0] == 9.0
    assert (m["cliff_max_grad_x"][0], m["cliff_max_grad_y"][0]) == (x[1], y[3])
    assert m["cliff_share"][0] == pytest.approx(1 / 28)  # 28 finite cells, one above 2
    assert np.isnan(m["cliff_max_grad"][1]) and np.isnan(m["cliff_share"][1])
    assert m["cliff_max_jump"][1] == pytest.approx(0.02)


def test_all_nan_panel_has_undefined_metrics():
    z = np.stack([np.full((3, 3), np.nan), ramp(3, 3)])
    m = cliff_arrays(surface(z))
    assert m["cliff_nonfinite"].tolist() == [9, 0]
    assert np.isnan(m["cliff_max_jump"][0]) and np.isnan(m["cliff_wall_x"][0])
    assert m["cliff_max_jump"][1] == pytest.approx(0.02)


def test_neighbouring_inf_cells_give_no_warning():
    z = ramp(3, 4)[None].copy()
    z[0, 1, 1:3] = np.inf  # two neighbouring overflowed cells
    m = cliff_arrays(surface(z))  # filterwarnings=error turns the warning into a failure
    assert m["cliff_nonfinite"][0] == 2
    assert m["cliff_max_jump"][0] == pytest.approx(0.02)


# ---------------------------------------------------------------- the table


def test_cliff_table_has_one_header_and_one_row_per_length():
    z = np.stack([ramp(3, 4), ramp(3, 4) * 2, ramp(3, 4) * 3])
    gn = np.abs(z) + 0.5
    s = surface(z, lengths=[7, 70, 700], extra={"grad_norm": gn})
    m = ls.cliff_metrics(s, threshold=2.5)
    table = ls.cliff_table(s, m, threshold=2.5)
    lines = table.splitlines()
    assert len(lines) == 4
    assert "2.5" in lines[0] and "u" in lines[0] and "v" in lines[0]
    assert [int(line.split()[0]) for line in lines[1:]] == [7, 70, 700]
    assert not table.endswith("\n")


def test_cliff_table_without_grad_maps_or_finite_cells():
    z = np.stack([np.full((2, 3), np.nan), ramp(2, 3)])
    s = surface(z, lengths=[3, 4])
    table = ls.cliff_table(s, ls.cliff_metrics(s))
    lines = table.splitlines()
    assert len(lines) == 3
    assert lines[1].split()[0] == "3" and lines[1].split()[-1] == "6"  # 6 non-finite cells
    assert lines[2].split()[-1] == "0"


# ---------------------------------------------------------------- the CLI sweep

SWEEP = [
    "--cell",
    "pascanu",
    "--len",
    "1,50",
    "--grad",
    "--xrange",
    "4.999:5.001",
    "--yrange",
    "-2.7:-2.5",
    "--res",
    "3,401",
    "--dtype",
    "float64",
    "--quiet",
]


def test_cli_grad_sweep_writes_maps_metrics_and_cliff_figure(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main([*SWEEP, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    stem = "pascanu_pascanu_w-b_L1-50"
    files = sorted(os.listdir(out))
    assert files == sorted(stem + ext for ext in (".npz", ".png", ".html", "_cliffs.png"))
    lines = captured.out.splitlines()
    header = next(k for k, line in enumerate(lines) if "max |grad|" in line)
    assert [line.split()[0] for line in lines[header + 1 : header + 3]] == ["1", "50"]

    with np.load(out / (stem + ".npz"), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    assert arrays["loss"].shape == (2, 401, 3)
    for key in ("grad_norm", "grad_x", "grad_y"):
        assert arrays[key].shape == arrays["loss"].shape
        assert np.isfinite(arrays[key]).all()
    for key in KEYS:
        assert arrays[key].shape == (2,)
    g = arrays["cliff_max_grad"]
    assert g[1] > 100 * g[0]
    assert arrays["cliff_nonfinite"].tolist() == [0, 0]
    # the stored maps are the derivatives along w and b (closed form, independent)
    y, x = arrays["y"], arrays["x"]
    for i in (0, 137, 400):
        assert arrays["grad_y"][1, i, 1] == pytest.approx(
            pascanu_grad(float(x[1]), float(y[i]), 50)[2], rel=1e-6, abs=1e-12
        )
    np.testing.assert_allclose(arrays["grad_norm"], np.hypot(arrays["grad_x"], arrays["grad_y"]), rtol=1e-12)
    # max gradient and its location agree with the stored map
    k = np.unravel_index(np.argmax(arrays["grad_norm"][1]), (401, 3))
    assert g[1] == arrays["grad_norm"][1][k]
    assert (arrays["cliff_max_grad_x"][1], arrays["cliff_max_grad_y"][1]) == (x[k[1]], y[k[0]])
    # the wall of Pascanu's map at w ~ 5, T = 50, is near b = -2.612
    assert abs(arrays["cliff_wall_y"][1] - (-2.612)) < 0.002


def test_cli_threshold_sets_the_share(tmp_path, capsys):
    base = [
        "--cell",
        "pascanu",
        "--len",
        "30",
        "--grad",
        "--xrange",
        "4.9:5.1",
        "--yrange",
        "-2.7:-2.5",
        "--res",
        "3,41",
        "--dtype",
        "float64",
        "--quiet",
        "--name",
        "t",
    ]
    shares = {}
    for thr in ("0.001", "1e9"):
        out = tmp_path / thr
        assert cli.main([*base, "--threshold", thr, "--out", str(out)]) == 0
        with np.load(out / "t.npz", allow_pickle=False) as f:
            shares[thr] = float(f["cliff_share"][0])
            expected = np.count_nonzero(f["grad_norm"][0] > float(thr)) / f["grad_norm"][0].size
        assert shares[thr] == pytest.approx(expected)
    capsys.readouterr()
    assert shares["1e9"] == 0.0 and shares["0.001"] > 0.5


def test_cli_without_grad_has_nan_gradient_metrics(tmp_path, capsys):
    out = tmp_path / "o"
    args = ["--cell", "pascanu", "--len", "5", "--res", "3", "--quiet", "--name", "n", "--out", str(out)]
    assert cli.main(args) == 0
    capsys.readouterr()
    with np.load(out / "n.npz", allow_pickle=False) as f:
        assert "grad_norm" not in f.files
        assert np.isnan(f["cliff_max_grad"]).all()
        assert np.isfinite(f["cliff_max_jump"]).all()
    assert not (out / "n_cliffs.png").exists()  # a single length is not a sweep
