"""Parameters: torch.nn's initialization, checkpoints in plain torch.nn format, round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import landscape as ls

CELLS = ("rnn", "lstm", "gru")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_init_params_is_torch_default_init(cell, seed, ref):
    state = torch.get_rng_state()
    theta = ls.init_params(cell, seed=seed)
    assert torch.equal(state, torch.get_rng_state())  # the caller's RNG is left alone

    want = list(ref.values(cell, *ref.init(cell, seed)).values())
    assert theta.dtype == torch.float64 and theta.shape == (len(want),)
    assert theta.tolist() == want
    assert np.all(np.abs(want) <= 1.0)  # U(-1, 1) for hidden size 1


def test_init_params_pascanu_is_figure_centre():
    assert ls.init_params("pascanu").tolist() == [5.0, -2.5]
    assert ls.init_params("pascanu", seed=3).tolist() == [5.0, -2.5]


@pytest.mark.parametrize("cell", CELLS)
def test_checkpoint_round_trip_and_plain_torch_load(cell, tmp_path, ref):
    theta = ls.init_params(cell, seed=9)  # float32-representable values
    path = str(tmp_path / "m.pt")
    assert ls.save_checkpoint(path, cell, theta) == path
    assert torch.equal(ls.load_checkpoint(path, cell), theta)
    assert torch.equal(ls.load_checkpoint(path, ls.get_cell(cell)), theta)

    ck = torch.load(path, weights_only=True)
    assert ck["cell"] == cell
    rnn, head = ref.init(cell, 0)  # plain float32 torch.nn modules
    rnn.load_state_dict(ck["rnn"])  # strict: every key, every shape
    head.load_state_dict(ck["head"])
    assert list(ref.values(cell, rnn, head).values()) == theta.tolist()
    assert not list(tmp_path.glob(".tmp-*"))


def test_checkpoint_of_float64_params_keeps_float32_precision(tmp_path):
    theta = torch.tensor(np.random.default_rng(0).normal(size=6), dtype=torch.float64)
    path = str(tmp_path / "m.pt")
    ls.save_checkpoint(path, "rnn", theta)
    back = ls.load_checkpoint(path, "rnn")
    torch.testing.assert_close(back, theta, rtol=1e-7, atol=0)


def test_checkpoint_pascanu_round_trip(tmp_path):
    theta = torch.tensor([4.75, -2.25], dtype=torch.float64)
    path = str(tmp_path / "p.pt")
    ls.save_checkpoint(path, "pascanu", theta)
    assert torch.equal(ls.load_checkpoint(path, "pascanu"), theta)


@pytest.mark.parametrize("cell", CELLS)
def test_load_checkpoint_written_by_torch_nn(cell, tmp_path, ref):
    rnn, head = ref.init(cell, 21)
    path = tmp_path / "user.pt"
    torch.save({"cell": cell, "rnn": rnn.state_dict(), "head": head.state_dict()}, path)
    theta = ls.load_checkpoint(str(path), cell)
    assert theta.tolist() == list(ref.values(cell, rnn, head).values())


@pytest.mark.parametrize("cell", CELLS)
def test_to_modules_holds_theta(cell, ref):
    theta = ls.init_params(cell, seed=4)
    rnn, head = ls.to_modules(cell, theta)
    assert type(rnn) is ref.MODULES[cell] and rnn.batch_first
    assert list(ref.values(cell, rnn, head).values()) == theta.tolist()


def _write_bad_checkpoints(tmp_path):
    torch.manual_seed(0)
    out = {}
    out["wrong cell"] = (
        "lstm",
        {"cell": "gru", "rnn": nn.GRU(1, 1).state_dict(), "head": nn.Linear(1, 1).state_dict()},
    )
    out["hidden size 2"] = (
        "lstm",
        {"cell": "lstm", "rnn": nn.LSTM(1, 2).state_dict(), "head": nn.Linear(2, 1).state_dict()},
    )
    out["no head"] = ("rnn", {"cell": "rnn", "rnn": nn.RNN(1, 1).state_dict()})
    out["no cell key"] = ("rnn", nn.RNN(1, 1).state_dict())
    out["two layers"] = (
        "gru",
        {"cell": "gru", "rnn": nn.GRU(1, 1, num_layers=2).state_dict(), "head": nn.Linear(1, 1).state_dict()},
    )
    sd = nn.RNN(1, 1).state_dict()
    sd["weight_hh_l0"] = torch.full((1, 1), float("nan"))
    out["non-finite"] = ("rnn", {"cell": "rnn", "rnn": sd, "head": nn.Linear(1, 1).state_dict()})
    sd = nn.RNN(1, 1).state_dict()
    sd["bias_ih_l0"] = torch.tensor([1], dtype=torch.int64)
    out["integer tensor"] = ("rnn", {"cell": "rnn", "rnn": sd, "head": nn.Linear(1, 1).state_dict()})
    for name, (cell, obj) in out.items():
        path = tmp_path / (name.replace(" ", "_") + ".pt")
        torch.save(obj, path)
        out[name] = (cell, str(path))
    return out


def test_load_checkpoint_rejects_bad_files(tmp_path):
    for name, (cell, path) in _write_bad_checkpoints(tmp_path).items():
        with pytest.raises(ls.InputError):
            ls.load_checkpoint(path, cell)
            pytest.fail(name)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ls.InputError, match="junk.pt"):
        ls.load_checkpoint(str(junk), "rnn")
    with pytest.raises(ls.InputError, match="missing.pt"):
        ls.load_checkpoint(str(tmp_path / "missing.pt"), "rnn")


def test_load_checkpoint_runs_no_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"cell": "rnn", "rnn": Evil()}, path)
    with pytest.raises(ls.InputError, match="evil.pt"):
        ls.load_checkpoint(str(path), "rnn")


def test_load_checkpoint_rejects_empty_file(tmp_path):
    """Regression: torch.load's EOFError has an empty message, which load_checkpoint indexed."""
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ls.InputError, match="empty.pt"):
        ls.load_checkpoint(str(tmp_path / "empty.pt"), "rnn")
