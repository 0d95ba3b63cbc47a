"""Ensemble training against one-at-a-time torch.nn + torch.optim training on the same batches."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import landscape as ls
from landscape.train import ADAM, make_schedule, make_splits, train_ensemble
from landscape.units import forward_logits, init_theta, n_params

MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def reference_train(name, theta0, x, y, train_idx, order, *, lr, optimizer, batch, epochs, hidden=1):
    """One model with torch.nn modules and torch.optim, float64, in the given batch order."""
    torch.manual_seed(0)
    rnn, head = MODULES[name](1, hidden, batch_first=True).double(), nn.Linear(hidden, 1).double()
    params = [p for m in (rnn, head) for p in m.parameters()]
    with torch.no_grad():
        i = 0
        for p in params:
            p.copy_(theta0[i : i + p.numel()].reshape(p.shape))
            i += p.numel()
    opt = (
        torch.optim.Adam(params, lr=lr, betas=ADAM["betas"], eps=ADAM["eps"])
        if optimizer == "adam"
        else torch.optim.SGD(params, lr=lr)
    )
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


@pytest.mark.parametrize(
    "name,optimizer,hidden,backend",
    [
        ("rnn", "adam", 1, "reference"),
        ("lstm", "adam", 1, "reference"),
        ("gru", "sgd", 1, "reference"),
        ("gru", "adam", 1, "reference"),
        ("rnn", "adam", 1, "fused"),
        ("lstm", "sgd", 1, "fused"),
        ("gru", "adam", 1, "fused"),
        ("rnn", "sgd", 3, "reference"),
        ("lstm", "adam", 2, "reference"),
        ("gru", "adam", 4, "reference"),
    ],
)
def test_ensemble_matches_torch_optim(name, optimizer, hidden, backend):
    cell = ls.get_cell(name)
    # lengths out of order and repeated: the forward pass sorts models and lets each leave early
    lengths, repeats, epochs, batch, lr = [7, 3, 7, 1], 2, 2, 8, 0.05
    datas = [ls.make_data("latching", n, n=40, seed=10 + k) for k, n in enumerate(lengths)]
    res = train_ensemble(
        cell,
        datas,
        repeats=repeats,
        seed=3,
        epochs=epochs,
        batch=batch,
        lr=lr,
        optimizer=optimizer,
        hidden=hidden,
        dtype=torch.float64,
        backend=backend,
        progress=False,
    )
    assert res.config["backend"] == backend
    train_idx, _ = make_splits(datas, repeats, val_frac=0.2, seed=3)
    schedule = make_schedule(len(lengths) * repeats, train_idx.shape[1], epochs, seed=3)
    for m in range(len(lengths) * repeats):
        d = datas[m // repeats]
        ref = reference_train(
            name,
            res.theta0[m],
            d.x,
            d.y,
            train_idx[m],
            [schedule[e, m] for e in range(epochs)],
            lr=lr,
            optimizer=optimizer,
            batch=batch,
            epochs=epochs,
            hidden=hidden,
        )
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


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("hidden", [1, 5])
def test_forward_matches_torch_nn_and_init(name, hidden):
    cell = ls.get_cell(name)
    lengths = torch.tensor([4, 9, 1, 9, 6])
    x = torch.randn(len(lengths), 11, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    theta = torch.stack([init_theta(cell, hidden, seed=s) for s in range(len(lengths))])
    assert theta.shape == (len(lengths), n_params(cell, hidden))
    logits = forward_logits(cell, theta, x, lengths, hidden)
    for m, n in enumerate(lengths.tolist()):
        torch.manual_seed(m)  # init_theta(seed=m) must equal torch.nn's own initialization
        rnn, head = MODULES[name](1, hidden, batch_first=True).double(), nn.Linear(hidden, 1).double()
        ref = torch.cat([p.detach().reshape(-1) for p in (*rnn.parameters(), *head.parameters())])
        assert torch.equal(theta[m], ref)
        with torch.no_grad():
            out, _ = rnn(x[m, :, :n, None])
            ref_logits = head(out[:, -1])[:, 0].numpy()
            np.testing.assert_allclose(logits[m].numpy(), ref_logits, rtol=1e-12, atol=1e-13)
    if hidden == 1:
        assert torch.equal(theta[0], ls.init_params(cell, seed=0))


def test_bad_units_and_shapes():
    datas = [ls.make_data("latching", 3, n=20, seed=0)]
    for bad in (0, -2, 1.5, 5000):
        with pytest.raises(ls.InputError, match="hidden units"):
            train_ensemble(ls.get_cell("rnn"), datas, hidden=bad, progress=False)
    with pytest.raises(ls.InputError, match="theta0 has shape"):
        train_ensemble(ls.get_cell("lstm"), datas, hidden=2, theta0=torch.zeros(1, 10), progress=False)


@pytest.mark.parametrize("val_frac", [float("nan"), 0.0, 1.0, -0.5, True, "0.2"])
def test_a_validation_fraction_outside_0_1_is_one_clear_error(val_frac):
    with pytest.raises(ls.InputError, match="val_frac"):
        train_ensemble(ls.get_cell("rnn"), [ls.make_data("latching", 5, n=20)], val_frac=val_frac)


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("optimizer", "adagrad", "adam, adam-keras, sgd"),
        ("epochs", 0, "positive integer"),
        ("batch", 2.5, "positive integer"),
        ("repeats", True, "positive integer"),
        ("val_frac", float("nan"), "strictly between 0 and 1"),
        ("val_frac", 1.0, "strictly between 0 and 1"),
        ("lr", float("inf"), "finite number > 0"),
        ("lr", -1e-3, "finite number > 0"),
        ("split", "random", "stratified, shuffled, ordered"),
        ("record_every", -1, ">= 0"),
        ("backend", "cuda", "auto, reference, fused"),
        ("init", "xavier", "torch, keras"),
        ("dtype", "float16", "float32, float64"),
        ("seed", -1, "integer from 0"),
    ],
)
def test_train_config_checks_itself_once_and_names_the_field(field, value, words):
    """Every bad training option is refused where the configuration is made, by its field's name,
    and the same check stands behind train_ensemble's keywords (no bare ValueError past it)."""
    with pytest.raises(ls.InputError, match=words) as made:
        ls.TrainConfig(**{field: value})
    assert field in str(made.value) or field in ("dtype", "seed", "init")
    data = ls.make_data("latching", 3, n=10)
    with pytest.raises(ls.InputError, match=words):
        train_ensemble(ls.get_cell("rnn"), [data], progress=False, **{field: value})


def test_train_config_and_its_keywords_train_alike():
    """A TrainConfig, the same fields as keywords, and a config with a field replaced by a keyword
    give the same models."""
    cell, data = ls.get_cell("gru"), ls.make_data("latching", 4, n=20, seed=1)
    cfg = ls.TrainConfig(repeats=2, seed=3, epochs=2, batch=4, lr=1e-2, dtype=torch.float64)
    a = train_ensemble(cell, [data], cfg, progress=False)
    b = train_ensemble(
        cell, [data], repeats=2, seed=3, epochs=2, batch=4, lr=1e-2, dtype=torch.float64, progress=False
    )
    c = train_ensemble(
        cell,
        [data],
        ls.TrainConfig(repeats=2, seed=3, epochs=2, batch=4, lr=0.5, dtype=torch.float64),
        lr=1e-2,
        progress=False,
    )
    assert torch.equal(a.theta, b.theta) and torch.equal(a.theta, c.theta)
    assert a.config["lr"] == 1e-2 and a.config["split"] == "stratified"
    with pytest.raises(ls.InputError, match="config must be a TrainConfig"):
        train_ensemble(cell, [data], {"epochs": 2}, progress=False)
