"""The latching experiment command, in-process, on a tiny protocol."""

import csv

import pytest

import landscape as ls
from landscape import latching
from landscape.train import make_splits, train_ensemble

TINY = [
    "--cells",
    "rnn,gru",
    "--tasks",
    "latching",
    "--lengths",
    "2,4",
    "--samples",
    "40",
    "--repeats",
    "2",
    "--epochs",
    "1",
    "--batch",
    "8",
    "--quiet",
]


def test_writes_csv_and_figures(tmp_path, capsys):
    assert latching.main([*TINY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "frequency of success" in out
    for ext in ("csv", "png", "pdf", "html"):
        assert (tmp_path / f"latching.{ext}").stat().st_size > 0
    rows = list(csv.DictReader((tmp_path / "latching.csv").read_text().splitlines()))
    assert len(rows) == 2 * 2 * 2  # cells x lengths x repeats
    assert {r["cell"] for r in rows} == {"rnn", "gru"}
    for r in rows:
        assert int(r["success"]) == int(float(r["val_acc"]) >= 0.9)


def test_keras_split_gives_one_class_validation(tmp_path, capsys, ref):
    """With the posted split every validation set is the last 20% of label-ordered data, all
    negatives, so a model's validation accuracy is the share of negatives it predicts: checked
    model by model against torch.nn on that set."""
    assert latching.main([*TINY, "--keras-split", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "latching_keras.csv").read_text().splitlines()))
    assert len(rows) == 8
    datas = [ls.make_data("latching", n, n=40, noise=0.1, seed=n) for n in (2, 4)]
    res = train_ensemble(
        ls.get_cell("gru"), datas, repeats=2, epochs=1, batch=8, keras_split=True, progress=False
    )
    _, val = make_splits(datas, 2, val_frac=0.2, seed=0, keras_split=True)
    for m in range(4):
        d = datas[m // 2]
        x, y = d.x.numpy()[val[m].numpy()], d.y.numpy()[val[m].numpy()]
        assert y.sum() == 0 and len(y) == 8  # one class only
        _, acc = ref.loss("gru", res.theta[m].tolist(), x, y)
        assert res.val_acc[m, -1] == pytest.approx(acc, abs=1e-6)
        mine = [
            r
            for r in rows
            if r["cell"] == "gru" and int(r["length"]) == d.length and int(r["repeat"]) == m % 2
        ]
        assert float(mine[0]["val_acc"]) == pytest.approx(acc, abs=1e-6)


def test_bad_input(tmp_path, capsys):
    for args, needle in (
        (["--cells", "pascanu"], "pascanu"),
        (["--tasks", "pascanu"], "pascanu"),
        (["--units", "0"], "--units"),
        (["--units", "2000"], "--units"),
        (["--lengths", "0"], "0"),
    ):
        code = latching.main([*TINY, *args, "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and needle in err
    assert not (tmp_path / "o").exists()


def test_multi_unit_models(tmp_path, capsys):
    """--units 8 on bit relay, as in the reply: the CSV records the size, the title names it."""
    args = [*TINY, "--tasks", "relay", "--units", "8", "--name", "relay8", "--out", str(tmp_path)]
    assert latching.main(args) == 0
    rows = list(csv.DictReader((tmp_path / "relay8.csv").read_text().splitlines()))
    assert len(rows) == 8 and {r["units"] for r in rows} == {"8"} and {r["task"] for r in rows} == {"relay"}


def test_keras_protocol_gates_are_keras_2s_hard_sigmoid():
    args, _ = latching.parse(["--protocol", "keras", "--quick"])
    assert args.gate == "hard_sigmoid"
    assert latching.parse(["--protocol", "keras", "--gate", "sigmoid", "--quick"])[0].gate == "sigmoid"
    assert latching.parse(["--quick"])[0].gate == "sigmoid"


def test_slice_with_hard_sigmoid_gates(tmp_path, capsys):
    """The gate function reaches both engines (the same map) and the record; a cell without gates
    refuses it in one line."""
    import numpy as np

    from landscape.slice import main

    common = [
        "--cell",
        "gru",
        "--gate",
        "hard_sigmoid",
        "--len",
        "6",
        "--res",
        "5,4",
        "--samples",
        "20",
        "--quiet",
        "--format",
        "png",
        "--out",
        str(tmp_path),
    ]
    assert main([*common, "--backend", "fused", "--name", "f"]) == 0
    assert main([*common, "--backend", "reference", "--name", "r"]) == 0
    assert (
        main(
            [
                *common[:2],
                "--len",
                "6",
                "--res",
                "5,4",
                "--samples",
                "20",
                "--quiet",
                "--format",
                "png",
                "--out",
                str(tmp_path),
                "--name",
                "s",
            ]
        )
        == 0
    )
    f, r, s = (ls.load_surface(tmp_path / f"{n}.npz") for n in "frs")
    np.testing.assert_allclose(f.loss, r.loss, rtol=2e-5, atol=2e-6)
    assert f.config["gate"] == "hard_sigmoid" and s.config["gate"] == "sigmoid"
    assert not np.allclose(f.loss, s.loss)
    capsys.readouterr()
    assert main(["--cell", "rnn", "--gate", "hard_sigmoid", "--out", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hard_sigmoid" in err[0] and "lstm, gru" in err[0]
    assert not (tmp_path / "no").exists()
