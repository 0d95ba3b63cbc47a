"""Interpolation between models: the line from A to B (Goodfellow et al. 2015) and the plane
through A, B and C, checked against torch.nn with each model's weights copied in (the line's
and the plane's grid points at A, B and C are the models themselves), their geometry, the
command line, the line's figures and explorer, and bad input in one line."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import vector_to_parameters

import landscape as ls
from landscape import render
from landscape import slice as cli
from landscape.evaluate import evaluate
from landscape.figures.interactive import interactive_figure
from landscape.planes import line_plane, through_plane
from landscape.tasks import TaskData

from harness import run_cli
from references import torch_loss


def run(argv, capsys):
    return run_cli(cli.main, argv, capsys)


def run_render(argv, capsys):
    return run_cli(render.main, argv, capsys)


def lstm_models(n=3, I=3, H=4):
    """n torch.nn LSTM(I, H) + Linear(H, 1) models (float64) and their flat vectors."""
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        rnn, head = nn.LSTM(I, H, batch_first=True).double(), nn.Linear(H, 1).double()
        out.append(
            (rnn, head, torch.cat([p.detach().reshape(-1) for p in [*rnn.parameters(), *head.parameters()]]))
        )
    return out


def by_torch(rnn, head, x, y):
    with torch.no_grad():
        z = head(rnn(x)[0][:, -1])[:, 0]
    return float(nn.functional.binary_cross_entropy_with_logits(z, y))


def small_data(I=3, N=19, T=6):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(N, T, I, generator=gen, dtype=torch.float64)
    return TaskData(x, (x[:, 0, 0] > 0).double(), T, "bce")


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_line_ends_are_the_models_themselves(backend):
    (ra, ha, a), (rb, hb, b) = lstm_models(2)
    cell, d = ls.get_cell("lstm", hidden=4, inputs=3), small_data()
    plane = line_plane(a, b, cell=cell)
    assert plane.shape == (1, 61) and plane.x[10] == 0.0 and plane.x[50] == 1.0
    loss = evaluate(cell, d, plane, dtype=torch.float64, backend=backend).loss[0]
    assert loss[10] == pytest.approx(by_torch(ra, ha, d.x, d.y), rel=1e-10)
    assert loss[50] == pytest.approx(by_torch(rb, hb, d.x, d.y), rel=1e-10)
    # a point between: the model whose weights are the mixture, copied into torch.nn
    mid = 0.5 * a + 0.5 * b
    rm, hm, _ = lstm_models(1)[0]
    vector_to_parameters(mid, [*rm.parameters(), *hm.parameters()])
    assert loss[30] == pytest.approx(by_torch(rm, hm, d.x, d.y), rel=1e-10)


def test_plane_through_three_models():
    (ra, ha, a), (rb, hb, b), (rc, hc, c) = lstm_models(3)
    cell, d = ls.get_cell("lstm", hidden=4, inputs=3), small_data()
    plane = through_plane(a, b, c, res=(25, 21), cell=cell)
    assert float(plane.d1 @ plane.d2) == pytest.approx(0.0, abs=1e-12)  # distances drawn true
    (na, *pa), (nb, *pb), (nc, *pc) = plane.marks
    assert (na, pa, nb, pb) == ("A", [0.0, 0.0], "B", [1.0, 0.0])
    C = plane.origin + pc[0] * plane.d1 + pc[1] * plane.d2
    assert torch.allclose(C, c, rtol=0, atol=1e-12)
    a_, b_, off = plane.project(torch.stack([a, b, c]))
    assert np.allclose(a_.numpy(), [0, 1, pc[0]]) and np.allclose(b_.numpy(), [0, 0, 1])
    assert float(off.max()) < 1e-10
    grid = evaluate(cell, d, plane, dtype=torch.float64, backend="reference").loss
    i0, i1 = list(plane.y).index(0.0), list(plane.y).index(1.0)
    j0, j1 = list(plane.x).index(0.0), list(plane.x).index(1.0)
    assert grid[i0, j0] == pytest.approx(by_torch(ra, ha, d.x, d.y), rel=1e-10)
    assert grid[i0, j1] == pytest.approx(by_torch(rb, hb, d.x, d.y), rel=1e-10)
    del i1  # C's alpha is not a grid point in general; its vector is checked above


def test_bad_interpolations_are_refused():
    (_, _, a), (_, _, b) = lstm_models(2)
    with pytest.raises(ls.InputError, match="same point"):
        line_plane(a, a.clone())
    with pytest.raises(ls.InputError, match="one line"):
        through_plane(a, b, 2 * b - a)
    with pytest.raises(ls.InputError, match="parameters"):
        line_plane(a, b[:-1])
    with pytest.raises(ls.InputError, match="parameters"):
        line_plane(a, b, cell=ls.get_cell("lstm", hidden=3, inputs=3))


def checkpoints(tmp_path, cell="rnn", seeds=(1, 2)):
    c = ls.get_cell(cell)
    paths = []
    for s in seeds:
        ls.save_checkpoint(str(tmp_path / f"m{s}.pt"), c, ls.init_params(c, seed=s))
        paths.append(str(tmp_path / f"m{s}.pt"))
    return c, paths


@pytest.mark.slow
def test_command_line_runs_from_the_centre_to_the_model(tmp_path, capsys):
    cell, (b,) = checkpoints(tmp_path, seeds=(1,))
    out = tmp_path / "out"
    code, stdout, err = run(
        [
            "--plane",
            "line",
            "--to",
            b,
            "--len",
            "8,12",
            "--samples",
            "40",
            "--quiet",
            "--dtype",
            "float64",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    assert "wall at alpha" in stdout and "(alpha, " not in stdout  # the cliff table of a line
    s = ls.load_surface(str(out / "rnn_latching_A-B_L8-12.npz"))
    assert s.loss.shape == (2, 1, 61) and s.is_line and s.marks() == [("A", 0.0, 0.0), ("B", 1.0, 0.0)]
    a = ls.init_params(cell, seed=0)  # the default centre: torch.nn's init for --seed 0
    theta_b = ls.load_checkpoint(b, cell)
    for k, n in enumerate((8, 12)):
        d = ls.make_data("latching", n, n=40)
        assert s.loss[k, 0, 10] == pytest.approx(torch_loss("rnn", a, d.x, d.y)[0], rel=1e-10)
        assert s.loss[k, 0, 50] == pytest.approx(torch_loss("rnn", theta_b, d.x, d.y)[0], rel=1e-10)
        assert s.accuracy[k, 0, 50] == pytest.approx(torch_loss("rnn", theta_b, d.x, d.y)[1])
    assert (out / "rnn_latching_A-B_L8-12.png").exists() and (out / "rnn_latching_A-B_L8-12.html").exists()
    # the line's figures: line, slices along alpha, grad-free cliffs; a plane's figures are refused
    code, stdout, err = run_render(
        [
            str(out / "rnn_latching_A-B_L8-12.npz"),
            "--kind",
            "line,slices,cliffs",
            "--out",
            str(tmp_path / "r"),
        ],
        capsys,
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "r").iterdir() if p.suffix == ".png") == [
        "rnn_latching_A-B_L8-12_cliffs.png",
        "rnn_latching_A-B_L8-12_line.png",
        "rnn_latching_A-B_L8-12_slices.png",
    ]
    code, _, err = run_render(
        [str(out / "rnn_latching_A-B_L8-12.npz"), "--kind", "heatmap", "--out", str(tmp_path / "r2")], capsys
    )
    assert code == 2 and len(err.splitlines()) == 1 and "line" in err, err
    # the explorer of a line: the loss and the accuracy of every length as lines on two axes
    fig = interactive_figure(s)
    kinds = {(t.type, t.yaxis) for t in fig.data}
    assert kinds == {("scatter", "y"), ("scatter", "y2")} and len(fig.data) == 4
    assert np.array_equal(np.asarray(fig.data[0].y, dtype=float), s.loss[0, 0])


def test_command_line_plane_through_three(tmp_path, capsys):
    _, (b, c) = checkpoints(tmp_path)
    out = tmp_path / "out"
    code, stdout, err = run(
        [
            "--plane",
            "through",
            "--to",
            f"{b},{c}",
            "--len",
            "6",
            "--samples",
            "30",
            "--res",
            "9,7",
            "--quiet",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    assert "model C lies at alpha" in stdout
    s = ls.load_surface(str(out / "rnn_latching_A-B-C_L6.npz"))
    assert s.loss.shape == (1, 7, 9) and [m[0] for m in s.marks()] == ["A", "B", "C"]


def test_goodfellow_line_from_the_initialization_to_the_trained_model(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(
        [
            "--plane",
            "line",
            "--center",
            "trained",
            "--epochs",
            "2",
            "--len",
            "6",
            "--samples",
            "40",
            "--res",
            "21",
            "--xrange",
            "0:1",
            "--dtype",
            "float64",
            "--quiet",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    s = ls.load_surface(str(out / "rnn_latching_A-B_L6.npz"))
    cell = ls.get_cell("rnn")
    trained = torch.from_numpy(s.trained_centers[0])  # the checkpoint keeps it in float32
    saved = ls.load_checkpoint(str(out / "rnn_latching_A-B_L6.pt"), cell)
    assert torch.allclose(saved, trained, rtol=1e-7, atol=0)
    d = ls.make_data("latching", 6, n=40)
    assert s.loss.shape == (1, 1, 21)
    assert s.loss[0, 0, -1] == pytest.approx(torch_loss("rnn", trained, d.x, d.y)[0], rel=1e-10)
    start = ls.init_params(cell, seed=0)  # where training began
    assert s.loss[0, 0, 0] == pytest.approx(torch_loss("rnn", start, d.x, d.y)[0], rel=1e-10)


BAD = [
    (["--plane", "line"], ["--to", "gives 0", "one model FILE"]),
    (["--plane", "through", "--to", "{b}"], ["--to", "gives 1", "two model FILEs"]),
    (["--plane", "axis", "--to", "{b}"], ["--to", "plane axis takes no models"]),
    (["--plane", "line", "--to", "{missing}"], ["no such file"]),
    (["--plane", "line", "--to", "{b},"], ["--to", "separated by commas"]),
    (["--plane", "line", "--to", "{lstm}"], ["holds a lstm model", "rnn model"]),
    (["--plane", "line", "--to", "{b}", "--start", "0.5,0"], ["--start", "line"]),
    (["--plane", "through", "--to", "{b},{b}"], ["one line"]),
    (["--cell", "lstm", "--units", "3", "--plane", "line", "--to", "{lstm}"], ["1 unit", "3 units"]),
]


@pytest.mark.parametrize("args,words", BAD, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_interpolations_get_one_line_and_exit_2(tmp_path, capsys, args, words):
    _, (b,) = checkpoints(tmp_path, seeds=(1,))
    ls.save_checkpoint(str(tmp_path / "lstm.pt"), ls.get_cell("lstm"), ls.init_params(ls.get_cell("lstm")))
    names = dict(b=b, lstm=str(tmp_path / "lstm.pt"), missing=str(tmp_path / "nope.pt"))
    out = tmp_path / "out"
    argv = [a.format(**names) for a in args] + ["--quiet", "--len", "4", "--samples", "8", "--out", str(out)]
    code, _, err = run(argv, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    assert not out.exists() or not any(out.iterdir())
