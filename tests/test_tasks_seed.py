"""Hochreiter & Schmidhuber's tasks against their 1997 specification (counts, marker positions,
target formula), and the readouts they are scored through (K-class softmax cross-entropy, squared
error, sequences of their own lengths) against torch.nn with copied weights."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import vector_to_parameters

import landscape as ls
from landscape import slice as cli
from landscape.backends import losses
from landscape.cells import get_cell
from landscape.tasks import TaskData, make_data


def test_longlag_2a_is_the_papers_two_sequences():
    p = 7
    d = make_data("longlag", p, n=40, seed=3)
    assert d.x.shape == (40, p, p + 1) and d.objective == "ce"
    sym = d.x.argmax(-1)  # (N, p): one symbol a step
    assert torch.all(d.x.sum(-1) == 1)  # one-hot
    assert torch.all(sym[:, 1:] == torch.arange(p - 1))  # a_1 .. a_{p-1} in order
    assert set(sym[:, 0].tolist()) == {p - 1, p}  # x = a_p or y = a_{p+1}
    assert torch.equal(d.y.long(), sym[:, 0])  # the target: the first symbol again
    assert int((d.y == p).sum()) == 20  # half start with y


def test_longlag_2b_draws_its_middle_from_a_1_to_a_p_minus_1():
    d = make_data("longlag-random", 30, n=200, symbols=5, seed=1)
    sym = d.x.argmax(-1)
    assert d.x.shape == (200, 30, 6)
    assert sym[:, 1:].min() == 0 and sym[:, 1:].max() == 3  # a_1 .. a_4, all of them drawn
    assert torch.equal(d.y.long(), sym[:, 0]) and set(sym[:, 0].tolist()) == {4, 5}
    assert len({tuple(r) for r in sym[:, 1:].tolist()}) > 150  # no local regularities
    with pytest.raises(ls.InputError, match="p = L"):
        make_data("longlag", 10, symbols=5)


def test_the_adding_problem_is_the_1997_definition():
    T, n = 100, 500
    d = make_data("adding", T, n=n, seed=2)
    assert d.objective == "mse" and d.x.shape == (n, T + T // 10, 2) and d.length == T + T // 10
    steps = d.steps
    assert int(steps.min()) >= T and int(steps.max()) <= T + T // 10 and len(set(steps.tolist())) > 5
    for i in range(n):
        v, m, s = d.x[i, :, 0], d.x[i, :, 1], int(steps[i])
        assert torch.all(d.x[i, s:] == 0)  # nothing past the sequence's end
        assert torch.all((v[:s] >= -1) & (v[:s] <= 1))
        ones = (m[:s] == 1.0).nonzero().reshape(-1).tolist()
        assert len(ones) == 2, ones
        i1, i2 = ones  # sorted positions; X_1 among the first ten, X_2 among the first T/2 - 1
        assert i1 < 10 and i2 < T // 2 - 1 + (1 if i2 > i1 and i1 >= T // 2 - 1 else 0)
        minus = set((m[:s] == -1.0).nonzero().reshape(-1).tolist())
        assert minus == {0, s - 1} - set(ones)
        assert set((m[:s] == 0).nonzero().reshape(-1).tolist()) == set(range(s)) - set(ones) - minus
        if 0 in ones:
            assert v[0] == 0  # a marked first pair has its value set to 0
        assert abs(float(d.y[i]) - (0.5 + (v[i1] + v[i2]) / 4)) < 1e-15
    assert d.tol == 0.04


def test_softmax_and_squared_error_readouts_are_torch_nn():
    torch.manual_seed(0)
    rnn, head = nn.LSTM(6, 3, batch_first=True).double(), nn.Linear(3, 6).double()
    d = make_data("longlag", 5, n=12, seed=1)
    cell = get_cell("lstm", head="softmax", classes=6, inputs=6, hidden=3)
    theta = torch.cat([p.reshape(-1) for p in [*rnn.parameters(), *head.parameters()]]).detach()
    got, acc = losses(cell, d, theta[None])
    with torch.no_grad():
        z = head(rnn(d.x)[0][:, -1])
    assert abs(float(got[0]) - float(nn.functional.cross_entropy(z, d.y.long()))) < 1e-12
    assert float(acc[0]) == float((z.argmax(1) == d.y.long()).double().mean())
    # one unit, K classes: the batched path with nn.GRU(6, 1)
    one = get_cell("gru", head="softmax", classes=6, inputs=6)
    g, lin = nn.GRU(6, 1, batch_first=True).double(), nn.Linear(1, 6).double()
    th = torch.cat([p.reshape(-1) for p in [*g.parameters(), *lin.parameters()]]).detach()
    with torch.no_grad():
        want = nn.functional.cross_entropy(lin(g(d.x)[0][:, -1]), d.y.long())
    assert abs(float(losses(one, d, th)[0]) - float(want)) < 1e-12


def test_sequences_of_their_own_lengths_end_where_they_end():
    """The adding problem's sequences differ in length: each sample's state is read at its own
    end, as torch.nn reads a sequence of that length alone."""
    d = make_data("adding", 20, n=9, seed=4)
    cell = get_cell("gru", head="linear", inputs=2, hidden=4, layers=2)
    torch.manual_seed(1)
    rnn, head = nn.GRU(2, 4, num_layers=2, batch_first=True).double(), nn.Linear(4, 1).double()
    theta = torch.cat([p.reshape(-1) for p in [*rnn.parameters(), *head.parameters()]]).detach()
    loss, acc = losses(cell, d, torch.stack([theta, 0.3 * theta]))
    for row, scale in enumerate((1.0, 0.3)):
        vector_to_parameters(scale * theta, list(rnn.parameters()) + list(head.parameters()))
        with torch.no_grad():
            z = torch.stack([head(rnn(d.x[i : i + 1, : int(d.steps[i])])[0][0, -1])[0] for i in range(9)])
        assert abs(float(loss[row]) - float(((z - d.y) ** 2).mean())) < 1e-12
        assert float(acc[row]) == float(((z - d.y).abs() < 0.04).double().mean())


def test_the_kernel_says_which_readouts_it_cannot_run():
    d = make_data("adding", 20, n=9)
    cell = get_cell("lstm", head="linear", inputs=2)
    with pytest.raises(ls.InputError, match="linear readout"):
        losses(cell, d, torch.zeros(1, cell.n_params), backend="fused")
    ok = losses(cell, d, torch.zeros(1, cell.n_params), backend="auto")  # auto takes the reference path
    assert torch.isfinite(ok[0]).all()


@pytest.mark.parametrize(
    "args,want",
    [
        (["--cell", "lstm", "--task", "longlag", "--len", "6"], "lstm_I7_longlag"),
        (
            ["--cell", "rnn", "--task", "longlag-random", "--symbols", "4", "--len", "3,8"],
            "rnn_I5_longlag-random",
        ),
        (["--cell", "gru", "--units", "2", "--task", "adding", "--len", "12"], "gru_I2_H2_adding"),
    ],
)
def test_the_command_slices_the_seeds_tasks(tmp_path, capsys, args, want):
    assert (
        cli.main(
            args + ["--quiet", "--res", "3", "--samples", "20", "--out", str(tmp_path), "--format", "png"]
        )
        == 0
    )
    (npz,) = tmp_path.glob("*.npz")
    assert npz.name.startswith(want)
    with np.load(npz, allow_pickle=False) as f:
        assert np.isfinite(f["loss"]).all() and np.isfinite(f["accuracy"]).all()
    capsys.readouterr()


@pytest.mark.parametrize(
    "args,words",
    [
        (["--task", "longlag", "--len", "5,10"], ["--len", "--symbols"]),
        (["--task", "adding", "--head", "logit", "--len", "20"], ["--head logit", "mse"]),
        (["--task", "latching", "--symbols", "3"], ["--symbols"]),
        (["--task", "longlag", "--len", "5", "--classes", "3"], ["--classes 3", "0 to 5"]),
        (["--head", "softmax"], ["--classes", "softmax head"]),
        (["--task", "adding", "--len", "4"], ["T >= 6"]),
        (["--task", "longlag", "--len", "5", "--inputs", "3"], ["--inputs 3", "6 of the longlag"]),
    ],
)
def test_bad_task_options_get_one_line(tmp_path, capsys, args, words):
    try:
        code = cli.main(
            ["--cell", "lstm", "--quiet", "--res", "2", "--samples", "8", "--out", str(tmp_path), *args]
        )
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    assert not any(tmp_path.iterdir())


def test_taskdata_of_the_new_objectives_is_checked():
    x = torch.zeros(4, 5)
    with pytest.raises(ls.InputError, match="class indices"):
        TaskData(x, torch.tensor([0.0, 1, -1, 2]), 5, "ce")
    with pytest.raises(ls.InputError, match="steps"):
        TaskData(x, torch.zeros(4), 5, "mse", torch.tensor([1, 2, 0, 5]))
    with pytest.raises(ls.InputError, match="tol"):
        TaskData(x, torch.zeros(4), 5, "mse", tol=float("nan"))


def test_one_step_of_training_on_the_adding_problem_is_torch_nns_gradient_step():
    """Sequences of their own lengths and the squared error, through training: one plain gradient
    step over the whole training split equals torch.nn's, each sequence read to its own end."""
    from landscape.train import make_splits, train_ensemble

    d = make_data("adding", 12, n=20, seed=5)
    cell = get_cell("gru", head="linear", inputs=2, hidden=3)
    res = train_ensemble(
        cell,
        [d],
        repeats=1,
        epochs=1,
        batch=64,
        lr=0.5,
        optimizer="sgd",
        seed=2,
        dtype=torch.float64,
        progress=False,
    )
    tr, _ = make_splits([d], 1, val_frac=0.2, seed=2)
    torch.manual_seed(0)
    rnn, head = nn.GRU(2, 3, batch_first=True).double(), nn.Linear(3, 1).double()
    params = list(rnn.parameters()) + list(head.parameters())
    vector_to_parameters(res.theta0[0], params)
    z = torch.stack([head(rnn(d.x[i : i + 1, : int(d.steps[i])])[0][0, -1])[0] for i in tr[0].tolist()])
    loss = ((z - d.y[tr[0]]) ** 2).mean()
    grads = torch.autograd.grad(loss, params)
    want = res.theta0[0] - 0.5 * torch.cat([g.reshape(-1) for g in grads])
    assert float((res.theta[0] - want).abs().max()) < 1e-12


def test_latching_trains_the_seed_tasks_and_judges_them_by_the_papers_criterion(tmp_path, capsys):
    import csv

    from landscape import latching

    args = [
        "--quiet",
        "--tasks",
        "longlag,adding",
        "--cells",
        "rnn,lstm",
        "--lengths",
        "6,8",
        "--samples",
        "40",
        "--repeats",
        "2",
        "--epochs",
        "2",
        "--out",
        str(tmp_path),
        "--name",
        "seeds",
    ]
    assert latching.main(args) == 0
    with open(tmp_path / "seeds.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2 * 2  # tasks x cells x lengths x repeats
    for r in rows:
        assert int(r["success"]) == int(float(r["val_right"]) == 1.0)
        assert 0 <= float(r["val_right"]) <= 1
    capsys.readouterr()


def test_right_fraction_is_the_papers_criterion_by_hand():
    """The long-lag criterion (every output's error below 0.25, i.e. the true class's probability
    above 0.75) and the adding problem's (|error| < 0.04), against torch.nn outputs."""
    from landscape.steps import right_fraction
    from landscape.train import _row_steps, _stack

    for task, head, K, I in (("longlag-random", "softmax", 5, 5), ("adding", "linear", None, 2)):
        d = make_data(task, 10, n=30, seed=3, symbols=4 if task != "adding" else None)
        cell = get_cell("lstm", head=head, classes=K, inputs=I, hidden=2)
        torch.manual_seed(4)
        rnn, lin = nn.LSTM(I, 2, batch_first=True).double(), nn.Linear(2, K or 1).double()
        with torch.no_grad():  # outputs that pass the criterion on some sequences and fail on others
            if head == "softmax":
                lin.bias.zero_()
                lin.bias[K - 1] = 2.5  # confident in y: right where the target is y, near the edge
                lin.weight.mul_(3)
            else:
                lin.weight.mul_(0.05)
                lin.bias.fill_(0.5)  # the targets' middle: some within 0.04 of it
        theta = torch.cat([p.reshape(-1) for p in [*rnn.parameters(), *lin.parameters()]]).detach()
        X, Y = _stack([d], torch.float64, "cpu")
        rows = torch.arange(30)[None]
        got = right_fraction(cell, theta[None], X, Y, rows, torch.tensor([d.length]), _row_steps([d], "cpu"))
        with torch.no_grad():
            steps = d.steps if d.steps is not None else torch.full((30,), d.length)
            z = torch.stack([lin(rnn(d.x[i : i + 1, : int(steps[i])])[0][0, -1]) for i in range(30)])
        if head == "softmax":
            err = (torch.softmax(z, -1) - nn.functional.one_hot(d.y.long(), K)).abs().max(-1).values
            want = (err < 0.25).double().mean()
        else:
            want = ((z[:, 0] - d.y).abs() < 0.04).double().mean()
        assert float(got[0]) == float(want), task
        assert 0 < float(want) < 1, (task, float(want))  # the criterion tells the sequences apart
