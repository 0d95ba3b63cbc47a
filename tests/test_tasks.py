"""Generated data: balance, the tasks' definitions, stratified shuffled splits, user data files."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import landscape as ls
from landscape import latching
from landscape import slice as cli
from landscape.tasks import TaskData


@pytest.mark.parametrize("task", ["latching", "relay"])
@pytest.mark.parametrize("n", [2, 7, 40, 64])
def test_exactly_half_positive(task, n):
    data = ls.make_data(task, 6, n=n, seed=n)
    y = data.y.numpy()
    assert data.x.shape == (n, 6) and y.shape == (n,)
    assert data.x.dtype == torch.float64
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert int(y.sum()) == n // 2


@pytest.mark.parametrize("task", ["latching", "relay"])
def test_labels_are_shuffled(task):
    """Not all positives first: the ordered-data artifact of the original Keras experiment."""
    y = ls.make_data(task, 4, n=64, seed=0).y.numpy()
    assert not np.all(np.diff(y) <= 0) and not np.all(np.diff(y) >= 0)


def test_latching_first_step_carries_the_label():
    noise = 0.1
    data = ls.make_data("latching", 12, n=64, noise=noise, seed=1)
    x, y = data.x.numpy(), data.y.numpy()
    assert np.all(np.sign(x[:, 0]) == 2 * y - 1)
    assert np.all(np.abs(x[:, 0] - (2 * y - 1)) < 6 * noise)  # +-1 plus noise
    rest = x[:, 1:]
    assert np.all(np.abs(rest) < 6 * noise)  # noise only
    assert 0.5 * noise < rest.std() < 1.5 * noise


def test_latching_noise_free():
    data = ls.make_data("latching", 5, n=10, noise=0.0, seed=2)
    x, y = data.x.numpy(), data.y.numpy()
    np.testing.assert_array_equal(x[:, 0], 2 * y - 1)
    np.testing.assert_array_equal(x[:, 1:], 0.0)


@pytest.mark.parametrize("length", [2, 3, 9, 20])
def test_relay_signs_agree_iff_positive(length):
    noise = 0.1
    data = ls.make_data("relay", length, n=64, noise=noise, seed=length)
    x, y = data.x.numpy(), data.y.numpy()
    a, b = np.sign(x[:, 0]), np.sign(x[:, length // 2])
    assert np.all(np.abs(np.abs(x[:, [0, length // 2]]) - 1) < 6 * noise)
    np.testing.assert_array_equal(a == b, y == 1)
    assert 0 < np.sum(a > 0) < 64  # both first signs occur
    others = np.delete(x, [0, length // 2], axis=1)
    assert np.all(np.abs(others) < 6 * noise)


def test_make_data_is_seeded():
    a, b = ls.make_data("relay", 8, n=20, seed=3), ls.make_data("relay", 8, n=20, seed=3)
    c = ls.make_data("relay", 8, n=20, seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)


def test_make_data_does_not_touch_global_rng():
    state = torch.get_rng_state()
    ls.make_data("latching", 5, n=8, seed=0)
    assert torch.equal(state, torch.get_rng_state())


def test_pascanu_data_has_no_input():
    data = ls.make_data("pascanu", 7)
    assert data.x is None and data.y is None and data.length == 7 and data.objective == "pascanu"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(task="nope", length=5),
        dict(task="latching", length=0),
        dict(task="latching", length=-3),
        dict(task="relay", length=1),
        dict(task="latching", length=5, n=1),
        dict(task="latching", length=5, noise=-0.1),
        dict(task="latching", length=5, noise=float("nan")),
    ],
)
def test_make_data_rejects_bad_input(kwargs):
    with pytest.raises(ls.InputError):
        ls.make_data(kwargs.pop("task"), kwargs.pop("length"), **kwargs)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ls.InputError, match="latching.*relay.*pascanu"):
        ls.get_task("nope")
    with pytest.raises(ls.InputError, match="rnn.*lstm.*gru.*pascanu"):
        ls.get_cell("nope")


@pytest.mark.parametrize("frac", [0.2, 0.25, 0.5])
def test_balanced_split_keeps_proportions(frac):
    y = np.array([1] * 30 + [0] * 70)  # ordered on purpose, and imbalanced
    train, val = ls.balanced_split(y, frac, seed=0)
    assert len(np.intersect1d(train, val)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(100))
    assert y[val].sum() == round(frac * 30) and (1 - y[val]).sum() == round(frac * 70)
    assert abs(y[train].mean() - 0.3) < 0.02 and abs(y[val].mean() - 0.3) < 0.02
    for idx in (train, val):  # shuffled, not sorted, classes interleaved
        assert not np.all(np.diff(idx) > 0)
        assert not np.all(np.diff(y[idx]) <= 0) and not np.all(np.diff(y[idx]) >= 0)


def test_balanced_split_on_generated_data_and_torch_labels():
    y = ls.make_data("latching", 3, n=50, seed=5).y
    train, val = ls.balanced_split(y, 0.2, seed=1)
    yn = y.numpy()
    assert (len(train), len(val)) == (40, 10)
    assert yn[val].sum() == 5 and yn[train].sum() == 20


def test_balanced_split_is_seeded():
    y = np.arange(40) % 2
    a, b = ls.balanced_split(y, 0.3, seed=2), ls.balanced_split(y, 0.3, seed=2)
    c = ls.balanced_split(y, 0.3, seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1, 1.5])
def test_balanced_split_rejects_bad_fraction(frac):
    with pytest.raises(ls.InputError):
        ls.balanced_split(np.array([0, 1, 0, 1]), frac, seed=0)


def test_load_data_and_data_from_arrays(own_data):
    path, x, y = own_data
    xl, yl = ls.load_data(str(path))
    np.testing.assert_array_equal(xl, x)
    np.testing.assert_array_equal(yl, y)
    data = ls.data_from_arrays(xl, yl, 5)
    assert data.length == 5 and data.objective == "bce"
    np.testing.assert_array_equal(data.x.numpy(), x[:, :5])
    with pytest.raises(ls.InputError, match="13"):
        ls.data_from_arrays(xl, yl, 13)


def test_load_data_accepts_keras_shape(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4, 1)).astype(np.float32)
    y = np.array([0, 1, 1, 0, 1, 0], dtype=np.int32)
    np.savez(tmp_path / "k.npz", x=x, y=y)
    xl, yl = ls.load_data(str(tmp_path / "k.npz"))
    assert xl.shape == (6, 4) and xl.dtype == np.float64 and yl.dtype == np.float64
    np.testing.assert_array_equal(xl, x[..., 0])


@pytest.mark.parametrize(
    "arrays",
    [
        dict(x=np.zeros((4, 3))),
        dict(y=np.zeros(4)),
        dict(x=np.zeros((4, 3)), y=np.array([0, 1, 2, 1])),
        dict(x=np.zeros((4, 3)), y=np.array([0, 1, 0.5, 1])),
        dict(x=np.zeros((4, 3)), y=np.zeros(5)),
        dict(x=np.zeros(4), y=np.zeros(4)),
        dict(x=np.full((4, 3), np.nan), y=np.zeros(4)),
        dict(x=np.zeros((4, 3)), y=np.array([0, 1, np.nan, 1])),
        dict(x=np.array([["a"] * 3] * 4), y=np.zeros(4)),
    ],
)
def test_load_data_rejects_bad_arrays(tmp_path, arrays):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ls.InputError, match="bad.npz"):
        ls.load_data(str(tmp_path / "bad.npz"))


def test_load_data_rejects_non_npz(tmp_path):
    (tmp_path / "t.npz").write_text("x,y\n1,0\n")
    with pytest.raises(ls.InputError, match="t.npz"):
        ls.load_data(str(tmp_path / "t.npz"))
    with pytest.raises(ls.InputError, match="missing.npz"):
        ls.load_data(str(tmp_path / "missing.npz"))


def test_load_data_rejects_npy_file(tmp_path):
    """Regression: np.load returns a plain array for .npy, which is no context manager."""
    np.save(tmp_path / "x.npy", np.zeros((4, 3)))
    with pytest.raises(ls.InputError, match="x.npy"):
        ls.load_data(str(tmp_path / "x.npy"))


Y = [0.0, 1, 0, 1]  # labels of four sequences


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda: TaskData(torch.zeros(4, 5, dtype=torch.complex64), torch.tensor(Y), 5, "bce"), "complex64"),
        (lambda: TaskData(torch.zeros(4, 5), torch.tensor([0.0, 1, 2, 1]), 5, "bce"), "only 0 and 1"),
        (lambda: TaskData(torch.zeros(4, 5), torch.tensor(Y), 5, "hinge"), "objective 'hinge'"),
        (lambda: TaskData(torch.zeros(4, 5), torch.tensor([0.0, 1, 2.5, 1]), 5, "ce"), "class indices"),
        (
            lambda: TaskData(torch.zeros(4, 5), torch.tensor([0.0, 1, float("inf"), 1]), 5, "mse"),
            "non-finite",
        ),
        (lambda: TaskData(torch.zeros(4, 5), torch.tensor(Y), 5, "bce", torch.tensor([1, 2, 6, 1])), "steps"),
        (lambda: TaskData(torch.zeros(4, 3), torch.tensor(Y), 5, "bce"), "3 steps, not the length 5"),
        (lambda: TaskData(torch.zeros(4, 5).half(), torch.tensor(Y), 5, "bce"), "float16"),
        (lambda: TaskData(torch.full((4, 5), float("nan")), torch.tensor(Y), 5, "bce"), "non-finite"),
        (lambda: TaskData(torch.zeros(4, 5), torch.tensor([0.0, 1, 0]), 5, "bce"), "y (3,)"),
        (lambda: TaskData(torch.zeros(4, 5), None, 5, "bce"), "data y"),
        (lambda: TaskData(None, None, 0, "pascanu"), "sequence length"),
    ],
)
def test_every_way_into_taskdata_is_checked(make, needle):
    with pytest.raises(ls.InputError, match=re.escape(needle)):
        make()


def test_a_data_file_with_complex_inputs_is_one_line(tmp_path, capsys):
    np.savez(tmp_path / "c.npz", x=np.ones((6, 5)) + 1j, y=np.array([0, 1, 0, 1, 0, 1]))
    code = cli.main(
        [
            "--res",
            "3",
            "--len",
            "3",
            "--quiet",
            "--data",
            str(tmp_path / "c.npz"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "complex128" in err[0], err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_parameters_are_refused(dtype):
    cell = ls.get_cell("rnn")
    data = ls.make_data("latching", 5, n=10)
    theta = ls.init_params(cell)[None].to(dtype)
    with pytest.raises(ls.InputError, match=str(dtype)):
        ls.losses(cell, data, theta)
    with pytest.raises(ls.InputError, match=str(dtype)):
        ls.random_plane(theta[0])


@pytest.mark.parametrize(
    "argv", [["--val", "nan"], ["--lr", "inf"], ["--noise", "nan"], ["--success", "nan"]]
)
def test_latching_refuses_non_finite_numbers(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        latching.main(["--cells", "rnn", "--tasks", "latching", "--lengths", "3", "--quiet", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and argv[0] in err[0] and "finite" in err[0], err


def test_the_count_of_lengths_is_bounded(tmp_path, capsys):
    code = cli.main(
        [
            "--res",
            "3",
            "--samples",
            "20",
            "--quiet",
            "--len",
            ",".join(["3"] * 20000),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "20000 lengths" in err[0] and "1000" in err[0], err
    assert not (tmp_path / "o").exists()
