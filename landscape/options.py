"""Options of the commands, declared once on the configuration fields they set: each field's
default, its help, and how argparse reads it (``Option`` in the field's metadata). The commands
build their parsers from the fields and the configurations from the parsed values, so a default
is written in one place; the field's name is the flag, with dashes, unless the option names one."""

from __future__ import annotations

from argparse import SUPPRESS
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields

__all__ = [
    "Option",
    "option",
    "as_flag",
    "flag_of",
    "add_options",
    "from_options",
    "given_options",
    "negative_flags",
]


@dataclass(frozen=True)
class Option:
    """How the command line sets a field: its help, and what argparse needs beyond the field's
    name (the flag is ``--`` and the name with dashes, unless given) and default. ``parse`` reads
    the flag's text after argparse (text -> value, naming the flag in its errors), with ``text``
    the default as one would type it; ``kind`` is argparse's type; ``negative`` a value that may
    start with '-'."""

    help: str
    flag: str | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    kind: Callable | None = None
    parse: Callable[[str, str], object] | None = None
    text: str | None = None
    switch: bool = False
    negative: bool = False


def option(default, help: str, **how) -> Field:
    """A configuration field with its default, written once, and how the command line sets it."""
    return field(default=default, metadata={"option": Option(help, **how)})


def as_flag(name: str) -> str:
    """A field's flag by the commands' rule: ``--`` and the name with dashes."""
    return "--" + name.replace("_", "-")


def flag_of(cls, name: str) -> str:
    """The command-line flag of a field of ``cls`` (a configuration dataclass): its option's own,
    or ``as_flag`` (also for a name that is not one of its fields)."""
    f = cls.__dataclass_fields__.get(name)
    how = f.metadata.get("option") if f is not None else None
    return how.flag if how and how.flag else as_flag(name)


def add_options(ap, cls, *, defaults: bool = True) -> None:
    """One argparse option for every field of ``cls`` that has an ``Option``, in field order, its
    default the field's (as typed, where it is parsed from text); without ``defaults``, an option
    not given is left out of the parsed values (so that a preset can fill it)."""
    for f in fields(cls):
        how: Option | None = f.metadata.get("option")
        if how is None:
            continue
        kw: dict = dict(dest=f.name, help=how.help)
        if not defaults:
            kw["default"] = SUPPRESS
            if "default" not in how.help and not how.switch:
                kw["help"] = f"{how.help} (default {how.text or f.default})"
        if how.switch:
            ap.add_argument(flag_of(cls, f.name), action="store_true", **kw)
            continue
        kw.setdefault("default", how.text if how.parse else f.default)
        for key, value in (("choices", how.choices), ("metavar", how.metavar), ("type", how.kind)):
            if value is not None:
                kw[key] = value
        ap.add_argument(flag_of(cls, f.name), **kw)


def from_options(cls, args, **extra):
    """An instance of ``cls`` from parsed options (``given_options``; a value not given keeps the
    field's default)."""
    return cls(**given_options(cls, args), **extra)


def given_options(cls, args) -> dict:
    """The fields of ``cls`` that the parsed options hold, each read by its ``parse`` where it has
    one."""
    values = {}
    for f in fields(cls):
        how: Option | None = f.metadata.get("option")
        if how is None or not hasattr(args, f.name):
            continue
        v = getattr(args, f.name)
        values[f.name] = how.parse(v, flag_of(cls, f.name)) if how.parse and v is not None else v
    return values


def negative_flags(cls) -> tuple[str, ...]:
    """The flags whose value may start with '-' (ranges and points)."""
    return tuple(
        flag_of(cls, f.name)
        for f in fields(cls)
        if f.metadata.get("option") and f.metadata["option"].negative
    )
