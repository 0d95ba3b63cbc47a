"""The Keras protocol against Keras itself (Keras 3 on its torch backend): forward losses of
SimpleRNN/LSTM/GRU + Dense(2, softmax) models holding the toolkit's weights, Keras's
initializers' statistics, and Keras's Adam over real training steps.

Keras is an optional extra (``pip install "rnn-landscape[keras]"``); these tests skip without it,
and fail instead where ``LANDSCAPE_REQUIRE_KERAS`` is set (CI)."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import landscape as ls  # noqa: E402
from landscape.backends import losses  # noqa: E402
from landscape.train import make_schedule, make_splits, train_ensemble  # noqa: E402

try:
    import keras
except ImportError as e:  # pragma: no cover - depends on the environment
    if os.environ.get("LANDSCAPE_REQUIRE_KERAS"):
        pytest.fail(f"keras must be installed here: {e}", pytrace=False)
    pytest.skip("keras is not installed (pip install 'rnn-landscape[keras]')", allow_module_level=True)

if keras.backend.backend() != "torch":  # pragma: no cover
    pytest.skip("these tests run Keras on its torch backend (KERAS_BACKEND=torch)", allow_module_level=True)

# Keras 3.15's Variable.numpy() goes through a numpy-1 style __array__; numpy 2 warns about it
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

# torch.nn's gate k is Keras's gate KERAS[cell][k] (Keras: LSTM i, f, c, o; GRU z, r, h)
KERAS = {"rnn": [0], "lstm": [0, 1, 2, 3], "gru": [1, 0, 2]}


@pytest.fixture(autouse=True)
def float64_keras():
    old = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(old)


def keras_loss(y, probs):
    """Keras's sparse categorical cross-entropy, mean over the batch (the loss object's own
    reduction casts to float32, so the mean is taken here, in float64)."""
    return torch.mean(keras.losses.sparse_categorical_crossentropy(y, probs))


def keras2_hard_sigmoid(x):
    """Keras 2.1's hard_sigmoid, given to Keras 3 (whose own has slope 1/6) as a custom callable."""
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


def keras_model(name, length, reset="after", gate="sigmoid"):
    act = {"sigmoid": "sigmoid", "hard_sigmoid": keras2_hard_sigmoid}[gate]
    layer = {
        "rnn": lambda: keras.layers.SimpleRNN(1),
        "lstm": lambda: keras.layers.LSTM(1, recurrent_activation=act),
        "gru": lambda: keras.layers.GRU(1, reset_after=reset == "after", recurrent_activation=act),
    }[name]()
    return keras.Sequential([keras.Input((length, 1)), layer, keras.layers.Dense(2, activation="softmax")])


def to_keras(name, theta, reset="after"):
    """The toolkit's flat vector (torch.nn's order, documented in the README) -> Keras's weights."""
    G = len(KERAS[name])
    t = np.asarray(theta, dtype=np.float64)
    w_ih, w_hh, b_ih, b_hh, head = t[:G], t[G : 2 * G], t[2 * G : 3 * G], t[3 * G : 4 * G], t[4 * G :]
    inv = np.argsort(KERAS[name])  # Keras's gate j is torch.nn's gate inv[j]
    kernel, recurrent = w_ih[inv][None], w_hh[inv][None]
    if name == "gru" and reset == "after":
        bias = np.stack([b_ih[inv], b_hh[inv]])  # input and recurrent biases, (2, 3)
    else:
        bias = (b_ih + b_hh)[inv]  # one bias: the two torch biases add up in every gate's sum
    return [kernel, recurrent, bias, head[:2][None], head[2:]]


@pytest.mark.parametrize(
    "name,reset,gate",
    [
        ("rnn", "after", "sigmoid"),
        ("lstm", "after", "sigmoid"),
        ("gru", "after", "sigmoid"),
        ("gru", "before", "sigmoid"),
        ("lstm", "after", "hard_sigmoid"),
        ("gru", "after", "hard_sigmoid"),
        ("gru", "before", "hard_sigmoid"),
    ],
)
@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_forward_loss_equals_keras(name, reset, gate, backend):
    cell = ls.get_cell(name, head="softmax2", gru_reset=reset, gate=gate)
    data = ls.make_data("latching", 9, n=64, seed=3)
    gen = torch.Generator().manual_seed(11)
    noise = 0.8 * torch.randn(4, len(cell.param_names), generator=gen, dtype=torch.float64)
    thetas = [ls.init_params(cell, seed=s, init="keras") + noise[s] for s in range(4)]
    got, acc = losses(cell, data, torch.stack(thetas), backend=backend)
    model = keras_model(name, 9, reset, gate)
    x, y = data.x.numpy()[:, :, None], data.y.numpy().astype(np.int64)
    for g, theta in enumerate(thetas):
        model.set_weights(to_keras(name, theta.tolist(), reset))
        with torch.no_grad():
            probs = model(x)
            want = float(keras_loss(y, probs))
        # Keras's torch backend, even at floatx float64, ends a SimpleRNN's state ~4e-9 away from a
        # plain float64 loop (measured): agreement is to ~1e-9, not to the last digit
        assert got[g].item() == pytest.approx(want, rel=1e-7)
        assert acc[g].item() == float(np.mean(np.argmax(np.asarray(probs), 1) == y))


def test_clipped_loss_equals_keras_where_a_class_is_certain():
    """A sample whose class has probability < 1e-7: Keras's loss stops at -log(1e-7)."""
    cell = ls.get_cell("rnn", head="softmax2")
    data = ls.make_data("latching", 4, n=16, seed=0)
    theta = torch.tensor([[3.0, 0.5, 0.0, 0.0, -30.0, 30.0, 0.0, 0.0]], dtype=torch.float64)
    got, _ = losses(cell, data, theta, backend="reference")
    gotf, _ = losses(cell, data, theta, backend="fused")
    model = keras_model("rnn", 4)
    model.set_weights(to_keras("rnn", theta[0].tolist()))
    with torch.no_grad():
        probs = model(data.x.numpy()[:, :, None])
        each = keras.losses.sparse_categorical_crossentropy(data.y.numpy().astype(np.int64), probs)
    want = float(torch.mean(each))
    assert float(each.max()) == pytest.approx(-np.log(1e-7))  # a sample at Keras's clip
    assert got.item() == pytest.approx(want, rel=1e-7) and gotf.item() == pytest.approx(want, rel=1e-7)


def test_keras_initializers_statistics():
    """Keras's own draws and the toolkit's have the same laws (values differ: different streams)."""
    ours = {
        n: torch.stack(
            [ls.init_params(ls.get_cell(n, head="softmax2"), seed=s, init="keras") for s in range(300)]
        ).numpy()
        for n in ("rnn", "lstm", "gru")
    }
    names = {n: ls.get_cell(n, head="softmax2").param_names for n in ours}
    col = lambda n, p: ours[n][:, names[n].index(p)]  # noqa: E731
    theirs_1x1 = np.array([keras.initializers.Orthogonal(seed=s)((1, 1)) for s in range(300)]).ravel()
    assert set(np.abs(theirs_1x1)) == {1.0} and set(np.abs(col("rnn", "w_hh"))) == {1.0}
    assert 0.35 < np.mean(theirs_1x1 > 0) < 0.65 and 0.35 < np.mean(col("rnn", "w_hh") > 0) < 0.65
    # a one-unit LSTM's recurrent row (1, 4) is a unit vector, in Keras and here
    row = np.asarray(keras.initializers.Orthogonal(seed=1)((1, 4)))
    assert np.linalg.norm(row) == pytest.approx(1.0)
    lstm_rows = ours["lstm"][:, [names["lstm"].index(f"w_hh_{g}") for g in "ifgo"]]
    np.testing.assert_allclose(np.linalg.norm(lstm_rows, axis=1), 1.0, rtol=1e-12)
    # Keras's layers themselves: forget bias 1 (unit_forget_bias), other biases 0
    bias = keras_model("lstm", 3).layers[0].get_weights()[2]
    np.testing.assert_array_equal(bias, [0, 1, 0, 0])
    assert set(col("lstm", "b_ih_f")) == {1.0} and set(col("lstm", "b_hh_f")) == {0.0}
    # glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)); same spread as Keras's draws
    for name, p, shape in (("rnn", "w_ih", (1, 1)), ("lstm", "w_ih_g", (1, 4)), ("rnn", "w_out_1", (1, 2))):
        theirs = np.concatenate(
            [np.asarray(keras.initializers.GlorotUniform(seed=s)(shape)).ravel() for s in range(300)]
        )
        limit = np.sqrt(6 / sum(shape))
        mine = col(name, p)
        assert np.abs(theirs).max() <= limit and np.abs(mine).max() <= limit
        assert np.std(mine) == pytest.approx(limit / np.sqrt(3), rel=0.15)
        assert np.std(theirs) == pytest.approx(limit / np.sqrt(3), rel=0.15)
    assert set(col("gru", "b_ih_z")) == {0.0} and set(col("rnn", "b_out_0")) == {0.0}


@pytest.mark.parametrize(
    "name,gate",
    [
        ("rnn", "sigmoid"),
        ("lstm", "sigmoid"),
        ("gru", "sigmoid"),
        ("lstm", "hard_sigmoid"),
        ("gru", "hard_sigmoid"),
    ],
)
@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_keras_protocol_training_equals_keras(name, gate, backend):
    """train_ensemble with the Keras protocol against Keras's own Adam, step by step, same batches
    (the GRU of the posted Keras version: reset gate before the product, one bias; and Keras 2.1's
    hard_sigmoid gates, given to Keras 3 as a custom callable)."""
    reset = "before" if name == "gru" else "after"
    cell = ls.get_cell(name, head="softmax2", gru_reset=reset, gate=gate)
    datas = [ls.make_data("latching", 5, n=40, seed=2)]
    epochs, batch = 2, 16  # 32 training samples: 2 batches per epoch, the last one short
    res = train_ensemble(
        cell,
        datas,
        repeats=1,
        seed=4,
        epochs=epochs,
        batch=batch,
        lr=1e-2,
        optimizer="adam-keras",
        init="keras",
        split="shuffled",
        dtype=torch.float64,
        backend=backend,
        progress=False,
    )
    tr, _ = make_splits(datas, 1, val_frac=0.2, seed=4, split="shuffled")
    schedule = make_schedule(1, tr.shape[1], epochs, seed=4)
    model = keras_model(name, 5, reset, gate)
    model.set_weights(to_keras(name, res.theta0[0].tolist(), reset))
    opt = keras.optimizers.Adam(learning_rate=1e-2)
    x, y = datas[0].x.numpy()[:, :, None], datas[0].y.numpy().astype(np.int64)
    for e in range(epochs):
        order = tr[0][schedule[e, 0]].numpy()
        for s in range(0, len(order), batch):
            b = order[s : s + batch]
            for v in model.trainable_weights:
                v.value.grad = None
            with torch.enable_grad():
                keras_loss(torch.from_numpy(y[b]), model(torch.from_numpy(x[b]))).backward()
            opt.apply_gradients([(v.value.grad, v) for v in model.trainable_weights])
    want = to_keras(name, res.theta[0].tolist(), reset)
    # Adam normalizes each step, so a gradient near 0 (a bias) carries Keras's own ~1e-8 rounding
    # into ~1e-6 of its parameter; 4 steps of lr 1e-2 move the parameters by ~4e-2
    for got_w, want_w in zip(model.get_weights(), want, strict=True):
        np.testing.assert_allclose(got_w, want_w, rtol=1e-6, atol=1e-5)
    assert not np.allclose(to_keras(name, res.theta0[0].tolist(), reset)[1], want[1])
