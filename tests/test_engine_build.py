"""The kernel cache is trusted by nothing but what was recorded when the kernel was built here: a
planted library is never loaded (its constructor never runs), a cut-short, foreign or random file
is built again, a cache folder others may write to is not used, and without a compiler the
reference path serves. Every case gives the same numbers as a clean cache."""

import os
import subprocess

import numpy as np
import pytest
import torch

import landscape as ls
from landscape.backends import resolve_backend
from landscape.engine import build as K
from landscape.engine.fused import run_fused

PLANTED = """
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen("%s", "w");
    if (f) { fputs("ran", f); fclose(f); }
}
int ls_abi(void) { return 4; }
long ls_args_size(void) { return 184; }
int ls_run(void) { return 1; } int ls_vmath(void) { return 1; } int ls_compiler(void) { return 1; }
"""


@pytest.fixture(autouse=True)
def needs_compiler():
    if not K.available():
        if os.environ.get("LANDSCAPE_REQUIRE_FUSED"):
            pytest.fail(f"the fused kernel must build here: {K.unavailable_reason()}", pytrace=False)
        pytest.skip(f"no C compiler: {K.unavailable_reason()}")


def final_states():
    cell = ls.get_cell("lstm")
    theta = torch.randn(5, len(cell.param_names), generator=torch.Generator().manual_seed(0))
    x = torch.randn(7, 11, generator=torch.Generator().manual_seed(1))
    return run_fused(cell, theta, x, steps=11)[0]


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A cache folder of this test's own and a process that has loaded no kernel yet."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LANDSCAPE_CACHE", str(cache))
    monkeypatch.setattr(K, "_state", {})
    return cache


def plant(path, kind, tmp_path):
    """Put ``kind`` at the cache path, in place of the kernel built there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    if kind == "constructor":
        src = tmp_path / "planted.c"
        src.write_text(PLANTED % (tmp_path / "PWNED"))
        subprocess.run(["cc", "-shared", "-fPIC", "-o", str(path), str(src)], check=True)
        (path.parent / (path.name + ".sha256")).write_text("0" * 64)  # a forged record
    elif kind == "truncated":
        built = K.build(str(path.parent))
        with open(built, "r+b") as f:
            f.truncate(os.path.getsize(built) // 3)
    elif kind == "no symbols":
        src = tmp_path / "empty.c"
        src.write_text("int nothing(void) { return 0; }\n")
        subprocess.run(["cc", "-shared", "-fPIC", "-o", str(path), str(src)], check=True)
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(100000))
    elif kind == "libm":
        libm = next(
            p
            for p in (
                "/lib/x86_64-linux-gnu/libm.so.6",
                "/lib/aarch64-linux-gnu/libm.so.6",
                "/usr/lib/libm.so.6",
                "/lib64/libm.so.6",
            )
            if os.path.exists(p)
        )
        path.symlink_to(libm)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["constructor", "truncated", "no symbols", "random", "libm"])
def test_a_poisoned_cache_is_built_again(kind, fresh, tmp_path, capfd):
    expected = final_states()  # from the clean kernel, built in this test's cache
    path = fresh / K._key()
    plant(path, kind, tmp_path)
    K._state.clear()
    np.testing.assert_array_equal(final_states().numpy(), expected.numpy())
    assert not (tmp_path / "PWNED").exists()  # the planted library was never loaded
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not used" in err[0] and "building it again" in err[0], err
    if kind == "libm":  # not its own file: left alone, the kernel built in a private folder
        assert path.is_symlink()
    else:
        assert path.is_file() and not path.is_symlink()
        K._state.clear()  # the rebuilt cache is trusted from now on, silently
        final_states()
        assert capfd.readouterr().err == ""


@pytest.mark.slow
@pytest.mark.parametrize("mode", [0o1777, 0o775])
def test_a_cache_folder_others_may_write_is_never_loaded_from(mode, fresh, tmp_path, capfd):
    expected = final_states()
    plant(fresh / K._key(), "constructor", tmp_path)
    fresh.chmod(mode)
    K._state.clear()
    np.testing.assert_array_equal(final_states().numpy(), expected.numpy())
    assert not (tmp_path / "PWNED").exists()
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "writable by others" in err[0] and "not loaded from" in err[0], err
    assert sorted(p.name for p in fresh.iterdir()) == [K._key(), K._key() + ".sha256"]  # nothing added


@pytest.mark.slow
def test_a_cache_folder_of_another_user_is_never_loaded_from(fresh, tmp_path, capfd):
    if os.getuid() != 0:
        pytest.skip("only root can give a folder to another user")  # the mode test covers the rest
    expected = final_states()
    plant(fresh / K._key(), "constructor", tmp_path)
    os.chown(fresh, 65534, 65534)
    K._state.clear()
    np.testing.assert_array_equal(final_states().numpy(), expected.numpy())
    assert not (tmp_path / "PWNED").exists()
    assert "owned by another user" in capfd.readouterr().err


def test_without_a_compiler_the_reference_path_serves(fresh, monkeypatch, capsys):
    monkeypatch.setenv("CC", str(fresh / "no-such-compiler"))
    assert not K.available() and "no-such-compiler" in K.unavailable_reason()
    assert resolve_backend("auto", device="cpu", work=1e12) == "reference"
    cell = ls.get_cell("rnn")
    with pytest.raises(ls.InputError, match="needs a C compiler"):
        run_fused(cell, torch.zeros(2, len(cell.param_names)), torch.zeros(3, 4), steps=4)


@pytest.mark.slow
def test_a_clang_built_kernel_agrees_with_the_reference_path(fresh, monkeypatch):
    """The kernel's vector functions are its own, so clang (macOS's compiler) builds the same
    kernel; CI installs Debian's clang and requires this test to run."""
    import shutil

    clang = shutil.which("clang")
    if clang is None:
        if os.environ.get("LANDSCAPE_REQUIRE_CLANG"):
            pytest.fail("clang must be installed here (LANDSCAPE_REQUIRE_CLANG)", pytrace=False)
        pytest.skip("no clang")
    monkeypatch.setenv("CC", clang)
    assert K.available(), K.unavailable_reason()
    assert b"clang" in K.library().ls_compiler().lower()  # this very library, not one loaded before
    for name in ("rnn", "lstm", "gru"):
        cell = ls.get_cell(name)
        d = ls.make_data("latching", 15, n=40, seed=5).to(torch.float64, "cpu")
        theta = ls.init_params(cell, seed=1)[None] + torch.randn(
            6, len(cell.param_names), generator=torch.Generator().manual_seed(2), dtype=torch.float64
        )
        lf, _, gf = ls.loss_and_grad(cell, d, theta, backend="fused")
        lr, _, gr = ls.loss_and_grad(cell, d, theta, backend="reference")
        np.testing.assert_allclose(lf.numpy(), lr.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gf.numpy(), gr.numpy(), rtol=1e-11, atol=1e-13)
    assert any(p.name.startswith("fused-") for p in fresh.iterdir())


@pytest.mark.slow
def test_auto_takes_the_kernel_only_where_the_probe_finds_it_vectorized(fresh, monkeypatch, capsys):
    """The probe is measured once per library and kept beside it; a kernel slower than a
    vectorized tanh (a compiler that did not vectorize it) leaves 'auto' on the reference path,
    with one line saying why."""
    import sys

    backends = sys.modules["landscape.backends"]
    found = K.probe()
    assert found["vectorized"], found  # this machine's compilers vectorize the kernel
    record = fresh / (K._key() + ".probe")
    assert record.is_file()
    monkeypatch.setattr(K, "_state", {})
    monkeypatch.setattr(K, "_measure", lambda: pytest.fail("measured again"))
    assert K.probe() == found  # read back, not measured again
    slow = {"vectorized": False, "why": "its tanh ran at 1e+07/s, under 0.3 of torch.tanh's 1e+09/s"}
    monkeypatch.setattr(backends, "probe", lambda: slow)
    capsys.readouterr()
    assert resolve_backend("auto", work=1e12) == "reference"
    assert resolve_backend("auto", work=1e12) == "reference"
    assert resolve_backend("fused", work=1e12) == "fused"  # asked for by name, it runs
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not used" in err[0] and "1e+07/s" in err[0]
