"""Property-based tests of the command line's value parsers: good text round-trips, bad text is
an InputError naming the text, and no text makes them raise anything else."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from landscape import InputError
from landscape._cli import parse_lengths, parse_range, parse_res
from landscape.planes import MAX_COORD

FEW = settings(max_examples=60, deadline=None, database=None)  # no .hypothesis/ folder
finite = st.floats(allow_nan=False, allow_infinity=False)
texty = st.text(alphabet=st.sampled_from("0123456789-+.,:eEinfaxyz _"), max_size=12) | st.text(max_size=8)


@FEW
@given(finite, finite)
def test_range_round_trips(a, b):
    lo, hi = min(a, b), max(a, b)
    text = f"{lo!r}:{hi!r}"
    if lo < hi and max(abs(lo), abs(hi)) <= MAX_COORD:
        assert parse_range(text, "--xrange") == (lo, hi)
    else:
        with pytest.raises(InputError, match="--xrange"):
            parse_range(text, "--xrange")


@FEW
@given(finite, finite)
def test_reversed_range_is_rejected(a, b):
    lo, hi = min(a, b), max(a, b)
    with pytest.raises(InputError) as e:
        parse_range(f"{hi!r}:{lo!r}", "--yrange")
    assert f"{hi!r}:{lo!r}" in str(e.value) and "--yrange" in str(e.value)


@pytest.mark.parametrize(
    "text",
    [
        "4:-4",
        "1:2:3",
        "x:y",
        "nan:1",
        "1:nan",
        "-inf:0",
        "0:inf",
        "1e400:1e401",
        "3",
        "",
        ":",
        "1:",
        ":1",
        "2:2",
        "-0.0:0.0",
    ],
)
def test_bad_ranges(text):
    with pytest.raises(InputError, match="--xrange"):
        parse_range(text, "--xrange")


@FEW
@given(texty)
def test_range_never_crashes(text):
    try:
        lo, hi = parse_range(text, "--xrange")
    except InputError as e:
        assert repr(text) in str(e)
    else:
        assert math.isfinite(lo) and math.isfinite(hi) and lo < hi


@FEW
@given(st.integers(2, 10**6), st.integers(2, 10**6))
def test_res_round_trips(nx, ny):
    assert parse_res(str(nx)) == (nx, nx)
    assert parse_res(f"{nx},{ny}") == (nx, ny)


@FEW
@given(st.integers(-(10**6), 1), st.integers(-(10**6), 10**6))
def test_res_below_two_is_rejected(bad, other):
    for text in (str(bad), f"{bad},{other}", f"{abs(other) + 2},{bad}"):
        with pytest.raises(InputError, match="--res"):
            parse_res(text)


@FEW
@given(texty)
def test_res_never_crashes(text):
    try:
        nx, ny = parse_res(text)
    except InputError as e:
        assert repr(text) in str(e)
    else:
        assert isinstance(nx, int) and isinstance(ny, int) and nx >= 2 and ny >= 2


@FEW
@given(st.lists(st.integers(1, 10**5), min_size=1, max_size=8))
def test_lengths_round_trip(lengths):
    assert parse_lengths(",".join(map(str, lengths))) == lengths


@FEW
@given(
    st.lists(st.integers(1, 500), max_size=4),
    st.integers(-(10**4), 0),
    st.lists(st.integers(1, 500), max_size=4),
)
def test_non_positive_length_is_rejected(before, bad, after):
    text = ",".join(map(str, [*before, bad, *after]))
    with pytest.raises(InputError, match="--len"):
        parse_lengths(text)


@FEW
@given(texty)
def test_lengths_never_crash(text):
    try:
        out = parse_lengths(text)
    except InputError as e:
        assert repr(text) in str(e)
    else:
        assert out and all(isinstance(n, int) and n >= 1 for n in out)
