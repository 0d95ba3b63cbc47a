"""Targets at every step (N, T), as next-symbol tasks have them: the loss is the mean over samples
and steps of the readout of every step's state, checked against torch.nn with copied weights
(the readout applied to the LSTM's whole output sequence), finite differences of the gradient, the
command line on a data file, and the cases refused in one line."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import vector_to_parameters

import landscape as ls
from landscape import slice as cli
from landscape.backends import loss_and_grad, losses
from landscape.evaluate import evaluate
from landscape.planes import random_plane
from landscape.tasks import TaskData

from harness import run_cli

MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def next_symbol(N=11, T=7, K=4, seed=0):
    """One-hot symbols; the target at step t is the symbol at step t + 1 (the last: the first)."""
    gen = torch.Generator().manual_seed(seed)
    s = torch.randint(0, K, (N, T), generator=gen)
    x = nn.functional.one_hot(s, K).double()
    return x, torch.roll(s, -1, dims=1).double()


def by_torch(name, I, H, L, K, theta, x, y, head):
    rnn = MODULES[name](I, H, num_layers=L, batch_first=True).double()
    lin = nn.Linear(H, K).double()
    vector_to_parameters(theta.to(torch.float64), [*rnn.parameters(), *lin.parameters()])
    with torch.no_grad():
        z = lin(rnn(x)[0])  # (N, T, K): every step's output
    if head == "softmax":
        loss = nn.functional.cross_entropy(z.reshape(-1, K), y.reshape(-1).long())
        acc = (z.argmax(-1) == y.long()).double().mean()
    elif head == "linear":
        loss = ((z[..., 0] - y) ** 2).mean()
        acc = ((z[..., 0] - y).abs() < 0.04).double().mean()
    else:
        loss = nn.functional.binary_cross_entropy_with_logits(z[..., 0], y)
        acc = ((z[..., 0] > 0) == (y > 0.5)).double().mean()
    return float(loss), float(acc)


CASES = [("lstm", 3, 2, "softmax"), ("gru", 2, 1, "softmax"), ("rnn", 4, 2, "logit"), ("lstm", 1, 1, "logit")]


@pytest.mark.parametrize("name,H,L,head", CASES)
def test_every_step_is_scored_as_torch_nn_scores_it(name, H, L, head):
    K = 4
    x, s = next_symbol(K=K)
    y = s if head == "softmax" else (s > 1).double()
    classes = K if head == "softmax" else None
    cell = ls.get_cell(name, hidden=H, inputs=K, layers=L, head=head, classes=classes)
    data = TaskData(x, y, x.shape[1], cell.objective)
    assert data.per_step
    thetas = torch.randn(5, cell.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    loss, acc = losses(cell, data, thetas)
    for g in range(5):
        want = by_torch(name, K, H, L, cell.n_out, thetas[g], x, y, head)
        assert float(loss[g]) == pytest.approx(want[0], rel=1e-10)
        assert float(acc[g]) == pytest.approx(want[1], abs=1e-12)


def test_mse_at_every_step():
    x, s = next_symbol()
    y = torch.sin(s)
    cell = ls.get_cell("lstm", hidden=3, inputs=4, head="linear")
    data = TaskData(x, y, x.shape[1], "mse")
    th = torch.randn(cell.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    loss, _ = losses(cell, data, th[None])
    assert float(loss[0]) == pytest.approx(by_torch("lstm", 4, 3, 1, 1, th, x, y, "linear")[0], rel=1e-10)


def test_gradient_matches_finite_differences():
    x, s = next_symbol(N=6, T=5)
    cell = ls.get_cell("gru", hidden=2, inputs=4, head="softmax", classes=4)
    data = TaskData(x, s, 5, "ce")
    th = torch.randn(cell.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    _, _, grad = loss_and_grad(cell, data, th[None])
    grad = grad[0]
    eps = 1e-6
    for k in range(0, cell.n_params, 7):
        e = torch.zeros_like(th)
        e[k] = eps
        at = lambda v: float(losses(cell, data, v[None])[0][0])  # noqa: E731
        fd = at(th + e) - at(th - e)
        assert float(grad[k]) == pytest.approx(fd / (2 * eps), rel=1e-5, abs=1e-8)


def test_grid_takes_the_reference_path_and_the_kernel_says_why_not():
    x, s = next_symbol()
    y = (s > 1).double()
    cell = ls.get_cell("lstm", hidden=2, inputs=4)
    data = TaskData(x, y, x.shape[1], "bce")
    plane = random_plane(ls.init_params(cell), res=(3, 2), cell=cell)
    grid = evaluate(cell, data, plane, dtype=torch.float64, backend="auto")
    pts = plane.points(0, 6)
    want = [by_torch("lstm", 4, 2, 1, 1, p, x, y, "logit")[0] for p in pts]
    assert np.allclose(grid.loss.reshape(-1), want, rtol=1e-10, atol=0)
    with pytest.raises(ls.InputError, match="every step"):
        evaluate(cell, data, plane, dtype=torch.float64, backend="fused")


def run(argv, capsys):
    return run_cli(cli.main, argv, capsys)


def test_command_line_on_a_file_of_targets_per_step(tmp_path, capsys):
    x, s = next_symbol(N=20, T=9)
    np.savez(tmp_path / "d.npz", x=x.numpy(), y=s.numpy())
    out = tmp_path / "out"
    code, _, err = run(
        [
            "--cell",
            "gru",
            "--units",
            "3",
            "--head",
            "softmax",
            "--classes",
            "4",
            "--data",
            str(tmp_path / "d.npz"),
            "--len",
            "4,9",
            "--res",
            "3",
            "--dtype",
            "float64",
            "--quiet",
            "--out",
            str(out),
            "--plane",
            "random",
        ],
        capsys,
    )
    assert code == 0, err
    surf = ls.load_surface(next(str(p) for p in out.iterdir() if p.suffix == ".npz"))
    cell = ls.get_cell("gru", hidden=3, inputs=4, head="softmax", classes=4)
    centre = ls.init_params(cell, seed=0)
    for k, n in enumerate((4, 9)):  # length n: the first n steps and their n targets
        want = by_torch("gru", 4, 3, 1, 4, centre, x[:, :n], s[:, :n], "softmax")
        assert surf.loss[k, 1, 1] == pytest.approx(want[0], rel=1e-10)


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--center", "trained"], ["--center", "target per step"]),
        (["--data", "{short}"], ["y", "(N, T)"]),
    ],
)
def test_refused_in_one_line(tmp_path, capsys, extra, words):
    x, s = next_symbol(N=20, T=9)
    np.savez(tmp_path / "d.npz", x=x.numpy(), y=s.numpy())
    np.savez(tmp_path / "short.npz", x=x.numpy(), y=s[:, :5].numpy())
    names = dict(short=str(tmp_path / "short.npz"))
    argv = [
        "--cell",
        "gru",
        "--head",
        "softmax",
        "--classes",
        "4",
        "--data",
        str(tmp_path / "d.npz"),
        "--len",
        "4",
        "--res",
        "2",
        "--quiet",
        "--out",
        str(tmp_path / "out"),
    ]
    code, _, err = run(argv + [a.format(**names) for a in extra], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_per_step_data_check():
    x, s = next_symbol()
    with pytest.raises(ls.InputError, match="per step"):
        TaskData(x, s[:, :3], x.shape[1], "ce")
    with pytest.raises(ls.InputError, match="per step"):
        TaskData(x, s, x.shape[1], "ce", steps=torch.full((x.shape[0],), 3))
