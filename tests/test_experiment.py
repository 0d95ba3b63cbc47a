"""The latching experiment as a library (landscape.experiment): the configuration checks itself
in its own words, presets are replacements of it, and the command builds the same configuration."""

from __future__ import annotations

from dataclasses import replace

import pytest

from landscape import latching
from landscape._errors import ConfigError
from landscape.experiment import PROTOCOLS, QUICK, ExperimentConfig, run_experiment


def test_presets_are_replacements_and_the_command_builds_the_same():
    keras = ExperimentConfig.preset("keras", quick=True)
    assert {k: getattr(keras, k) for k in PROTOCOLS["keras"]} == PROTOCOLS["keras"]
    assert {k: getattr(keras, k) for k in QUICK} == QUICK
    cfg, _ = latching.parse(["--protocol", "keras", "--quick", "--gate", "sigmoid", "--samples", "50"])
    assert cfg == replace(keras, gate="sigmoid", samples=50)
    assert latching.parse([])[0] == ExperimentConfig()


@pytest.mark.parametrize(
    "change,field",
    [
        (dict(cells=("rnn", "rnn")), "cells"),
        (dict(cells=("pascanu",)), "cells"),
        (dict(tasks=()), "tasks"),
        (dict(samples=4), "samples"),
        (dict(val_frac=1.0), "val_frac"),
        (dict(units=0), "units"),
        (dict(seed=-1), "seed"),
        (dict(success=0.0), "success"),
        (dict(lengths=(0,)), "lengths"),
        (dict(lr=float("nan")), "lr"),
        (dict(protocol="tf"), "protocol"),
        (dict(epochs=10**9), "epochs"),
    ],
)
def test_bad_values_name_their_field(change, field):
    with pytest.raises(ConfigError) as e:
        ExperimentConfig(**change)
    assert e.value.param == field and "--" not in str(e.value)


def test_a_tiny_experiment_gives_a_row_per_model():
    cfg = ExperimentConfig(
        cells=("rnn", "gru"), tasks=("latching",), lengths=(3, 5), samples=20, repeats=2, epochs=1
    )
    rows = run_experiment(cfg, progress=False)
    assert len(rows) == 2 * 2 * 2 and {r.length for r in rows} == {3, 5}
    with pytest.raises(ConfigError):
        run_experiment({"cells": ("rnn",)})
