"""Shared fixtures: the independent references of ``references.py``, a user's own data file, and
hand-made surfaces for the renderers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before anything can import pyplot

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import landscape as ls  # noqa: E402

import references  # noqa: E402


class Ref:
    """``references`` under short names, for tests that take them as the ``ref`` fixture."""

    names = staticmethod(references.param_names)
    modules = staticmethod(references.torch_modules)
    init = staticmethod(references.torch_init)
    values = staticmethod(references.module_values)
    loss = staticmethod(references.torch_loss)
    grad = staticmethod(references.torch_grad)
    pascanu = staticmethod(references.pascanu_loss)
    MODULES = references.MODULES


@pytest.fixture
def ref() -> type[Ref]:
    """The independent torch.nn and Pascanu references."""
    return Ref


@pytest.fixture
def on_cpu(monkeypatch):
    """The tests' switch: backend='fused' on CPU tensors runs the GPU engine, interpreted."""
    from landscape.engine import gpu

    monkeypatch.setenv(gpu.ON_CPU, "1")
    assert gpu.serves("cpu") and gpu.available("cpu")


@pytest.fixture
def own_data(tmp_path):
    """A user's data file the package never generated: x (N, T) uniform, y random 0/1."""
    rng = np.random.default_rng(1234)
    x = rng.uniform(-2.0, 2.0, size=(24, 12))
    y = (rng.random(24) < 0.4).astype(np.int64)
    y[:2] = [0, 1]  # both classes present
    path = tmp_path / "own.npz"
    np.savez(path, x=x, y=y)
    return path, x, y.astype(np.float64)


@pytest.fixture
def path_surface() -> ls.Surface:
    """Two lengths with descent paths; the plain path leaves the window at step 2 for the second only."""
    x, y = np.linspace(0.0, 1.0, 6), np.linspace(0.0, 1.0, 5)
    loss = np.random.default_rng(0).random((2, 5, 6))
    plain = np.array(
        [[[0.2, 0.2], [0.3, 0.3], [0.4, 0.4], [0.5, 0.5]], [[0.2, 0.2], [0.6, 0.5], [1.4, 0.7], [3.0, 0.9]]]
    )
    clip = np.array([[[0.2, 0.2], [0.25, 0.25], [0.3, 0.3], [0.35, 0.35]]] * 2)
    paths = {
        "plain": ls.PathRun(plain, np.full((2, 4), 0.5), np.ones((2, 4)), np.zeros((2, 4))),
        "clip": ls.PathRun(clip, np.full((2, 4), 0.4), np.ones((2, 4)), np.zeros((2, 4))),
    }
    return ls.Surface(loss, x, y, np.array([10, 50]), "w", "b", {"cell": "pascanu"}, None, paths=paths)


@pytest.fixture
def nonfinite_surface() -> ls.Surface:
    """Three lengths with NaN, +-inf and zero cells, a panel all NaN, and an infinite gradient norm."""
    loss = np.random.default_rng(2).random((3, 4, 5))
    loss[0, 1, 1] = np.nan
    loss[0, 3, 4] = np.inf
    loss[1, 0, 0] = -np.inf
    loss[1, 2, 2] = 0.0
    loss[2] = np.nan  # a whole panel lost
    gn = np.abs(loss) + 1.0
    gn[0, 2, 3] = np.inf
    s = ls.Surface(
        loss,
        np.linspace(0, 1, 5),
        np.linspace(0, 1, 4),
        np.array([1, 2, 3]),
        "a",
        "b",
        {},
        None,
        ls.Grads(gn, gn, gn),
    )
    return s.with_parts(cliffs=ls.cliff_metrics(s))


def pytest_collection_modifyitems(config, items):
    """The browser's and the PDF readers' tests are slow as well (the second tier)."""
    for item in items:
        if item.get_closest_marker("browser") or item.get_closest_marker("pdf"):
            item.add_marker(pytest.mark.slow)
