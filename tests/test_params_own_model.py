"""A user's own recurrent network, of any size, sliced: grids against torch.nn with copied weights on
both engines, checkpoints and modules of any size, data of I features, state_dict names as axes,
filter normalization per row, and every bad input in one line."""

import os

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import vector_to_parameters

import landscape as ls
from landscape import slice as cli
from landscape.backends import loss_and_grad, losses
from landscape.cells import get_cell
from landscape.engine import fused
from landscape.evaluate import evaluate
from landscape.planes import axis_plane, filter_rows, random_plane
from landscape.tasks import TaskData

if not fused.available():
    if os.environ.get("LANDSCAPE_REQUIRE_FUSED"):
        pytest.fail(f"the fused kernel must build here: {fused.unavailable_reason()}", pytrace=False)
    pytest.skip(f"no fused kernel: {fused.unavailable_reason()}", allow_module_level=True)

MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
SIZES = [("lstm", 3, 4, 1), ("gru", 1, 3, 2), ("rnn", 2, 5, 2), ("lstm", 1, 2, 3)]  # (cell, I, H, L)
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=2e-4, atol=2e-5)}
BACKENDS = ["reference", "fused"]


def torch_model(name, I, H, L, K=1, seed=0, batch_first=True):
    torch.manual_seed(seed)
    return MODULES[name](I, H, num_layers=L, batch_first=batch_first).double(), nn.Linear(H, K).double()


def torch_losses(name, I, H, L, thetas, x, y, K=1):
    """Loss and accuracy of each flat vector, by torch.nn: the vector copied into the modules'
    parameters() in their own order, the logit of the last step's top state."""
    out = []
    rnn, head = torch_model(name, I, H, L, K)
    for th in thetas:
        vector_to_parameters(th.to(torch.float64), list(rnn.parameters()) + list(head.parameters()))
        with torch.no_grad():
            z = head(rnn(x if x.ndim == 3 else x[..., None])[0][:, -1])  # (N, K)
        if K == 1:
            loss = nn.functional.binary_cross_entropy_with_logits(z[:, 0], y)
            acc = ((z[:, 0] > 0) == (y > 0.5)).double().mean()
        else:
            loss = nn.functional.cross_entropy(z, y.long())
            acc = (z.argmax(1) == y.long()).double().mean()
        out.append((float(loss), float(acc)))
    return np.array(out)


def data(I, N=23, T=7, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, T, I, generator=gen, dtype=torch.float64)
    y = (x[:, 0, 0] > 0).double()
    return TaskData(x, y, T, "bce")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}-I{s[1]}H{s[2]}L{s[3]}")
def test_a_random_plane_of_any_size_is_torch_nn_at_every_point(size, backend, dtype):
    name, I, H, L = size
    cell = get_cell(name, hidden=H, inputs=I, layers=L)
    rnn, head = torch_model(name, I, H, L, seed=3)
    found, theta = ls.from_modules(rnn, head)
    assert found == cell
    d = data(I)
    plane = random_plane(theta, cell=cell, res=(3, 2), xrange=(-0.7, 0.7), yrange=(-0.5, 0.9), seed=2)
    r = evaluate(cell, d, plane, dtype=dtype, backend=backend)
    want = torch_losses(name, I, H, L, plane.points(0, 6), d.x, d.y)
    np.testing.assert_allclose(r.loss.reshape(-1), want[:, 0], **TOL[dtype])
    np.testing.assert_allclose(r.accuracy.reshape(-1), want[:, 1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_softmax_outputs_and_a_module_holding_its_parts(backend):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(2, 3, num_layers=2)  # batch_first=False: the weights are the same
            self.out = nn.Linear(3, 2)

    torch.manual_seed(0)
    net = Net().double()
    cell, theta = ls.from_modules(net)
    assert (cell.name, cell.head, cell.hidden, cell.inputs, cell.layers) == ("gru", "softmax2", 3, 2, 2)
    d = data(2)
    got = losses(cell, d, torch.stack([theta, 0.5 * theta]).to(torch.float64), backend=backend)
    want = torch_losses("gru", 2, 3, 2, [theta, 0.5 * theta], d.x, d.y, K=2)
    np.testing.assert_allclose(got[0].numpy(), want[:, 0], rtol=1e-10)
    np.testing.assert_allclose(got[1].numpy(), want[:, 1])


def test_gradients_of_a_sized_model_match_finite_differences():
    cell = get_cell("lstm", hidden=3, inputs=2, layers=2)
    rnn, head = torch_model("lstm", 2, 3, 2, seed=5)
    _, theta = ls.from_modules(rnn, head)
    d = data(2, N=11, T=5)
    for backend in BACKENDS:
        _, _, g = loss_and_grad(cell, d, theta[None], backend=backend)
        eps, k = 1e-6, torch.arange(0, cell.n_params, 7)
        for i in k.tolist():
            e = torch.zeros_like(theta)
            e[i] = eps
            fd = (losses(cell, d, theta + e)[0] - losses(cell, d, theta - e)[0]) / (2 * eps)
            assert abs(float(g[0, i]) - float(fd)) < 1e-7, (backend, cell.param_names[i])


def test_axis_planes_name_state_dict_scalars_and_one_units_short_names():
    cell = get_cell("lstm", hidden=4, layers=2)
    theta = torch.arange(cell.n_params, dtype=torch.float64)
    plane = axis_plane(cell, theta, x="weight_hh_l1[5,2]", y="b_hh_f", res=(2, 2))
    ix = [n for n in cell.param_names].index("weight_hh_l1[5,2]")
    iy = [n for n in cell.param_names].index("bias_hh_l0[4]")  # the forget gate of unit 0
    pts = plane.points(0, 4)
    moved = (pts != theta).any(0).nonzero().reshape(-1).tolist()
    assert moved == sorted([ix, iy])
    assert pts[:, ix].tolist() == [plane.x[0], plane.x[1]] * 2
    one = get_cell("gru")
    assert one.index("weight_hh_l0[2,0]") == one.param_names.index("w_hh_n")


def test_filter_normalization_is_per_row_of_every_weight_matrix():
    cell = get_cell("gru", hidden=4, inputs=3)
    rnn, head = torch_model("gru", 3, 4, 1, seed=2)
    _, theta = ls.from_modules(rnn, head)
    plane = random_plane(theta, cell=cell, seed=4)
    k = 0
    for _, key, shape in cell.tensors:
        n = int(np.prod(shape))
        rows = shape[0] if len(shape) == 2 else n
        for d in (plane.d1, plane.d2):
            got = d[k : k + n].reshape(rows, -1).norm(dim=1)
            want = theta[k : k + n].reshape(rows, -1).norm(dim=1)
            if d is plane.d1:  # d2 is orthogonalized after normalization
                np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=key)
        k += n
    assert len(set(filter_rows(cell, cell.n_params).tolist())) == sum(
        s[0] for _, _, s in cell.tensors if len(s) == 2
    ) + sum(s[0] for _, _, s in cell.tensors if len(s) == 1)


def test_checkpoints_of_any_size_round_trip_and_say_their_size(tmp_path):
    rnn, head = torch_model("lstm", 3, 8, 2, seed=1)
    path = str(tmp_path / "mine.pt")
    torch.save({"cell": "lstm", "rnn": rnn.state_dict(), "head": head.state_dict()}, path)
    cell, theta = ls.read_checkpoint(path)
    assert (cell.hidden, cell.inputs, cell.layers) == (8, 3, 2)
    assert torch.equal(theta, torch.cat([p.reshape(-1) for p in [*rnn.parameters(), *head.parameters()]]))
    assert torch.equal(ls.load_checkpoint(path, cell), theta)
    with pytest.raises(ls.InputError, match="8 units, 3 inputs, 2 layers.*1 unit"):
        ls.load_checkpoint(path, "lstm")
    out = str(tmp_path / "back.pt")
    ls.save_checkpoint(out, cell, theta)
    assert torch.allclose(ls.read_checkpoint(out)[1], theta.float().double())
    r2, h2 = ls.to_modules(cell, theta)
    assert r2.hidden_size == 8 and r2.num_layers == 2
    assert torch.equal(r2.weight_hh_l1.double(), rnn.weight_hh_l1)


def test_the_command_slices_a_users_checkpoint_on_data_of_three_features(tmp_path, capsys):
    rnn, head = torch_model("lstm", 3, 8, 1, seed=7)
    ck = tmp_path / "net.pt"
    torch.save({"cell": "lstm", "rnn": rnn.state_dict(), "head": head.state_dict()}, ck)
    d = data(3, N=40, T=12)
    np.savez(tmp_path / "d.npz", x=d.x.numpy(), y=d.y.numpy())
    args = [
        "--quiet",
        "--cell",
        "lstm",
        "--center",
        str(ck),
        "--data",
        str(tmp_path / "d.npz"),
        "--len",
        "12",
        "--plane",
        "random",
        "--res",
        "3",
        "--dtype",
        "float64",
        "--out",
        str(tmp_path),
        "--format",
        "png",
        "--name",
        "own",
    ]
    assert cli.main(args) == 0
    with np.load(tmp_path / "own.npz", allow_pickle=False) as f:
        loss = f["loss"]
    want = torch_losses("lstm", 3, 8, 1, [ls.from_modules(rnn, head)[1]], d.x, d.y)[0, 0]
    assert abs(loss[0, 1, 1] - want) < 1e-10  # the centre of the plane is the user's model
    capsys.readouterr()


BAD = [
    (["--cell", "lstm", "--center", "{ck}", "--inputs", "2", "--data", "{d3}"], ["--inputs 2"]),
    (["--cell", "lstm", "--center", "{ck}", "--data", "{d2}"], ["2 feature", "takes 3"]),
    (["--cell", "lstm", "--units", "4", "--data", "{d3}", "--inputs", "2"], ["--inputs 2"]),
    (["--cell", "gru", "--center", "{ck}"], ["'lstm'", "'gru'"]),
]


@pytest.mark.parametrize("args,words", BAD, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_models_and_data_get_one_line_and_exit_2(tmp_path, capsys, args, words):
    rnn, head = torch_model("lstm", 3, 4, 1)
    torch.save({"cell": "lstm", "rnn": rnn.state_dict(), "head": head.state_dict()}, tmp_path / "ck.pt")
    for I in (2, 3):
        d = data(I, N=8, T=6)
        np.savez(tmp_path / f"d{I}.npz", x=d.x.numpy(), y=d.y.numpy())
    names = dict(ck=tmp_path / "ck.pt", d2=tmp_path / "d2.npz", d3=tmp_path / "d3.npz")
    out = tmp_path / "out"
    argv = [a.format(**names) for a in args] + ["--quiet", "--len", "6", "--res", "2", "--out", str(out)]
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    assert not out.exists() or not any(out.iterdir())


def test_modules_that_are_not_supported_are_named():
    cases = [
        ((nn.LSTM(2, 3, bidirectional=True), nn.Linear(6, 1)), "bidirectional"),
        ((nn.LSTM(2, 3, proj_size=2), nn.Linear(2, 1)), "proj_size"),
        ((nn.RNN(2, 3, nonlinearity="relu"), nn.Linear(3, 1)), "relu"),
        ((nn.GRU(2, 3), nn.Linear(4, 1)), "Linear(4, 1)"),
        ((nn.GRU(2, 3), nn.Linear(3, 5)), "Linear(3, 5)"),
        ((nn.GRU(2, 3), nn.Linear(3, 1), nn.Linear(1, 1)), "found modules"),
        ((nn.Sequential(nn.Conv1d(1, 1, 1), nn.Linear(3, 1)),), "Conv1d"),
        ((nn.GRU(2000, 1), nn.Linear(1, 1)), "inputs 2000"),
    ]
    for mods, words in cases:
        with pytest.raises(ls.InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
            ls.from_modules(*mods)


def test_data_of_several_features_is_checked_against_the_model():
    cell = get_cell("rnn", hidden=2, inputs=3)
    with pytest.raises(ls.InputError, match="2 feature.*takes 3"):
        losses(cell, data(2), torch.zeros(cell.n_params))
    with pytest.raises(ls.InputError, match="features"):
        TaskData(torch.zeros(4, 5, 0), torch.zeros(4), 5, "bce")
    one = TaskData(torch.zeros(4, 5, 1), torch.zeros(4), 5, "bce")
    assert one.x.shape == (4, 5) and one.features == 1


def test_training_models_of_several_features_and_layers_is_the_same_on_both_engines():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 8, 3, generator=gen, dtype=torch.float64)
    y = (x[:, 0, 1] > 0).double()
    datas = [TaskData(x[:, :n], y, n, "bce") for n in (4, 8)]
    cell = get_cell("lstm", hidden=3, inputs=3, layers=2)
    runs = [
        ls.train.train_ensemble(
            cell, datas, repeats=2, epochs=2, batch=8, backend=b, dtype=torch.float64, progress=False
        )
        for b in BACKENDS
    ]
    assert [r.config["backend"] for r in runs] == BACKENDS
    assert runs[0].theta.shape == (4, cell.n_params)
    assert float((runs[0].theta - runs[1].theta).abs().max()) < 1e-12
    assert float((runs[0].theta - runs[0].theta0).abs().max()) > 1e-3  # it trained
