"""Tiled sweeps: a local Dask cluster of worker processes equals the in-process run; a run killed
with SIGKILL resumes, recomputing only the missing (or broken) tiles, into the same surface file;
a run directory of another configuration is refused.

Dask is the optional extra ``distributed``; these tests skip without it, and fail instead where
``LANDSCAPE_REQUIRE_DASK`` is set (CI)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from landscape import slice as cli

pytestmark = pytest.mark.slow  # processes, clusters and whole sweeps

JOB = [
    "--cell",
    "gru",
    "--len",
    "60,100",
    "--res",
    "61",
    "--samples",
    "400",
    "--grad",
    "--quiet",
    "--format",
    "png",
    "--backend",
    "reference",
]


def arrays(path):
    with np.load(path) as f:
        return {k: f[k] for k in ("loss", "accuracy", "grad_norm", "grad_x", "grad_y")}


def assert_same(a, b):
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_local_cluster_equals_in_process(tmp_path, capsys):
    try:
        import distributed  # noqa: F401
    except ImportError:
        if os.environ.get("LANDSCAPE_REQUIRE_DASK"):
            pytest.fail("dask.distributed must be installed here", pytrace=False)
        pytest.skip("dask.distributed is not installed (pip install 'rnn-landscape[distributed]')")
    small = [
        "--cell",
        "lstm",
        "--len",
        "5,9",
        "--res",
        "9,7",
        "--samples",
        "30",
        "--grad",
        "--quiet",
        "--format",
        "png",
        "--tile-rows",
        "2",
        "--out",
        str(tmp_path),
    ]
    assert cli.main([*small, "--name", "here"]) == 0
    assert cli.main([*small, "--name", "dask", "--workers", "2"]) == 0
    assert_same(arrays(tmp_path / "here.npz"), arrays(tmp_path / "dask.npz"))
    assert not (tmp_path / "dask.tiles").exists()  # the finished run's tiles are cleared


# The run kills itself with SIGKILL right after its fifth tile lands: a kill at a known point,
# whatever the machine's speed.
KILLED = """
import os, signal, sys
from landscape import rundir, slice as cli
save, landed = rundir.RunDir.save, []
def save_then_die(self, tile, arrays):
    save(self, tile, arrays)
    landed.append(tile)
    if len(landed) == 5:
        os.kill(os.getpid(), signal.SIGKILL)
rundir.RunDir.save = save_then_die
sys.exit(cli.main(sys.argv[1:]))
"""
RESUMED = [
    "--cell",
    "gru",
    "--len",
    "20,40",
    "--res",
    "21",
    "--samples",
    "100",
    "--grad",
    "--quiet",
    "--format",
    "png",
    "--backend",
    "reference",
]


def test_killed_run_resumes_and_recomputes_only_missing_tiles(tmp_path, capsys):
    out = tmp_path / "o"
    argv = [*RESUMED, "--tile-rows", "1", "--out", str(out), "--name", "s"]
    proc = subprocess.run([sys.executable, "-c", KILLED, *argv], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-500:]
    tiles = out / "s.tiles"
    finished = sorted(tiles.glob("tile_*.npz"))
    assert len(finished) == 5  # killed after its fifth tile, of 2 lengths x 21 rows
    assert not (out / "s.npz").exists()
    finished[0].write_bytes(b"not a tile")  # a damaged tile is found and computed again
    capsys.readouterr()
    assert cli.main(argv) == 0
    said = capsys.readouterr().out
    assert "tiles: 4 of 42 already done, 38 to compute" in said, said
    assert cli.main([*RESUMED, "--tile-rows", "1", "--out", str(tmp_path / "whole"), "--name", "s"]) == 0
    assert_same(arrays(out / "s.npz"), arrays(tmp_path / "whole" / "s.npz"))
    assert not tiles.exists()


def test_another_configuration_is_refused(tmp_path, capsys):
    out = tmp_path / "o"
    tiles = out / "s.tiles"
    tiles.mkdir(parents=True)
    (tiles / "manifest.json").write_text('{"format": 2, "config": {"cell": "gru", "samples": 123}}')
    code = cli.main([*JOB, "--tile-rows", "4", "--out", str(out), "--name", "s"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "another configuration" in err[0] and "samples" in err[0]
    assert sorted(p.name for p in tiles.iterdir()) == ["manifest.json"]


def test_bad_tile_options(tmp_path, capsys):
    for argv, needle in (
        (["--tile-rows", "0"], "--tile-rows"),
        (["--workers", "0"], "--workers"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
    ):
        code = cli.main(["--res", "3", "--len", "3", "--quiet", *argv, "--out", str(tmp_path)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and needle in err[0], err


def needs_dask():
    try:
        import distributed  # noqa: F401
    except ImportError:
        if os.environ.get("LANDSCAPE_REQUIRE_DASK"):
            pytest.fail("dask.distributed must be installed here", pytrace=False)
        pytest.skip("dask.distributed is not installed (pip install 'rnn-landscape[distributed]')")


SMALL = ["--res", "3", "--len", "3", "--samples", "20", "--quiet", "--format", "png"]


@pytest.mark.parametrize(
    "address,needle",
    [
        ("not-an-address", "needs a port"),
        ("", "not an address"),
        ("127.0.0.1", "needs a port"),
        ("127.0.0.1:99999", "needs a port"),
        ("ucx://127.0.0.1:8786", "'ucx'"),
        ("inproc://x", "'inproc'"),
        ("tls://127.0.0.1:8786", "'tls'"),
        ("tcp://[::1", "not an address"),
        ("tcp://a b:1", "not a host"),
    ],
)
def test_a_bad_scheduler_address_is_one_line_before_any_work(address, needle, tmp_path, capsys):
    code = cli.main([*SMALL, "--scheduler", address, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--scheduler" in err[0] and needle in err[0], err
    assert not (tmp_path / "o").exists()


def test_too_many_local_workers_are_refused(tmp_path, capsys):
    code = cli.main([*SMALL, "--workers", "256", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--workers 256" in err[0] and "cores" in err[0], err
    assert not (tmp_path / "o").exists()


def _port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd):
    return subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.mark.parametrize("workers", ["none", "without the package"])
def test_a_scheduler_that_cannot_serve_is_answered_within_its_timeout(workers, tmp_path, capsys):
    needs_dask()
    port = _port()
    procs = [
        _start(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", str(port), "--no-dashboard"]
        )
    ]
    try:
        time.sleep(3)
        if workers != "none":  # a worker on which `import landscape` fails
            procs.append(
                _start(
                    [
                        sys.executable,
                        "-c",
                        "import sys; sys.modules['landscape'] = None; "
                        "from distributed.cli.dask_worker import main; main()",
                        f"tcp://127.0.0.1:{port}",
                        "--no-nanny",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                    ]
                )
            )
            time.sleep(3)
        t0 = time.monotonic()
        code = cli.main(
            [*SMALL, "--scheduler", f"127.0.0.1:{port}", "--timeout", "4", "--out", str(tmp_path / "o")]
        )
        took = time.monotonic() - t0
    finally:
        for p in procs:
            p.kill()
            p.wait()
    err = capsys.readouterr().err.strip().splitlines()
    needle = "no worker after 4 s" if workers == "none" else "cannot import landscape"
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert took < 30, took
    assert not (tmp_path / "o").exists() or os.listdir(tmp_path / "o") == []


def test_an_unreachable_scheduler_leaves_nothing(tmp_path, capsys):
    needs_dask()
    code = cli.main(
        [*SMALL, "--scheduler", f"tcp://127.0.0.1:{_port()}", "--timeout", "2", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "cannot reach" in err[0], err
    assert not (tmp_path / "o").exists() or os.listdir(tmp_path / "o") == []
