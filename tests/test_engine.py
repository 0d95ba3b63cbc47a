"""The kernel's one door: its checks in C, its autograd Function (gradcheck and torch.nn), and its
vector exp/tanh/sigmoid against correctly rounded values and IEEE special cases."""

import ctypes
import os

import numpy as np
import pytest
import torch

import landscape as ls
from landscape.backends import loss_and_grad, losses
from landscape.engine import build as K
from landscape.engine import fused
from landscape.engine.table import ERRORS, KERNEL, OBJECTIVES, header
from landscape.units import init_theta

if not fused.available():
    if os.environ.get("LANDSCAPE_REQUIRE_FUSED"):
        pytest.fail(f"the fused kernel must build here: {fused.unavailable_reason()}", pytrace=False)
    pytest.skip(f"no fused kernel: {fused.unavailable_reason()}", allow_module_level=True)

GEN = torch.Generator().manual_seed(11)


def variant(name):
    return {
        "gru-before": ls.get_cell("gru", gru_reset="before"),
        "lstm2": ls.get_cell("lstm", head="softmax2"),
    }.get(name) or ls.get_cell(name)


# ---- the door's own checks ------------------------------------------------------------------


def good_args(store):
    """A valid call: 3 lstm models on 4 samples of 5 steps, with gradients."""
    theta = torch.randn(3, 18, dtype=torch.float64, generator=GEN)
    x, y = torch.randn(4, 5, dtype=torch.float64, generator=GEN), torch.ones(4, dtype=torch.float64)
    hT, grad = torch.empty(3, 4, dtype=torch.float64), torch.zeros(3, 18, dtype=torch.float64)
    store += [theta, x, y, hT, grad]
    return dict(
        dtype=1,
        cell=KERNEL["lstm"].code,
        objective=OBJECTIVES["bce"],
        H=1,
        N=4,
        T=5,
        P=18,
        xs_n=5,
        g0=0,
        g1=3,
        theta=theta.data_ptr(),
        x=x.data_ptr(),
        y=y.data_ptr(),
        hT=hT.data_ptr(),
        grad=grad.data_ptr(),
    )


def test_a_valid_call_passes_the_door():
    store = []
    K.call(K.Args(**good_args(store)))
    assert torch.isfinite(store[3]).all() and store[4].abs().sum() > 0


@pytest.mark.parametrize(
    "change, error",
    [
        (dict(cell=len(KERNEL)), "cell"),
        (dict(cell=-1), "cell"),
        (dict(dtype=7), "dtype"),
        (dict(objective=9), "objective"),
        (dict(P=17), "params"),
        (dict(H=0), "units"),
        (dict(H=65), "units"),
        (dict(N=-1), "size"),
        (dict(g1=-1), "size"),
        (dict(theta=None), "null"),
        (dict(x=None), "null"),
        (dict(y=None), "null"),
        (dict(cell=KERNEL["pascanu"].code, P=2, H=2), "units"),
    ],
)
def test_the_door_refuses_what_the_kernel_cannot_run(change, error):
    store = []
    with pytest.raises(K.KernelError, match=ERRORS[error]):
        K.call(K.Args(**(good_args(store) | change)))


def test_the_door_checks_lengths_rows_and_its_own_size():
    store = []
    bad_len, rows = torch.tensor([5, 6, 1]), torch.tensor([[0, 1, 2, 3]] * 2 + [[0, 1, 2, 4]])
    store += [bad_len, rows]
    with pytest.raises(K.KernelError, match=ERRORS["length"]):
        K.call(K.Args(**good_args(store), len=bad_len.data_ptr()))
    with pytest.raises(K.KernelError, match=ERRORS["rows"]):
        K.call(K.Args(**good_args(store), rows=rows.data_ptr(), R=4))
    args = K.Args(**good_args(store))
    args.size = ctypes.sizeof(K.Args) - 8  # a caller of another version
    with pytest.raises(K.KernelError, match=ERRORS["abi"]):
        K.call(args)


def test_the_table_is_the_one_compiled_in():
    """The generated header is part of the kernel's cache key, and what the library was built from."""
    assert f"#define LS_CELL_GRU_BEFORE {KERNEL['gru_before'].code}" in header()
    assert K.library().ls_abi() == K.ABI
    assert K.library().ls_args_size() == ctypes.sizeof(K.Args)


# ---- one gradient path: autograd through the kernel ---------------------------------------------


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "pascanu", "gru-before", "lstm2"])
def test_gradcheck_through_the_door(name):
    cell = variant(name)
    d = ls.make_data("pascanu" if name == "pascanu" else "latching", 6, n=5, seed=1).to(torch.float64, "cpu")
    theta = (
        ls.init_params(cell, seed=2)[None]
        + 0.3 * torch.randn(2, len(cell.param_names), generator=GEN, dtype=torch.float64)
    ).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda th: losses(cell, d, th, backend="fused")[0], (theta,), eps=1e-6, atol=1e-8, rtol=1e-6
    )


@pytest.mark.parametrize("name", ["lstm", "gru-before"])
@pytest.mark.parametrize("hidden", [3])
def test_gradcheck_of_models_of_several_units(name, hidden):
    base = variant(name)
    theta = torch.stack([init_theta(base, hidden, seed=s) for s in range(2)]).requires_grad_(True)
    X = torch.randn(6, 7, dtype=torch.float64, generator=GEN)
    Y = (torch.rand(6, generator=GEN) < 0.5).to(torch.float64)
    rows = torch.tensor([[0, 1, 2, 3], [2, 3, 4, 5]])
    lengths = torch.tensor([7, 4])

    def loss(th):
        return fused.kernel_losses(base, th, X, Y, rows=rows, lengths=lengths, steps=7, hidden=hidden)[0]

    assert torch.autograd.gradcheck(loss, (theta,), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_fused_losses_are_differentiable_like_the_reference_path():
    """``losses(..., backend="fused")`` under autograd gives what autograd gives on the reference
    path, and what torch.nn gives with copied weights (via the reference path's own tests)."""
    cell = ls.get_cell("gru")
    d = ls.make_data("latching", 9, n=30, seed=3).to(torch.float64, "cpu")
    theta = ls.init_params(cell, seed=0)[None] + torch.randn(4, 14, generator=GEN, dtype=torch.float64)
    weights = torch.arange(1.0, 5.0, dtype=torch.float64)  # an upstream gradient other than ones
    got = {}
    for backend in ("reference", "fused"):
        th = theta.clone().requires_grad_(True)
        loss, _ = losses(cell, d, th, backend=backend)
        (got[backend],) = torch.autograd.grad((weights * loss).sum(), th)
    np.testing.assert_allclose(got["fused"].numpy(), got["reference"].numpy(), rtol=1e-11, atol=1e-13)
    _, _, g = loss_and_grad(cell, d, theta, backend="fused")
    np.testing.assert_allclose((g * weights[:, None]).numpy(), got["fused"].numpy(), rtol=1e-14, atol=0)


def test_no_gradient_is_computed_unless_asked(monkeypatch):
    seen = []
    run = fused.run_fused

    def spy(*args, **kwargs):
        seen.append(kwargs["grad"])
        return run(*args, **kwargs)

    monkeypatch.setattr(fused, "run_fused", spy)
    cell = ls.get_cell("rnn")
    d = ls.make_data("latching", 5, n=8, seed=0)
    theta = ls.init_params(cell)[None].float()
    losses(cell, d, theta, backend="fused")
    losses(cell, d, theta.clone().requires_grad_(True), backend="fused")
    assert seen == [False, True]


# ---- the vector functions ------------------------------------------------------------------------


def ulps(got: np.ndarray, truth: np.ndarray) -> float:
    """The largest error in units of the last place of the correctly rounded value."""
    want = truth.astype(got.dtype)
    finite = np.isfinite(want) & (np.abs(want) > np.finfo(got.dtype).tiny)
    err = np.abs(got[finite].astype(np.longdouble) - truth[finite]) / np.spacing(np.abs(want[finite]))
    return float(err.max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_functions_are_within_a_few_ulps(dtype):
    rng = np.random.default_rng(0)
    wide = 700.0 if dtype == np.float64 else 86.0
    x = np.concatenate(
        [
            rng.uniform(-wide, wide, 20000),
            rng.uniform(-20, 20, 20000),
            rng.uniform(-1, 1, 20000),
            rng.uniform(-1e-4, 1e-4, 5000),
            np.linspace(-0.5, 0.5, 5001),
        ]
    ).astype(dtype)
    truth = x.astype(np.longdouble)  # 64-bit mantissa on x86-64: a reference for float64 too
    if np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant and dtype == np.float64:
        pytest.skip("no extended precision here to judge float64 by")
    e, t = np.exp(truth), np.tanh(truth)
    assert ulps(K.vmath("exp", x), e) <= 1.5
    assert ulps(K.vmath("tanh", x), t) <= 3.0
    sig = 1 / (1 + np.exp(-truth))
    assert ulps(K.vmath("sigmoid", x), sig) <= 3.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_functions_keep_nan_and_inf(dtype):
    big = np.finfo(dtype).max
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, big, -big, 1e4, -1e4], dtype=dtype)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(K.vmath("exp", x), np.exp(x))
        np.testing.assert_array_equal(K.vmath("tanh", x), np.tanh(x))
        np.testing.assert_array_equal(K.vmath("sigmoid", x), 1 / (1 + np.exp(-x)))
    assert np.signbit(K.vmath("tanh", x)[4])  # tanh(-0) = -0
    # exp overflows exactly where the true value leaves the range
    top = np.log(np.finfo(dtype).max, dtype=np.longdouble)
    below, above = np.nextafter(dtype(top), dtype(0)), np.nextafter(dtype(top), dtype(np.inf))
    edge = np.array([below, above], dtype=dtype)
    out = K.vmath("exp", edge)
    assert np.isfinite(out[0]) and np.isinf(out[1])
