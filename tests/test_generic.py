"""The generic fallback, ``slice_module``: any nn.Module through torch.func, vectorized where the
module allows and point by point where it does not, against setting each point's weights into a
copy of the module by hand; and the recognized recurrent models, which agree with the engine."""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import vector_to_parameters

import landscape as ls
from landscape.evaluate import evaluate
from landscape.tasks import TaskData


def by_hand(module, loss_fn, x, y, plane):
    """The per-point loop of other tools: a copy of the module, its weights set, a forward."""
    m = copy.deepcopy(module)
    out = np.empty(plane.shape[0] * plane.shape[1])
    with torch.no_grad():
        for k, p in enumerate(plane.points(0, len(out))):
            vector_to_parameters(p.to(torch.float64), m.parameters())
            out[k] = float(loss_fn(m(x), y))
    return out.reshape(plane.shape)


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3)
        self.out = nn.Linear(3, 1)

    def forward(self, x):  # (N, T, 2) -> (N,)
        return self.out(torch.tanh(self.conv(x.transpose(1, 2))).mean(-1))[:, 0]


@pytest.mark.parametrize("vectorize", [True, False])
def test_any_module_is_sliced_as_by_hand(vectorize):
    torch.manual_seed(0)
    net = Conv().double()
    x = torch.randn(20, 7, 2, dtype=torch.float64)
    y = (torch.rand(20) < 0.5).double()
    loss = nn.functional.binary_cross_entropy_with_logits
    theta = ls.module_vector(net)
    plane = ls.random_plane(theta, filters=ls.module_filters(net), res=(4, 3), seed=1)
    got = ls.slice_module(net, loss, x, y, plane, chunk=5, vectorize=vectorize)
    np.testing.assert_allclose(got, by_hand(net, loss, x, y, plane), rtol=1e-12)
    assert torch.equal(ls.module_vector(net), theta)  # the module is not changed


def test_an_lstm_module_falls_back_and_agrees_with_the_engine():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = nn.LSTM(3, 4, batch_first=True), nn.Linear(4, 1)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])[:, 0]

    torch.manual_seed(2)
    net = Net().double()
    x = torch.randn(15, 6, 3, dtype=torch.float64)
    y = (x[:, 0, 0] > 0).double()
    cell, theta = ls.from_modules(net)
    assert torch.equal(theta, ls.module_vector(net))  # the same flat vector either way
    plane = ls.random_plane(theta, cell=cell, res=(3, 3), seed=3)
    got = ls.slice_module(net, nn.functional.binary_cross_entropy_with_logits, x, y, plane)
    engine = evaluate(cell, TaskData(x, y, 6, "bce"), plane, dtype=torch.float64).loss
    np.testing.assert_allclose(got, engine, rtol=1e-10)


def test_filter_ids_and_bad_arguments():
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    ids = ls.module_filters(net)
    assert ids.tolist() == [0, 0, 0, 1, 1, 1, 2, 3, 4, 4, 5]  # two rows of 3, two biases, a row, a bias
    plane = ls.random_plane(ls.module_vector(net), filters=ids, res=(2, 2))
    with pytest.raises(ls.InputError, match="module"):
        ls.slice_module("not a module", lambda o, t: o.sum(), torch.zeros(1, 3), None, plane)
    with pytest.raises(ls.InputError, match="have 11 parameters; the Linear has 12"):
        ls.slice_module(nn.Linear(3, 3), lambda o, t: o.sum(), torch.zeros(1, 3), None, plane)
    with pytest.raises(ls.InputError, match="callable"):
        ls.slice_module(net, "mse", torch.zeros(1, 3), None, plane)
    with pytest.raises(ls.InputError, match="filters"):
        ls.random_plane(ls.module_vector(net), filters=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ls.InputError, match="no parameters"):
        ls.module_vector(nn.Tanh())
