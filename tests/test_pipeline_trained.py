"""--center trained and --plane pca: trained weights saved and reloadable, PCA geometry checked
against numpy's own covariance eigenvectors."""

import json

import numpy as np
import pytest
import torch

import landscape as ls
from landscape import slice as cli
from landscape.planes import pca_plane

SMALL = ["--samples", "40", "--res", "5", "--epochs", "2", "--batch", "8", "--quiet"]


def test_pca_plane_against_covariance_eigenvectors():
    gen = torch.Generator().manual_seed(0)
    scale = torch.tensor([3.0, 1.5, 0.2, 0.1, 0.05, 0.01], dtype=torch.float64)
    steps = torch.randn(30, 6, generator=gen, dtype=torch.float64) * scale
    path = torch.cumsum(steps, 0)  # (R, P): a random walk, the last row the centre
    plane, var = pca_plane(path, res=(5, 7))
    diff = (path - path[-1]).numpy()
    cov = np.cov(diff.T)
    w, v = np.linalg.eigh(cov)
    top = v[:, ::-1][:, :2]
    for d, ref in zip((plane.d1, plane.d2), top.T, strict=True):
        assert abs(abs(float(d @ torch.from_numpy(ref.copy()))) - 1) < 1e-10
    np.testing.assert_allclose(var, (w[::-1] / w.sum())[:2], rtol=1e-10)
    assert torch.equal(plane.origin, path[-1])
    assert plane.shape == (7, 5) and plane.x[2] == 0 and plane.y[3] == 0
    a, b, _ = plane.project(path)
    assert float(abs(a).max()) <= plane.x[-1] and float(abs(b).max()) <= plane.y[-1]


def test_pca_plane_rejects_a_degenerate_path():
    path = torch.linspace(0, 1, 10, dtype=torch.float64)[:, None] * torch.ones(1, 6, dtype=torch.float64)
    with pytest.raises(ls.InputError, match="fewer than two directions"):
        pca_plane(path)


def test_center_trained_saves_checkpoints_that_reload(tmp_path, capsys):
    code = cli.main(
        [
            "--cell",
            "gru",
            "--len",
            "4,6",
            "--center",
            "trained",
            *SMALL,
            "--out",
            str(tmp_path),
            "--name",
            "t",
            "--dtype",
            "float64",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    for n in (4, 6):
        assert str(tmp_path / f"t_L{n}.pt") in out
    surf = ls.load_surface(str(tmp_path / "t.npz"))
    cfg = json.loads(json.dumps(surf.config))
    assert cfg["center"] == "trained" and len(cfg["train"]["final_val_acc"]) == 2
    # slicing around the saved checkpoint gives the same surface, without training
    code = cli.main(
        [
            "--cell",
            "gru",
            "--len",
            "6",
            "--center",
            str(tmp_path / "t_L6.pt"),
            "--samples",
            "40",
            "--res",
            "5",
            "--quiet",
            "--out",
            str(tmp_path),
            "--name",
            "again",
            "--dtype",
            "float64",
        ]
    )
    assert code == 0
    again = ls.load_surface(str(tmp_path / "again.npz"))
    # the checkpoint stores float32 weights; the axis plane's free parameters come from it
    np.testing.assert_allclose(again.loss[0], surf.loss[1], rtol=1e-5)
    theta = ls.load_checkpoint(str(tmp_path / "t_L6.pt"), "gru")
    assert not torch.allclose(theta, ls.init_params("gru", seed=0).to(torch.float32).double())


def test_plane_pca_draws_the_training_path(tmp_path, capsys):
    code = cli.main(
        [
            "--cell",
            "rnn",
            "--len",
            "5",
            "--center",
            "trained",
            "--plane",
            "pca",
            *SMALL,
            "--out",
            str(tmp_path),
            "--name",
            "p",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "pc1 and pc2 explain" in out
    surf = ls.load_surface(str(tmp_path / "p.npz"))
    path = surf.paths["train"].coords  # (1, R, 2)
    steps = 2 * (32 // 8)  # 2 epochs of 32 training sequences in batches of 8
    assert path.shape == (1, steps + 1, 2)
    assert np.allclose(path[0, -1], 0, atol=1e-6)  # the path ends at the centre
    assert surf.xlabel == "pc1" and surf.ylabel == "pc2"
    # the loss stored along the path is the loss of the slice's data at those parameters
    centre = surf.loss[0, 2, 2]
    assert surf.paths["train"].loss[0, -1] == pytest.approx(float(centre), rel=1e-4)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--plane", "pca"], "--center trained"),
        (["--plane", "pca", "--center", "trained", "--x", "w_hh"], "--x"),
        (["--cell", "pascanu", "--center", "trained"], "pascanu"),
        (["--center", "trained", "--epochs", "0"], "--epochs"),
    ],
)
def test_bad_trained_options(args, needle, tmp_path, capsys):
    code = cli.main(
        [*args, "--samples", "20", "--res", "3", "--len", "3", "--quiet", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
