"""Keras models in: a ``.keras`` file (Keras 3: ``config.json`` + ``model.weights.h5`` in a zip) or
an ``.h5`` model file (Keras 2, or Keras 3's legacy format), read with ``json`` and ``h5py``, never
by executing anything in the file.

A Sequential or functional chain of one or more SimpleRNN, LSTM or GRU layers of one kind and size
(every one but the last with ``return_sequences``) and one Dense readout becomes the toolkit's
model: ``nn.RNN/LSTM/GRU(I, H, num_layers=L)`` + ``nn.Linear(H, K)`` as a flat vector. Keras's
kernels are (inputs, gates x units) where torch.nn's are (gates x units, inputs); its GRU orders
the gates z, r, h where torch.nn has r, z, n; its single bias becomes ``bias_ih`` with ``bias_hh``
zero (a GRU with ``reset_after=True`` has both, and runs as torch.nn's GRU; with
``reset_after=False`` it is the reset-before GRU). The Dense readout: sigmoid of one unit is the
one-logit head, softmax of two Keras's softmax2, softmax of K the softmax head, linear of one the
linear head. Anything else is named in one line.
"""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import torch

from ._errors import InputError
from ._io import MAX_LOAD, open_regular, parse_json
from .cells import Cell, get_cell

__all__ = ["read_keras", "KERAS_SUFFIXES"]

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
RECURRENT = {"SimpleRNN": "rnn", "LSTM": "lstm", "GRU": "gru"}
SNAKE = {"SimpleRNN": "simple_rnn", "LSTM": "lstm", "GRU": "gru", "Dense": "dense"}
SKIPPED = ("InputLayer",)  # layers that hold no weights and change nothing


def read_keras(path: str) -> tuple[Cell, torch.Tensor]:
    """The cell (kind, size, readout, gate function, GRU variant) and flat (P,) float64 parameters
    of a Keras model file; InputError naming what is not supported."""
    if not os.path.exists(path):
        raise InputError(f"Keras model file {path} does not exist")
    try:
        import h5py
    except ImportError:  # pragma: no cover - the keras extra installs it
        raise InputError(f"reading {path} needs h5py: pip install h5py (or 'rnn-landscape[keras]')") from None
    with open_regular(path, "Keras model file", limit=MAX_LOAD) as f:
        data = f.read()
    try:
        if path.endswith(".keras"):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                if "config.json" not in z.namelist() or "model.weights.h5" not in z.namelist():
                    raise InputError(
                        f"{path} is not a Keras 3 model: it lacks config.json or model.weights.h5"
                    )
                config = parse_json(z.read("config.json").decode(), f"{path}'s config.json")
                weights = z.read("model.weights.h5")
            with h5py.File(io.BytesIO(weights), "r") as h5:
                layers = _chain(config, path)
                return _model(layers, _keras3_weights(h5, layers, path), keras2=False, path=path)
        with h5py.File(io.BytesIO(data), "r") as h5:
            text = h5.attrs.get("model_config")
            if text is None:
                raise InputError(f"{path} holds no model_config: it is a weights-only file, not a model")
            text = text.decode() if isinstance(text, bytes) else str(text)
            version = h5.attrs.get("keras_version", b"2")
            version = version.decode() if isinstance(version, bytes) else str(version)
            layers = _chain(parse_json(text, f"{path}'s model_config"), path)
            return _model(layers, _h5_weights(h5, layers, path), keras2=version.startswith("2"), path=path)
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
        raise InputError(
            f"cannot read Keras model file {path}: {str(e).splitlines()[0] if str(e) else e}"
        ) from None


def _chain(config, path: str) -> list[dict]:
    """The model's layers in order, as {"class_name", "name", "config"}: a Sequential's list, or a
    functional model's layers, which must form one chain."""
    if not isinstance(config, dict) or config.get("class_name") not in ("Sequential", "Functional", "Model"):
        found = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise InputError(f"{path} holds a {found!r} model; supported: Sequential or functional models")
    inner = config.get("config")
    layers = inner if isinstance(inner, list) else (inner or {}).get("layers")  # Keras 2.1 lists them bare
    if not isinstance(layers, list):
        raise InputError(f"{path}'s model config lists no layers")
    out = []
    for layer in layers:
        if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
            raise InputError(f"{path}'s model config holds a malformed layer")
        if layer.get("class_name") in SKIPPED:
            continue
        cfg = layer["config"]
        out.append(
            dict(class_name=layer.get("class_name"), name=cfg.get("name", layer.get("name")), config=cfg)
        )
    kinds = [layer["class_name"] for layer in out]
    ok = (
        len(kinds) >= 2
        and kinds[-1] == "Dense"
        and all(k in RECURRENT for k in kinds[:-1])
        and len(set(kinds[:-1])) == 1
    )
    if not ok:
        raise InputError(
            f"{path} has layers {kinds}; supported: one or more SimpleRNN, LSTM or GRU layers of "
            "one kind, then one Dense readout"
        )
    rec, kind = out[:-1], kinds[0]
    units = {layer["config"].get("units") for layer in rec}
    if len(units) != 1:
        raise InputError(
            f"{path}'s {kind} layers have {sorted(units)} units; stacked layers of one size "
            "are supported (torch.nn's num_layers)"
        )
    for i, layer in enumerate(rec):
        c = layer["config"]
        bad = [
            k
            for k, v in (
                ("activation", c.get("activation", "tanh") != "tanh"),
                ("use_bias", not c.get("use_bias", True)),
                ("go_backwards", c.get("go_backwards")),
                ("stateful", c.get("stateful")),
                ("return_sequences", bool(c.get("return_sequences")) != (i < len(rec) - 1)),
            )
            if v
        ]
        if bad:
            raise InputError(
                f"{path}'s layer {layer['name']!r} has {', '.join(bad)} set as the toolkit's "
                "models do not: tanh, biases, forward, stateless, sequences returned by every "
                "layer but the last"
            )
    return out


def _keras3_weights(h5, layers: list[dict], path: str) -> list[list[np.ndarray]]:
    """Each layer's variables in Keras's order (kernel, recurrent kernel, bias; a Dense's kernel,
    bias) from a Keras 3 ``model.weights.h5``: ``layers/<name>/cell/vars`` or ``layers/<name>/vars``."""
    out, seen = [], {}
    for layer in layers:
        # Keras 3 files name a model's layers by class, counted within the model: lstm, lstm_1, dense
        base = SNAKE.get(layer["class_name"], layer["class_name"].lower())
        key = base if not seen.get(base) else f"{base}_{seen[base]}"
        seen[base] = seen.get(base, 0) + 1
        group = h5.get(f"layers/{key}")
        group = h5.get(f"layers/{layer['name']}") if group is None else group
        if group is None:
            raise InputError(f"{path} has no weights for layer {layer['name']!r}")
        vars_ = group.get("cell/vars") if layer["class_name"] in RECURRENT else group.get("vars")
        if vars_ is None:
            raise InputError(f"{path} has no variables for layer {layer['name']!r}")
        out.append([np.asarray(vars_[str(k)]) for k in range(len(vars_))])
    return out


def _h5_weights(h5, layers: list[dict], path: str) -> list[list[np.ndarray]]:
    """Each layer's variables from an ``.h5`` model file (``model_weights/<name>`` with its
    ``weight_names``), put in Keras's order by their names (kernel, recurrent_kernel, bias)."""
    root = h5.get("model_weights", h5)
    out = []
    for layer in layers:
        group = root.get(layer["name"])
        if group is None:
            raise InputError(f"{path} has no weights for layer {layer['name']!r}")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
        found = {n.rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[n]) for n in names}
        order = (
            ("kernel", "recurrent_kernel", "bias") if layer["class_name"] in RECURRENT else ("kernel", "bias")
        )
        missing = [k for k in order if k not in found]
        if missing:
            raise InputError(f"{path}'s layer {layer['name']!r} lacks {', '.join(missing)}")
        out.append([found[k] for k in order])
    return out


def _model(
    layers: list[dict], weights: list[list[np.ndarray]], *, keras2: bool, path: str
) -> tuple[Cell, torch.Tensor]:
    """The cell and flat parameters of a checked chain of layers and their variables."""
    kind = layers[0]["class_name"]
    name = RECURRENT[kind]
    rec, dense = layers[:-1], layers[-1]["config"]
    H = int(rec[0]["config"]["units"])
    gate, reset = "sigmoid", "after"
    if name in ("lstm", "gru"):
        act = rec[0]["config"].get("recurrent_activation", "hard_sigmoid" if keras2 else "sigmoid")
        if act == "hard_sigmoid" and keras2:
            gate = "hard_sigmoid"  # Keras 2's clip(0.2 x + 0.5, 0, 1)
        elif act != "sigmoid":
            raise InputError(
                f"{path}'s recurrent_activation {act!r} is not supported; valid: sigmoid, or "
                "Keras 2's hard_sigmoid"
            )
    if name == "gru":
        reset = "after" if rec[0]["config"].get("reset_after", not keras2) else "before"
    K, act = dense.get("units"), dense.get("activation", "linear")
    heads = {
        ("sigmoid", 1): ("logit", None),
        ("softmax", 2): ("softmax2", None),
        ("linear", 1): ("linear", None),
    }
    head, classes = heads.get(
        (act, K), ("softmax", K) if act == "softmax" and isinstance(K, int) and K > 2 else (None, None)
    )
    if head is None:
        raise InputError(
            f"{path}'s Dense readout is {K} unit(s) of {act!r}; supported: sigmoid of 1, softmax "
            "of 2 or more, linear of 1"
        )
    inputs = int(np.asarray(weights[0][0]).shape[0])
    cell = get_cell(
        name, head=head, classes=classes, gru_reset=reset, gate=gate, hidden=H, inputs=inputs, layers=len(rec)
    )
    parts = []
    for (w, u, b), layer in zip((ws for ws in weights[:-1]), rec, strict=True):
        parts += _recurrent(name, np.asarray(w), np.asarray(u), np.asarray(b), H, reset, path, layer["name"])
    wd, bd = weights[-1]
    parts += [np.asarray(wd).T.reshape(-1), np.asarray(bd).reshape(-1)]
    theta = torch.from_numpy(np.concatenate([p.reshape(-1) for p in parts]).astype(np.float64))
    if theta.numel() != cell.n_params or not torch.isfinite(theta).all():
        raise InputError(
            f"{path}'s weights ({theta.numel()} values) do not fit a {name} model of "
            f"{cell.size_text()} ({cell.n_params}), or are not finite"
        )
    return cell, theta


def _recurrent(
    name: str, w: np.ndarray, u: np.ndarray, b: np.ndarray, H: int, reset: str, path: str, layer: str
) -> list[np.ndarray]:
    """One recurrent layer's Keras variables as torch.nn's weight_ih, weight_hh, bias_ih, bias_hh."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[name]
    if w.ndim != 2 or u.shape != (H, G * H) or w.shape[1] != G * H:
        raise InputError(
            f"{path}'s layer {layer!r} has kernels {w.shape} and {u.shape}; a {name} of {H} units "
            f"needs (inputs, {G * H}) and ({H}, {G * H})"
        )
    two = name == "gru" and reset == "after"
    if b.shape != ((2, G * H) if two else (G * H,)):
        raise InputError(f"{path}'s layer {layer!r} has a bias of shape {b.shape}")
    b_ih, b_hh = (b[0], b[1]) if two else (b, np.zeros_like(b))

    def order(a: np.ndarray) -> np.ndarray:  # Keras's GRU gates z, r, h -> torch.nn's r, z, n
        if name != "gru":
            return a
        z, r, n = np.split(a, 3, axis=-1)
        return np.concatenate([r, z, n], axis=-1)

    return [order(w).T, order(u).T, order(b_ih), order(b_hh)]
