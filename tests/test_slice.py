"""The command line, in process: files written, values against torch.nn, and every bad input."""

from __future__ import annotations

import contextlib
import io
import json
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import landscape as ls
from landscape import render
from landscape import slice as cli

from harness import assert_one_line_error, printed_paths, run_cli

SMALL = ["--quiet", "--res", "3,4", "--len", "5", "--samples", "16"]
KEYS = {"loss", "x", "y", "lengths", "xlabel", "ylabel", "config", "accuracy"}


def load_npz(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def assert_self_contained_html(path):
    html = Path(path).read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, flags=re.I)  # no CDN, nothing fetched
    assert "plotly.js v" in html and "Plotly.newPlot(" in html  # the bundle is inlined
    assert len(html) > 1_000_000


def assert_png(path):
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """One run with default options but a tiny grid, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("default")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main([*SMALL, "--out", str(out)])
    return code, buf.getvalue(), out


def test_default_run_writes_three_files(default_run):
    code, stdout, out = default_run
    assert code == 0
    paths = printed_paths(stdout)
    assert len(paths) == 3
    assert [Path(p).suffix for p in paths] == [".npz", ".png", ".html"]
    assert all(Path(p).parent == out and Path(p).is_file() for p in paths)
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(p).name for p in paths)  # no temporaries
    assert Path(paths[0]).stem == "rnn_latching_w_hh-b_hh_L5"
    assert_png(paths[1])
    assert_self_contained_html(paths[2])


def test_default_run_npz_contents(default_run):
    _, stdout, _ = default_run
    arrays = load_npz(printed_paths(stdout)[0])
    assert set(arrays) >= KEYS
    assert arrays["loss"].shape == arrays["accuracy"].shape == (1, 4, 3)
    assert arrays["loss"].dtype == np.float32
    np.testing.assert_array_equal(arrays["lengths"], [5])
    np.testing.assert_array_equal(arrays["x"], np.linspace(-4, 4, 3))
    np.testing.assert_array_equal(arrays["y"], np.linspace(-4, 4, 4))
    assert (str(arrays["xlabel"]), str(arrays["ylabel"])) == ("w_hh", "b_hh")
    config = json.loads(str(arrays["config"]))
    assert config["version"] == ls.__version__
    want = dict(
        cell="rnn",
        task="latching",
        lengths=[5],
        plane="axis",
        x="w_hh",
        y="b_hh",
        res=[3, 4],
        xrange=[-4.0, 4.0],
        yrange=[-4.0, 4.0],
        center="init",
        samples=16,
        noise=0.1,
        seed=0,
        dtype="float32",
    )
    assert {k: config[k] for k in want} == want
    assert np.all(np.isfinite(arrays["loss"]))


def test_default_run_matches_torch(default_run, ref):
    """The float32 default against the float64 reference, on the same seeded data and init."""
    _, stdout, _ = default_run
    arrays = load_npz(printed_paths(stdout)[0])
    data = ls.make_data("latching", 5, n=16, noise=0.1, seed=0)
    values = ref.values("rnn", *ref.init("rnn", 0))
    for i, b in enumerate(arrays["y"]):
        for j, w in enumerate(arrays["x"]):
            loss, acc = ref.loss("rnn", {**values, "w_hh": w, "b_hh": b}, data.x.numpy(), data.y.numpy())
            assert arrays["loss"][0, i, j] == pytest.approx(loss, rel=1e-4)
            assert arrays["accuracy"][0, i, j] == acc


def test_render_rewrites_figures(default_run, tmp_path, capsys):
    _, stdout, _ = default_run
    npz = printed_paths(stdout)[0]
    code, out, err = run_cli(render.main, [npz, "--out", str(tmp_path / "r"), "--scale", "log"], capsys)
    assert (code, err) == (0, "")
    paths = out.splitlines()
    stem = str(tmp_path / "r" / Path(npz).stem)
    assert paths[0].startswith("explorer page: ") and paths[0].endswith(" MB")
    paths = paths[1:]
    assert paths == [stem + ".png", stem + ".html"]
    assert_png(paths[0])
    assert_self_contained_html(paths[1])


def test_render_beside_the_file(tmp_path, capsys):
    code, out, _ = run_cli(cli.main, [*SMALL, "--out", str(tmp_path), "--name", "s"], capsys)
    assert code == 0
    (tmp_path / "s.png").unlink()
    (tmp_path / "s.html").unlink()
    code, out, err = run_cli(render.main, [str(tmp_path / "s.npz")], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [str(tmp_path / "s.png"), str(tmp_path / "s.html")]
    assert out.splitlines()[0].startswith("explorer page: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.html", "s.npz", "s.png"]


def test_sweep_of_lengths(tmp_path, capsys):
    code, out, _ = run_cli(cli.main, [*SMALL, "--len", "3,5", "--out", str(tmp_path)], capsys)
    assert code == 0
    paths = printed_paths(out)
    arrays = load_npz(paths[0])
    assert arrays["loss"].shape == arrays["accuracy"].shape == (2, 4, 3)
    np.testing.assert_array_equal(arrays["lengths"], [3, 5])
    assert Path(paths[0]).name == "rnn_latching_w_hh-b_hh_L3-5.npz"
    assert Path(paths[0]).suffix == ".npz" and Path(paths[-1]).suffix == ".html"
    assert all(Path(p).is_file() for p in paths)
    for p in paths[1:-1]:  # the heatmaps, and for a sweep the cliff plot
        assert_png(p)


def test_non_square_orientation_with_own_data(tmp_path, capsys, own_data, ref):
    """--res 3,5 is nx = 3, ny = 5; loss[k, i, j] is the model at (x[j], y[i])."""
    path, x, y = own_data
    args = [
        "--quiet",
        "--out",
        str(tmp_path),
        "--cell",
        "lstm",
        "--data",
        str(path),
        "--len",
        "4,7",
        "--res",
        "3,5",
        "--x",
        "w_ih_o",
        "--y",
        "b_hh_g",
        "--xrange",
        "-2:1",
        "--yrange",
        "-1:3",
        "--dtype",
        "float64",
        "--seed",
        "5",
    ]
    code, out, err = run_cli(cli.main, args, capsys)
    assert (code, err) == (0, "")
    a = load_npz(printed_paths(out)[0])
    assert a["loss"].shape == a["accuracy"].shape == (2, 5, 3)
    assert a["x"].shape == (3,) and a["y"].shape == (5,)
    np.testing.assert_array_equal(a["x"], [-2.0, -0.5, 1.0])
    np.testing.assert_array_equal(a["y"], [-1.0, 0.0, 1.0, 2.0, 3.0])
    assert json.loads(str(a["config"]))["data"] == str(path)
    values = ref.values("lstm", *ref.init("lstm", 5))
    for k, length in enumerate((4, 7)):
        for i in range(5):
            for j in range(3):
                theta = {**values, "w_ih_o": a["x"][j], "b_hh_g": a["y"][i]}
                loss, acc = ref.loss("lstm", theta, x[:, :length], y)
                np.testing.assert_allclose(a["loss"][k, i, j], loss, rtol=1e-9)
                assert a["accuracy"][k, i, j] == acc


@pytest.mark.parametrize(
    "cell,xname,yname", [("rnn", "w_hh", "b_ih"), ("lstm", "w_hh_g", "b_hh_f"), ("gru", "w_ih_z", "b_hh_n")]
)
def test_checkpoint_centre_matches_torch(cell, xname, yname, tmp_path, capsys, own_data, ref):
    path, x, y = own_data
    rnn, head = ref.init(cell, 1000 + len(cell))
    ck = tmp_path / "model.pt"
    torch.save({"cell": cell, "rnn": rnn.state_dict(), "head": head.state_dict()}, ck)
    values = ref.values(cell, rnn, head)
    out_dir = tmp_path / "out"
    args = [
        "--quiet",
        "--out",
        str(out_dir),
        "--cell",
        cell,
        "--center",
        str(ck),
        "--dtype",
        "float64",
        "--data",
        str(path),
        "--len",
        "6",
        "--res",
        "4,3",
        "--x",
        xname,
        "--y",
        yname,
        "--xrange",
        "-3:2",
        "--yrange",
        "-2.5:2.5",
    ]
    code, out, err = run_cli(cli.main, args, capsys)
    assert (code, err) == (0, "")
    a = load_npz(printed_paths(out)[0])
    assert a["loss"].shape == (1, 3, 4)
    for i, b in enumerate(a["y"]):
        for j, w in enumerate(a["x"]):
            loss, acc = ref.loss(cell, {**values, xname: w, yname: b}, x[:, :6], y)
            np.testing.assert_allclose(a["loss"][0, i, j], loss, rtol=1e-9)
            assert a["accuracy"][0, i, j] == acc


def test_checkpoint_centre_of_random_plane(tmp_path, capsys, own_data, ref):
    path, x, y = own_data
    rnn, head = ref.init("gru", 77)
    ck = tmp_path / "gru.pt"
    torch.save({"cell": "gru", "rnn": rnn.state_dict(), "head": head.state_dict()}, ck)
    args = [
        "--quiet",
        "--out",
        str(tmp_path / "o"),
        "--cell",
        "gru",
        "--center",
        str(ck),
        "--plane",
        "random",
        "--dtype",
        "float64",
        "--data",
        str(path),
        "--len",
        "5",
        "--res",
        "5,3",
        "--norm",
        "model",
    ]
    code, out, _ = run_cli(cli.main, args, capsys)
    assert code == 0
    a = load_npz(printed_paths(out)[0])
    assert a["loss"].shape == (1, 3, 5) and a["x"][2] == 0.0 and a["y"][1] == 0.0
    loss, acc = ref.loss("gru", ref.values("gru", rnn, head), x[:, :5], y)
    np.testing.assert_allclose(a["loss"][0, 1, 2], loss, rtol=1e-9)
    assert a["accuracy"][0, 1, 2] == acc
    assert (str(a["xlabel"]), str(a["ylabel"])) == ("d1", "d2")


def test_generated_relay_data_is_wired(tmp_path, capsys, ref):
    args = [
        "--quiet",
        "--out",
        str(tmp_path),
        "--cell",
        "gru",
        "--task",
        "relay",
        "--len",
        "6",
        "--res",
        "3",
        "--samples",
        "20",
        "--noise",
        "0.3",
        "--seed",
        "4",
        "--dtype",
        "float64",
    ]
    code, out, _ = run_cli(cli.main, args, capsys)
    assert code == 0
    a = load_npz(printed_paths(out)[0])
    data = ls.make_data("relay", 6, n=20, noise=0.3, seed=4)
    values = ref.values("gru", *ref.init("gru", 4))
    for i, j in [(0, 0), (1, 2), (2, 1)]:
        theta = {**values, "w_hh_n": a["x"][j], "b_hh_z": a["y"][i]}
        loss, acc = ref.loss("gru", theta, data.x.numpy(), data.y.numpy())
        np.testing.assert_allclose(a["loss"][0, i, j], loss, rtol=1e-9)
        assert a["accuracy"][0, i, j] == acc


def test_pascanu_cli_matches_scalar_loop(tmp_path, capsys, ref):
    args = [
        "--quiet",
        "--out",
        str(tmp_path),
        "--cell",
        "pascanu",
        "--len",
        "3,12",
        "--res",
        "4,3",
        "--dtype",
        "float64",
    ]
    code, out, _ = run_cli(cli.main, args, capsys)
    assert code == 0
    a = load_npz(printed_paths(out)[0])
    assert "accuracy" not in a
    assert a["loss"].shape == (2, 3, 4)
    np.testing.assert_array_equal(a["x"], np.linspace(4.5, 5.5, 4))
    np.testing.assert_array_equal(a["y"], np.linspace(-3.0, -2.0, 3))
    want = [[[ref.pascanu(w, b, n) for w in a["x"]] for b in a["y"]] for n in (3, 12)]
    np.testing.assert_allclose(a["loss"], want, rtol=1e-12, atol=1e-15)


def test_negative_ranges_parse(tmp_path, capsys):
    args = [*SMALL, "--out", str(tmp_path), "--xrange", "-3:-1", "--yrange=-0.5:2"]
    code, out, err = run_cli(cli.main, args, capsys)
    assert (code, err) == (0, "")
    a = load_npz(printed_paths(out)[0])
    np.testing.assert_array_equal(a["x"], [-3.0, -2.0, -1.0])
    assert (a["y"][0], a["y"][-1]) == (-0.5, 2.0)


def _random_run(tmp_path, name, seed, capsys):
    args = [
        "--quiet",
        "--out",
        str(tmp_path / name),
        "--plane",
        "random",
        "--res",
        "3,5",
        "--len",
        "4,6",
        "--samples",
        "12",
        "--seed",
        str(seed),
        "--name",
        "r",
    ]
    code, out, _ = run_cli(cli.main, args, capsys)
    assert code == 0
    return load_npz(tmp_path / name / "r.npz")


@pytest.mark.slow
def test_same_seed_same_arrays_different_seed_different(tmp_path, capsys):
    a = _random_run(tmp_path, "a", 3, capsys)
    b = _random_run(tmp_path, "b", 3, capsys)
    c = _random_run(tmp_path, "c", 4, capsys)
    assert set(a) == set(b) and set(a) >= KEYS
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].dtype == b[k].dtype
    assert not np.array_equal(a["loss"], c["loss"])
    assert json.loads(str(c["config"]))["seed"] == 4


# ---------------------------------------------------------------------------------------------
# Bad input: exit 2, one line on stderr naming the value, no traceback, nothing written.


@pytest.fixture
def bad_inputs(tmp_path):
    """Files for the bad-input cases, in tmp_path/in; the output folder is tmp_path/out."""
    d = tmp_path / "in"
    d.mkdir()
    torch.manual_seed(0)
    lin = nn.Linear(1, 1).state_dict()
    torch.save({"cell": "gru", "rnn": nn.GRU(1, 1).state_dict(), "head": lin}, d / "gru.pt")
    torch.save(
        {"cell": "lstm", "rnn": nn.LSTM(1, 2).state_dict(), "head": nn.Linear(2, 1).state_dict()}, d / "h2.pt"
    )
    torch.save(
        {"cell": "lstm", "rnn": nn.LSTM(1, 2).state_dict(), "head": nn.Linear(3, 1).state_dict()},
        d / "h2head3.pt",
    )
    sd = nn.RNN(1, 1).state_dict()
    for k in sd:
        sd[k].zero_()
    sd["weight_hh_l0"].fill_(1.5)
    torch.save(
        {"cell": "rnn", "rnn": sd, "head": {k: torch.zeros_like(v) for k, v in lin.items()}}, d / "zeros.pt"
    )
    (d / "junk.pt").write_bytes(np.random.default_rng(0).bytes(256))
    (d / "empty.pt").write_bytes(b"")
    (d / "text.npz").write_text("x,y\n1,0\n")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)), np.array([0, 1] * 4)
    np.savez(d / "noy.npz", x=x)
    np.savez(d / "y2.npz", x=x, y=np.array([0, 1, 2, 0, 1, 0, 1, 0]))
    np.savez(d / "short.npz", x=x, y=y)
    np.save(d / "plain.npy", x)
    return tmp_path


CASES = [
    (["--cell", "foo"], ["'foo'"]),
    (["--task", "bar"], ["'bar'"]),
    (["--x", "nosuch"], ["'nosuch'"]),
    (["--x", "w_hh", "--y", "w_hh"], ["'w_hh'"]),
    (["--x", "b_hh"], ["'b_hh'"]),  # --y defaults to b_hh
    (["--len", "0"], ["'0'"]),
    (["--len", "-3"], ["'-3'"]),
    (["--len", "abc"], ["'abc'"]),
    (["--len", "5,,6"], ["'5,,6'"]),
    (["--len", "2.5"], ["'2.5'"]),
    (["--res", "1"], ["--res '1'"]),
    (["--res", "a,b"], ["'a,b'"]),
    (["--res", "3,4,5"], ["'3,4,5'"]),
    (["--res", "0,5"], ["'0,5'"]),
    (["--xrange", "4:-4"], ["'4:-4'"]),
    (["--xrange", "1:2:3"], ["'1:2:3'"]),
    (["--xrange", "x:y"], ["'x:y'"]),
    (["--xrange", "nan:1"], ["'nan:1'"]),
    (["--xrange", "2:2"], ["'2:2'"]),
    (["--xrange", "-1:-2"], ["'-1:-2'"]),
    (["--yrange", "-inf:1"], ["--yrange", "'-inf:1'"]),
    (["--yrange", "1e400:1e401"], ["'1e400:1e401'"]),
    (["--center", "{in}/nonexistent.pt"], ["nonexistent.pt"]),
    (["--center", "bogus"], ["'bogus'"]),
    (["--cell", "lstm", "--center", "{in}/gru.pt"], ["gru.pt", "'gru'"]),
    (["--cell", "lstm", "--units", "1", "--center", "{in}/h2.pt"], ["--units 1", "h2.pt"]),
    (["--cell", "lstm", "--center", "{in}/h2head3.pt"], ["head.weight", "(1, 2)"]),
    (["--cell", "lstm", "--inputs", "2", "--center", "{in}/h2.pt"], ["--inputs 2", "h2.pt"]),
    (["--cell", "lstm", "--units", "0"], ["--units 0"]),
    (["--cell", "lstm", "--x", "weight_hh_l0[0,9]"], ["weight_hh_l0[0,9]", "w_hh_g"]),
    (["--cell", "lstm", "--units", "3", "--x", "weight_hh_l0[0,9]"], ["weight_hh_l0[0,9]", "j < 3"]),
    (["--cell", "lstm", "--units", "2", "--x", "w_hh_g", "--y", "weight_hh_l0[4,0]"], ["both are"]),
    (["--cell", "gru", "--inputs", "2"], ["--inputs 2", "the 1 of the latching task"]),
    (["--center", "{in}/junk.pt"], ["junk.pt"]),
    (["--plane", "random", "--center", "{in}/zeros.pt"], ["--norm filter"]),
    (["--data", "{in}/text.npz"], ["text.npz"]),
    (["--data", "{in}/noy.npz"], ["noy.npz", "y"]),
    (["--data", "{in}/y2.npz"], ["y2.npz"]),
    (["--data", "{in}/short.npz", "--len", "9"], ["9"]),
    (["--data", "{in}/short.npz", "--len", "2,5"], ["5"]),
    (["--data", "{in}/missing.npz"], ["missing.npz"]),
    (["--cell", "pascanu", "--task", "latching"], ["'latching'"]),
    (["--cell", "rnn", "--task", "pascanu"], ["'pascanu'"]),
    (["--cell", "pascanu", "--data", "{in}/short.npz"], ["'pascanu'"]),
    (["--task", "relay", "--len", "1"], ["relay", "1"]),
    (["--task", "relay", "--len", "3,1"], ["relay", "1"]),
    (["--samples", "1"], ["--samples 1"]),
    (["--samples", "x"], ["'x'"]),
    (["--noise", "-1"], ["-1"]),
    (["--noise", "nan"], ["nan"]),
    (["--mem", "0"], ["--mem '0'"]),
    (["--mem", "lots"], ["'lots'"]),
    (["--plane", "random", "--x", "w_hh"], ["--x"]),
    (["--plane", "random", "--norm", "bogus"], ["'bogus'"]),
    (["--plane", "diagonal"], ["'diagonal'"]),
    (["--dtype", "float16"], ["'float16'"]),
    (["--seed", "1.5"], ["'1.5'"]),
    (["--len"], ["--len"]),
    (["--bogus"], ["--bogus"]),
    pytest.param(
        ["--device", "cuda"],
        ["cuda"],
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available"),
    ),
    # regressions: these two raised IndexError and TypeError tracebacks before
    (["--center", "{in}/empty.pt"], ["empty.pt"]),
    (["--data", "{in}/plain.npy"], ["plain.npy"]),
]


@pytest.mark.parametrize("args,needles", CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_input_exits_2_with_one_line(args, needles, bad_inputs, capsys):
    out_dir = bad_inputs / "out"
    args = [a.replace("{in}", str(bad_inputs / "in")) for a in args]
    code, out, err = run_cli(
        cli.main,
        ["--quiet", "--res", "3", "--len", "4", "--samples", "8", "--out", str(out_dir), *args],
        capsys,
    )
    assert_one_line_error(code, out, err, needles, out_dir, prog="python -m landscape.slice")


def _compressed_member_corrupted(arrays, path):
    np.savez_compressed(path, **arrays)
    b = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("loss.npy")
    fn_len, ex_len = struct.unpack("<HH", b[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + fn_len + ex_len
    b[start : start + 4] = b"\xff" * 4  # an invalid deflate block type; the zip directory is intact
    path.write_bytes(bytes(b))


RENDER_CASES = [
    pytest.param("missing", id="missing"),
    pytest.param("junk", id="random bytes"),
    pytest.param("nokeys", id="lacks loss"),
    pytest.param("badjson", id="config not JSON"),
    pytest.param("badshape", id="loss shape"),
    # regressions: these raised TypeError, zlib.error, ZeroDivisionError, ValueError, TypeError
    pytest.param("npy", id="npy file"),
    pytest.param("corrupt", id="corrupt member"),
    pytest.param("nolengths", id="no lengths"),
    pytest.param("nanx", id="nan x"),
    pytest.param("strloss", id="text loss"),
]


@pytest.mark.parametrize("kind", RENDER_CASES)
def test_render_of_broken_npz_exits_2(kind, tmp_path, capsys):
    good = dict(
        loss=np.ones((1, 3, 2)),
        x=np.array([0.0, 1.0]),
        y=np.array([0.0, 1.0, 2.0]),
        lengths=np.array([5]),
        xlabel=np.array("a"),
        ylabel=np.array("b"),
        config=np.array(json.dumps({"cell": "rnn"})),
    )
    path = tmp_path / "in" / "broken.npz"
    path.parent.mkdir()
    content = {
        "nokeys": {k: v for k, v in good.items() if k != "loss"},
        "badjson": {**good, "config": np.array("{oops")},
        "badshape": {**good, "loss": np.ones((1, 2, 3))},
        "nolengths": {**good, "lengths": np.zeros(0, dtype=np.int64), "loss": np.ones((0, 3, 2))},
        "nanx": {**good, "x": np.array([0.0, np.nan])},
        "strloss": {**good, "loss": np.full((1, 3, 2), "a")},
    }.get(kind)
    if kind == "junk":
        path.write_bytes(np.random.default_rng(0).bytes(400))
    elif kind == "npy":
        path = path.with_suffix(".npy")
        np.save(path, good["loss"])
    elif kind == "corrupt":
        _compressed_member_corrupted(good, path)
    elif content is not None:
        np.savez(path, **content)
    out_dir = tmp_path / "out"
    code, out, err = run_cli(render.main, [str(path), "--out", str(out_dir)], capsys)
    needles = ["shape"] if kind == "badshape" else [path.name]
    assert_one_line_error(code, out, err, needles, out_dir, prog="python -m landscape.render")


@pytest.mark.parametrize("args", [["--scale", "cubic"], ["--dpi", "x"], []])
def test_render_usage_errors(args, tmp_path, capsys):
    code, out, err = run_cli(render.main, [*args] if not args else [str(tmp_path / "a.npz"), *args], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_overflowed_losses_end_to_end(tmp_path, capsys):
    """float32 logits overflow for huge readout weights: the run still writes every file, quietly,
    and the figures count the non-finite cells. (Regression: cliff_metrics warned on inf - inf.)"""
    args = [
        "--quiet",
        "--out",
        str(tmp_path),
        "--x",
        "w_out",
        "--y",
        "b_out",
        "--xrange",
        "1e38:3e38",
        "--yrange",
        "-3e38:3e38",
        "--res",
        "3",
        "--len",
        "3,4",
        "--samples",
        "8",
        "--name",
        "inf",
    ]
    code, out, err = run_cli(cli.main, args, capsys)
    assert (code, err) == (0, "")
    surf = ls.load_surface(str(tmp_path / "inf.npz"))
    bad = [int(np.count_nonzero(~np.isfinite(z))) for z in surf.loss]
    assert all(bad)
    titles = [ax.get_title() for ax in ls.plot_facets(surf).axes if ax.get_title()]
    assert titles == [f"L = {n} ({b} non-finite)" for n, b in zip((3, 4), bad, strict=True)]


BIG = repr(float(np.finfo(np.float64).max))


@pytest.mark.parametrize(
    "xrange",
    [
        f"-{BIG}:{BIG}",  # regression: grid_coords overflowed on hi - lo, giving NaN coordinates
        "1e308:1.7e308",  # regression: accepted, then overflowed in cliff_metrics and matplotlib
    ],
)
def test_extreme_finite_ranges(xrange, tmp_path, capsys):
    """A range with finite ends beyond +-1e300 (where sums of coordinates overflow) is one line
    naming it and exit 2; one just inside works and has finite, increasing coordinates."""
    args = [*SMALL, "--out", str(tmp_path / "out"), "--xrange", xrange]
    code, out, err = run_cli(cli.main, args, capsys)
    assert_one_line_error(
        code, out, err, [xrange.split(":")[1], "1e+300"], tmp_path / "out", prog="python -m landscape.slice"
    )
    code, out, err = run_cli(
        cli.main, [*SMALL, "--out", str(tmp_path / "ok"), "--xrange", "9e299:1e300"], capsys
    )
    assert (code, err) == (0, "")
    a = load_npz(printed_paths(out)[0])
    assert np.all(np.isfinite(a["x"])) and np.all(np.diff(a["x"]) > 0)


def test_out_folder_that_is_a_file(tmp_path, capsys):
    """An unwritable --out is an OSError turned into one line and exit 2, the file left alone."""
    blocker = tmp_path / "taken"
    blocker.write_text("keep me")
    code, out, err = run_cli(cli.main, [*SMALL, "--out", str(blocker)], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and str(blocker) in err
    assert blocker.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
