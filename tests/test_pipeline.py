"""The library pipeline: slice_surface and write_slice against the public functions called by hand,
and the configuration's checks that the pipeline's stages rely on."""

import os

import numpy as np
import pytest
import torch

import landscape as ls
from landscape._errors import ConfigError


def test_slice_surface_equals_the_recipe_by_hand():
    """The stages call the library's bodies past their checks; the numbers are those of the
    public functions called one by one."""
    cfg = ls.SliceConfig(
        cell="gru",
        lengths=(3, 6),
        res=(4, 5),
        samples=12,
        seed=3,
        start=(0.1, 0.2),
        steps=3,
        grad=True,
        dtype="float64",
    )
    surf = ls.slice_surface(cfg)
    cell = ls.get_cell("gru")
    center = ls.init_params(cell, seed=3)
    plane = ls.axis_plane(cell, center, res=(4, 5))
    datas = [ls.make_data("latching", n, n=12, noise=0.1, seed=3) for n in (3, 6)]
    ref = ls.compute_surface(cell, plane, datas, dtype=torch.float64, grad=True, progress=False)
    np.testing.assert_array_equal(surf.loss, ref.loss)
    np.testing.assert_array_equal(surf.grads.norm, ref.grads.norm)
    paths = ls.paths_for_lengths(cell, datas, plane, start=(0.1, 0.2), lr=0.01, steps=3, clip=1.0)
    np.testing.assert_array_equal(surf.paths["clip"].coords, paths["clip"].coords)
    np.testing.assert_array_equal(surf.cliffs.max_jump, ls.cliff_metrics(ref).max_jump)


def test_random_plane_stage_equals_random_plane():
    cfg = ls.SliceConfig(
        cell="lstm", lengths=(4,), plane="random", res=(3, 3), samples=8, seed=5, norm="model"
    )
    surf = ls.slice_surface(cfg)
    cell = ls.get_cell("lstm")
    plane = ls.random_plane(ls.init_params(cell, seed=5), seed=5, norm="model", res=(3, 3))
    ref = ls.compute_surface(cell, plane, [ls.make_data("latching", 4, n=8, seed=5)], progress=False)
    np.testing.assert_array_equal(surf.loss, ref.loss)


def test_write_slice_writes_what_the_command_writes(tmp_path, capsys):
    cfg = ls.SliceConfig(cell="pascanu", lengths=(3, 5), res=(3, 4))
    paths = ls.write_slice(cfg, ls.Outputs(str(tmp_path), progress=False))
    stem = os.path.join(str(tmp_path), "pascanu_pascanu_w-b_L3-5")
    assert paths == [stem + ".npz", stem + ".png", stem + "_cliffs.png", stem + ".html"]
    assert all(os.path.getsize(p) > 0 for p in paths)
    np.testing.assert_array_equal(ls.load_surface(stem + ".npz").loss, ls.slice_surface(cfg).loss)
    assert "max jump" in capsys.readouterr().out  # the cliff table


@pytest.mark.parametrize("args", [("pascanu", ls.Outputs()), (ls.SliceConfig(cell="pascanu"), "figures")])
def test_write_slice_refuses_other_types(args, tmp_path):
    with pytest.raises(ls.InputError, match="SliceConfig and Outputs"):
        ls.write_slice(*args)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize(
    "fields,field,needle",
    [
        (dict(cell="rnn", x="w_zz"), "x", "valid: w_ih, w_hh, b_ih, b_hh, w_out, b_out"),
        (dict(cell="lstm", y="nope"), "y", "w_hh_f"),
        (dict(cell="rnn", x="w_hh", y="w_hh"), "x", "different parameters"),
        (dict(cell="rnn", y="w_hh"), "x", "different parameters"),  # the default x is w_hh
        (dict(noise=-1.0), "noise", ">= 0"),
        (dict(noise=float("inf")), "noise", "finite"),
    ],
)
def test_config_checks_what_the_stages_trust(fields, field, needle):
    with pytest.raises(ConfigError) as e:
        ls.SliceConfig(**fields)
    assert e.value.param == field and needle in str(e.value)


def test_trained_centre_refuses_a_run_too_long_before_allocating_it():
    """A billion epochs would be a schedule of terabytes: refused before it is drawn."""
    cfg = ls.SliceConfig(cell="rnn", lengths=(3,), res=(3, 3), samples=10, center="trained", epochs=10**9)
    with pytest.raises(ls.InputError, match="optimizer steps"):
        ls.slice_surface(cfg)
