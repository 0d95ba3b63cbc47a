"""The latching experiment command, in-process, on a tiny protocol."""

import csv

import numpy as np

from landscape import latching

TINY = ["--cells", "rnn,gru", "--tasks", "latching", "--lengths", "2,4", "--samples", "40", "--repeats", "2",
        "--epochs", "1", "--batch", "8", "--quiet"]


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


def test_keras_split_gives_one_class_validation(tmp_path, capsys):
    """With the posted split every validation set is all negatives, so a model's validation
    accuracy is the share of negatives it predicts, and never a balanced score."""
    assert latching.main([*TINY, "--keras-split", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "latching_keras.csv").read_text().splitlines()))
    assert len(rows) == 8
    summary = latching.summarize([{**r, "length": int(r["length"]), "val_acc": float(r["val_acc"]),
                                   "success": int(r["success"])} for r in rows])
    assert all(np.all((s["mean_acc"] >= 0) & (s["mean_acc"] <= 1)) for s in summary.values())


def test_bad_input(tmp_path, capsys):
    for args, needle in ((["--cells", "pascanu"], "pascanu"), (["--tasks", "pascanu"], "pascanu"),
                         (["--units", "0"], "--units"), (["--units", "100"], "--units"),
                         (["--lengths", "0"], "0")):
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
