"""Keras model files in: models built in real Keras 3 (the keras extra), saved as ``.keras`` and as
``.h5``, read here with json and h5py, and their outputs and losses compared with Keras's own on
the same data; unsupported models are named in one line."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import landscape as ls  # noqa: E402
from landscape.backends import losses  # noqa: E402
from landscape.tasks import TaskData  # noqa: E402
from landscape.units import final_states, outputs  # noqa: E402

try:
    import keras
except ImportError as e:  # pragma: no cover - depends on the environment
    if os.environ.get("LANDSCAPE_REQUIRE_KERAS"):
        pytest.fail(f"keras must be installed here: {e}", pytrace=False)
    pytest.skip("keras is not installed (pip install 'rnn-landscape[keras]')", allow_module_level=True)

pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
    pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file"),
]

L = keras.layers
MODELS = {
    "lstm2-sigmoid": lambda: [L.LSTM(4, return_sequences=True), L.LSTM(4), L.Dense(1, activation="sigmoid")],
    "gru-after-softmax2": lambda: [L.GRU(3), L.Dense(2, activation="softmax")],
    "gru-before-softmax3": lambda: [L.GRU(3, reset_after=False), L.Dense(3, activation="softmax")],
    "rnn2-linear": lambda: [L.SimpleRNN(5, return_sequences=True), L.SimpleRNN(5), L.Dense(1)],
}


def build(name, I=3, T=6, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((T, I)), *MODELS[name]()])
    for w in model.weights:  # away from the initializers' zeros, so that every bias counts
        w.assign(w.numpy() + 0.3 * np.random.default_rng(seed).standard_normal(w.shape))
    return model


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("name", list(MODELS))
def test_a_keras_file_is_the_same_model_here(tmp_path, name, suffix):
    model = build(name)
    path = str(tmp_path / f"m{suffix}")
    model.save(path)
    cell, theta = ls.read_keras(path)
    x = np.random.default_rng(1).standard_normal((17, 6, 3))
    want = np.asarray(model.predict(x, verbose=0), dtype=np.float64)  # (N, K) after the activation
    th = theta[None]
    h = final_states(
        cell, th, torch.from_numpy(x)[None], torch.tensor([6]), cell.hidden, inputs=3, layers=cell.layers
    )
    z = outputs(cell, th, h.transpose(1, 2))[0]  # (N, K)
    got = {"logit": torch.sigmoid, "linear": lambda v: v}.get(cell.head, lambda v: torch.softmax(v, -1))(z)
    np.testing.assert_allclose(got.numpy(), want, rtol=2e-5, atol=2e-6)
    # the loss of the same data, as Keras scores it
    K = want.shape[1]
    if cell.head == "linear":
        y = np.random.default_rng(2).standard_normal(17)
        ref = np.mean((want[:, 0] - y) ** 2)
        d = TaskData(torch.from_numpy(x), torch.from_numpy(y), 6, "mse")
    else:
        y = np.random.default_rng(2).integers(0, max(K, 2), 17).astype(np.float64)
        p = np.clip(want if K > 1 else np.stack([1 - want[:, 0], want[:, 0]], 1), 1e-7, 1 - 1e-7)
        ref = -np.mean(np.log(p[np.arange(17), y.astype(int)]))
        d = TaskData(torch.from_numpy(x), torch.from_numpy(y), 6, "ce" if K > 2 else "bce")
    assert abs(float(losses(cell, d, theta)[0]) - ref) < 1e-4 * max(1.0, ref)


def test_what_keras_files_hold_is_named(tmp_path):
    cases = {
        "dense only": (keras.Sequential([keras.Input((6, 3)), L.Flatten(), L.Dense(1)]), "Flatten"),
        "mixed": (
            keras.Sequential([keras.Input((6, 3)), L.LSTM(2, return_sequences=True), L.GRU(2), L.Dense(1)]),
            "LSTM', 'GRU",
        ),
        "relu": (
            keras.Sequential([keras.Input((6, 3)), L.SimpleRNN(2, activation="relu"), L.Dense(1)]),
            "activation",
        ),
        "backwards": (
            keras.Sequential([keras.Input((6, 3)), L.LSTM(2, go_backwards=True), L.Dense(1)]),
            "go_backwards",
        ),
        "tanh head": (
            keras.Sequential([keras.Input((6, 3)), L.LSTM(2), L.Dense(1, activation="tanh")]),
            "'tanh'",
        ),
        "sizes": (
            keras.Sequential([keras.Input((6, 3)), L.GRU(2, return_sequences=True), L.GRU(3), L.Dense(1)]),
            "units",
        ),
    }
    for label, (model, words) in cases.items():
        path = str(tmp_path / f"{label.replace(' ', '_')}.keras")
        model.save(path)
        with pytest.raises(ls.InputError, match=words):
            ls.read_keras(path)
            pytest.fail(label)
    (tmp_path / "junk.keras").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n broken")
    for junk in ("junk.keras", "junk.h5", "missing.h5"):
        with pytest.raises(ls.InputError, match=junk):
            ls.read_keras(str(tmp_path / junk))


def keras2_hard_sigmoid(x):
    """Keras 2.1's hard_sigmoid, given to Keras 3 (whose own has slope 1/6) as a custom callable."""
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


def test_a_keras_2_file_with_hard_sigmoid_gates_and_a_functional_model(tmp_path):
    """A Keras 2.1 .h5 file as Keras 2.1 wrote it (its config a bare list of layers, weights named
    lstm_1/kernel:0, hard_sigmoid gates of slope 0.2, no reset_after), made with h5py from a Keras 3
    model whose gates are Keras 2's formula; and a Keras 3 functional model."""
    import json

    import h5py

    keras.utils.set_random_seed(3)
    inp = keras.Input((6, 3))
    out = L.Dense(2, activation="softmax")(L.LSTM(3, recurrent_activation=keras2_hard_sigmoid)(inp))
    model = keras.Model(inp, out)
    x = np.random.default_rng(1).standard_normal((11, 6, 3))
    want = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    path = str(tmp_path / "keras21.h5")
    lstm, dense = model.layers[1], model.layers[2]
    config = {
        "class_name": "Sequential",
        "config": [
            {
                "class_name": "LSTM",
                "config": {
                    "name": "lstm_1",
                    "units": 3,
                    "activation": "tanh",
                    "recurrent_activation": "hard_sigmoid",
                    "use_bias": True,
                    "return_sequences": False,
                    "batch_input_shape": [None, 6, 3],
                },
            },
            {"class_name": "Dense", "config": {"name": "dense_1", "units": 2, "activation": "softmax"}},
        ],
    }
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.1.6"
        f.attrs["model_config"] = json.dumps(config).encode()
        g = f.create_group("model_weights")
        for name, layer, keys in (
            ("lstm_1", lstm, ("kernel", "recurrent_kernel", "bias")),
            ("dense_1", dense, ("kernel", "bias")),
        ):
            sub = g.create_group(name)
            names = [f"{name}/{k}:0" for k in keys]
            sub.attrs["weight_names"] = [n.encode() for n in names]
            for n, w in zip(names, layer.get_weights(), strict=True):
                sub.create_dataset(n, data=w)
    cell, theta = ls.read_keras(path)
    assert (cell.name, cell.gate, cell.head, cell.hidden, cell.inputs) == (
        "lstm",
        "hard_sigmoid",
        "softmax2",
        3,
        3,
    )
    h = final_states(cell, theta[None], torch.from_numpy(x)[None], torch.tensor([6]), 3, inputs=3)
    got = torch.softmax(outputs(cell, theta[None], h.transpose(1, 2))[0], -1)
    np.testing.assert_allclose(got.numpy(), want, rtol=2e-5, atol=2e-6)
    model.save(str(tmp_path / "functional.keras"))  # the same model, Keras 3's functional format
    with pytest.raises(ls.InputError, match="recurrent_activation"):  # its gate is a custom callable
        ls.read_keras(str(tmp_path / "functional.keras"))
    keras.utils.set_random_seed(3)
    inp = keras.Input((6, 3))
    plain = keras.Model(inp, L.Dense(1, activation="sigmoid")(L.GRU(2)(inp)))
    plain.save(str(tmp_path / "plain.keras"))
    cell, theta = ls.read_keras(str(tmp_path / "plain.keras"))
    h = final_states(cell, theta[None], torch.from_numpy(x)[None], torch.tensor([6]), 2, inputs=3)
    got = torch.sigmoid(outputs(cell, theta[None], h.transpose(1, 2))[0])
    np.testing.assert_allclose(
        got.numpy(), np.asarray(plain.predict(x, verbose=0), np.float64), rtol=2e-5, atol=2e-6
    )


def test_the_command_slices_a_keras_file(tmp_path, capsys):
    from landscape import slice as cli

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 3)), L.GRU(4, reset_after=False), L.Dense(2, activation="softmax")]
    )
    model.save(str(tmp_path / "g.keras"))
    x = np.random.default_rng(0).standard_normal((30, 8, 3))
    y = (x[:, 0, 0] > 0).astype(float)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    base = [
        "--quiet",
        "--cell",
        "gru",
        "--center",
        str(tmp_path / "g.keras"),
        "--data",
        str(tmp_path / "d.npz"),
        "--len",
        "8",
        "--res",
        "3",
        "--plane",
        "random",
        "--dtype",
        "float64",
        "--out",
        str(tmp_path / "o"),
        "--format",
        "png",
        "--name",
        "g",
    ]
    assert cli.main(base) == 2  # Keras's reset_after=False is the reset-before GRU: said, not guessed
    assert "--gru-reset before" in capsys.readouterr().err
    assert cli.main([*base, "--gru-reset", "before"]) == 0
    with np.load(tmp_path / "o" / "g.npz", allow_pickle=False) as f:
        centre = f["loss"][0, 1, 1]
    p = np.clip(np.asarray(model.predict(x, verbose=0), np.float64), 1e-7, 1 - 1e-7)
    assert abs(centre + np.mean(np.log(p[np.arange(30), y.astype(int)]))) < 1e-5
    capsys.readouterr()


def test_a_line_between_two_keras_files(tmp_path, capsys):
    """--plane line from one Keras file (the centre, A) to another (--to, B): the line's ends are
    the losses Keras's own predictions give."""
    from landscape import slice as cli

    models = []
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        m = keras.Sequential([keras.Input((7, 2)), L.LSTM(3), L.Dense(1, activation="sigmoid")])
        m.save(str(tmp_path / f"m{seed}.keras"))
        models.append(m)
    x = np.random.default_rng(2).standard_normal((25, 7, 2))
    y = (x[:, 0, 0] > 0).astype(float)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    argv = [
        "--quiet",
        "--cell",
        "lstm",
        "--center",
        str(tmp_path / "m0.keras"),
        "--plane",
        "line",
        "--to",
        str(tmp_path / "m1.keras"),
        "--data",
        str(tmp_path / "d.npz"),
        "--len",
        "7",
        "--dtype",
        "float64",
        "--out",
        str(tmp_path / "o"),
        "--format",
        "png",
        "--name",
        "line",
    ]
    assert cli.main(argv) == 0, capsys.readouterr().err
    with np.load(tmp_path / "o" / "line.npz", allow_pickle=False) as f:
        loss, alpha = f["loss"][0, 0], f["x"]
    for model, a in zip(models, (0.0, 1.0), strict=True):
        p = np.clip(np.asarray(model.predict(x, verbose=0), np.float64)[:, 0], 1e-12, 1 - 1e-12)
        want = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        assert abs(loss[list(alpha).index(a)] - want) < 1e-5
    capsys.readouterr()
