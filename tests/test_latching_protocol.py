"""The Keras protocol's options through the command lines and the H-unit ensembles, against
torch.nn modules; bad values answered with one line and exit 2."""

import csv

import numpy as np
import pytest
import torch

import landscape as ls
from landscape.latching import main as latching
from landscape.slice import main as slice_main
from landscape.units import forward_logits, init_theta

from harness import one_line_error
from references import torch_logits, torch_modules


def test_slice_keras_init_softmax_head(tmp_path):
    assert (
        slice_main(
            [
                "--cell",
                "lstm",
                "--len",
                "6",
                "--init",
                "keras",
                "--head",
                "softmax2",
                "--x",
                "w_out_0",
                "--y",
                "b_out_1",
                "--res",
                "5",
                "--samples",
                "40",
                "--seed",
                "3",
                "--quiet",
                "--format",
                "png",
                "--out",
                str(tmp_path),
                "--name",
                "k",
            ]
        )
        == 0
    )
    surf = ls.load_surface(str(tmp_path / "k.npz"))
    assert surf.config["init"] == "keras" and surf.config["head"] == "softmax2"
    assert (surf.xlabel, surf.ylabel) == ("w_out_0", "b_out_1")
    # the centre column/row: the Keras-initialized model itself, forget bias 1
    cell = ls.get_cell("lstm", head="softmax2")
    center = ls.init_params(cell, seed=3, init="keras")
    assert center[cell.param_names.index("b_ih_f")] == 1.0
    data = ls.make_data("latching", 6, n=40, seed=3)
    i = int(np.argmin(np.abs(surf.y - center[cell.param_names.index("b_out_1")].item())))
    j = int(np.argmin(np.abs(surf.x - center[cell.param_names.index("w_out_0")].item())))
    theta = center.clone()
    theta[cell.param_names.index("w_out_0")] = float(surf.x[j])
    theta[cell.param_names.index("b_out_1")] = float(surf.y[i])
    want, _ = ls.losses(cell, data.to(torch.float32, "cpu"), theta[None].float())
    assert surf.loss[0, i, j] == pytest.approx(want.item(), rel=1e-5)


def test_bad_protocol_values(capsys, tmp_path):
    out = ["--out", str(tmp_path), "--quiet"]
    one_line_error(
        capsys,
        lambda: slice_main(["--cell", "pascanu", "--head", "softmax2", *out]),
        "pascanu",
        "softmax2",
        "rnn, lstm, gru",
    )
    one_line_error(capsys, lambda: slice_main(["--cell", "rnn", "--gru-reset", "before", *out]), "gru")
    one_line_error(
        capsys,
        lambda: slice_main(["--cell", "rnn", "--head", "softmax2", "--x", "w_out", *out]),
        "w_out",
        "w_out_0",
    )
    for argv in (["--protocol", "tf"], ["--init", "jax"], ["--split", "random"], ["--optimizer", "adamw"]):
        with pytest.raises(SystemExit) as e:
            latching([*argv, *out])
        assert e.value.code == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("split", [[], ["--keras-split"]])
def test_latching_keras_protocol(tmp_path, split):
    argv = [
        "--protocol",
        "keras",
        "--cells",
        "rnn,gru",
        "--tasks",
        "latching",
        "--lengths",
        "2,4",
        "--samples",
        "50",
        "--repeats",
        "2",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "--quiet",
        *split,
    ]
    assert latching(argv) == 0
    stem = "keras_protocol_split" if split else "keras_protocol"
    with open(tmp_path / f"{stem}.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2 and {r["cell"] for r in rows} == {"rnn", "gru"}


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_two_logit_head_with_hidden_units_matches_torch_nn(name):
    """nn.RNN/LSTM/GRU(1, 3) + nn.Linear(3, 2): the logit of class 1 against class 0 is z_1 - z_0."""
    cell = ls.get_cell(name, head="softmax2")
    x = torch.randn(2, 7, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theta = torch.stack([init_theta(cell, 3, seed=s, init=init) for s, init in ((0, "torch"), (1, "keras"))])
    logits = forward_logits(cell, theta, x, torch.tensor([5, 3]), 3)
    for m, n in enumerate((5, 3)):
        rnn, head = torch_modules(name, theta[m], hidden=3, classes=2)  # checks the parameter count
        with torch.no_grad():
            z = torch_logits(rnn, head, x[m, :, :n])  # (7, 2)
        np.testing.assert_allclose(logits[m].numpy(), (z[:, 1] - z[:, 0]).numpy(), rtol=1e-12, atol=1e-13)
