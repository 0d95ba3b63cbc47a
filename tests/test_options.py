"""The command's options come from the configuration's fields (landscape.options): the parser's
defaults give the configuration's defaults, every field has its flag, and a field's error is said
in the flag's words."""

from __future__ import annotations

from dataclasses import fields

from landscape import slice as cli
from landscape.config import SliceConfig
from landscape.options import flag_of, from_options, negative_flags

from harness import run_cli


def test_no_flags_is_the_default_configuration():
    args = cli.build_parser().parse_args([])
    assert from_options(SliceConfig, args) == SliceConfig()


def test_every_field_is_an_option_with_its_flag():
    ap = cli.build_parser()
    flags = {a.dest: a.option_strings for a in ap._actions}
    for f in fields(SliceConfig):
        assert flags[f.name] == [flag_of(SliceConfig, f.name)], f.name
    assert flag_of(SliceConfig, "lengths") == "--len" and flag_of(SliceConfig, "tile_rows") == "--tile-rows"
    assert set(negative_flags(SliceConfig)) == {"--xrange", "--yrange", "--start"}


def test_a_field_error_names_the_flag(capsys):
    code, _, err = run_cli(cli.main, ["--len", "0", "--quiet"], capsys)
    assert code == 2 and "--len" in err and "lengths" not in err
    code, _, err = run_cli(cli.main, ["--tile-rows", "0", "--quiet"], capsys)
    assert code == 2 and "--tile-rows" in err, err
