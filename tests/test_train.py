"""Ensemble training against one-at-a-time torch.nn + torch.optim training on the same batches."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import landscape as ls
from landscape.train import ADAM, make_schedule, make_splits, train_ensemble

MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def reference_train(name, theta0, x, y, train_idx, order, *, lr, optimizer, batch, epochs):
    """One model with torch.nn modules and torch.optim, float64, in the given batch order."""
    torch.manual_seed(0)
    rnn, head = MODULES[name](1, 1, batch_first=True).double(), nn.Linear(1, 1).double()
    params = [p for m in (rnn, head) for p in m.parameters()]
    with torch.no_grad():
        i = 0
        for p in params:
            p.copy_(theta0[i : i + p.numel()].reshape(p.shape))
            i += p.numel()
    opt = (torch.optim.Adam(params, lr=lr, betas=ADAM["betas"], eps=ADAM["eps"]) if optimizer == "adam"
           else torch.optim.SGD(params, lr=lr))
    for epoch in range(epochs):
        idx = train_idx[order[epoch]]
        for s in range(0, len(idx), batch):
            b = idx[s : s + batch]
            out, _ = rnn(x[b][:, :, None])
            loss = F.binary_cross_entropy_with_logits(head(out[:, -1])[:, 0], y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return torch.cat([p.detach().reshape(-1) for p in params])


@pytest.mark.parametrize("name,optimizer",
                         [("rnn", "adam"), ("lstm", "adam"), ("gru", "sgd"), ("gru", "adam")])
def test_ensemble_matches_torch_optim(name, optimizer):
    cell = ls.get_cell(name)
    lengths, repeats, epochs, batch, lr = [3, 7], 2, 2, 8, 0.05
    datas = [ls.make_data("latching", n, n=40, seed=10 + n) for n in lengths]
    res = train_ensemble(cell, datas, repeats=repeats, seed=3, epochs=epochs, batch=batch, lr=lr,
                         optimizer=optimizer, dtype=torch.float64, progress=False)
    train_idx, _ = make_splits(datas, repeats, val_frac=0.2, seed=3)
    schedule = make_schedule(len(lengths) * repeats, train_idx.shape[1], epochs, seed=3)
    for m in range(len(lengths) * repeats):
        d = datas[m // repeats]
        ref = reference_train(name, res.theta0[m], d.x, d.y, train_idx[m],
                              [schedule[e, m] for e in range(epochs)], lr=lr, optimizer=optimizer,
                              batch=batch, epochs=epochs)
        np.testing.assert_allclose(res.theta[m].numpy(), ref.numpy(), rtol=1e-9, atol=1e-11)
    assert not torch.equal(res.theta, res.theta0)


def test_each_model_has_its_own_init_and_shuffle():
    datas = [ls.make_data("latching", 5, n=40, seed=0)]
    res = train_ensemble(ls.get_cell("rnn"), datas, repeats=3, epochs=1, batch=8, progress=False)
    assert len({tuple(t.tolist()) for t in res.theta0}) == 3
    for m in range(3):
        assert torch.equal(res.theta0[m], ls.init_params("rnn", seed=m))
    sched = make_schedule(3, 32, 1, seed=0)
    assert not torch.equal(sched[0, 0], sched[0, 1])


def test_splits_are_balanced_and_keras_split_is_not():
    datas = [ls.make_data("latching", 4, n=100, seed=0)]
    y = datas[0].y.numpy()
    tr, va = make_splits(datas, 2, val_frac=0.2, seed=0)
    for m in range(2):
        assert y[va[m].numpy()].mean() == 0.5 and y[tr[m].numpy()].mean() == 0.5
        assert len(set(tr[m].tolist()) | set(va[m].tolist())) == 100
    tr, va = make_splits(datas, 1, val_frac=0.2, seed=0, keras_split=True)
    assert y[va[0].numpy()].sum() == 0  # the posted artifact: a one-class validation set
    assert y[tr[0].numpy()].mean() == pytest.approx(50 / 80)


def test_same_seed_same_training():
    datas = [ls.make_data("relay", 6, n=32, seed=1)]
    a = train_ensemble(ls.get_cell("gru"), datas, repeats=2, epochs=1, batch=8, seed=5, progress=False)
    b = train_ensemble(ls.get_cell("gru"), datas, repeats=2, epochs=1, batch=8, seed=5, progress=False)
    assert torch.equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.val_acc, b.val_acc)
