"""The one exception type for bad input, and the checks every boundary shares."""

import math
import numbers
import re
from collections.abc import Callable

import torch


class InputError(ValueError):
    """Bad input from the user: an unknown name, a malformed range, a broken file.

    The command-line tools print its message as one line and exit with status 2.
    """


class ConfigError(InputError):
    """A bad configuration value. ``param`` names the field (with its ``value``, if given); the
    message may name others as ``{field}`` or ``{field=value}``. The library says them as fields
    (``center='trained'``); a command line says them as its flags with ``render``
    (``--center trained``)."""

    def __init__(self, param: str, message: str, *, value: str | None = None):
        head = "{" + param + ("" if value is None else "=" + value) + "} "
        self.param, self.template = param, head + message
        super().__init__(self.render(lambda name: name, lambda name, value: f"{name}={value!r}"))

    def render(self, name: Callable[[str], str], pair: Callable[[str, str], str] | None = None) -> str:
        pair = pair or (lambda n, v: f"{name(n)} {v}")
        return re.sub(
            r"\{(\w+)(?:=([^}]*))?\}",
            lambda m: pair(m[1], m[2]) if m[2] is not None else name(m[1]),
            self.template,
        )


def require(ok: bool, param: str, message: str) -> None:
    """A configuration's one way of refusing a field: ConfigError(param, message) unless ``ok``."""
    if not ok:
        raise ConfigError(param, message)


MAX_SEED = 2**32 - 1  # seeds are combined with indices; numpy and torch both take these


def check_seed(seed, name: str = "seed") -> int:
    """A seed as an int in [0, 2**32 - 1], or InputError naming it and the valid range."""
    return check_int(seed, name, lo=0, hi=MAX_SEED)


def check_int(value, name: str, *, lo: int = 1, hi: int | None = None) -> int:
    """An integer in [lo, hi] (a float that is whole counts), or InputError naming it and the range."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or int(value) != value
        or value < lo
        or (hi is not None and value > hi)
    ):
        span = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
        raise InputError(f"{name} {value!r} must be an integer {span}")
    return int(value)


def check_number(
    value, name: str, *, lo: float = -math.inf, hi: float = math.inf, above: bool = False
) -> float:
    """A finite real number in [lo, hi] (or above lo, strictly), or InputError naming it."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < lo
        or value > hi
        or (above and value == lo)
    ):
        bounds = [f"> {lo:g}" if above else f">= {lo:g}"] if lo > -math.inf else []
        bounds += [f"<= {hi:g}"] if hi < math.inf else []
        raise InputError(f"{name} {value!r} must be a finite number {' and '.join(bounds)}".rstrip())
    return float(value)


def check_type(value, kind: type, name: str):
    """``value`` itself if it is a ``kind``, else InputError naming what was given."""
    if not isinstance(value, kind):
        raise InputError(f"{name} must be a {kind.__name__}, not {type(value).__name__}")
    return value


def check_vector(v, n: int | None, name: str) -> torch.Tensor:
    """A model's flat parameter vector: a real, floating-point 1-D tensor (of n values, when given)."""
    if (
        not isinstance(v, torch.Tensor)
        or v.ndim != 1
        or not v.is_floating_point()
        or (n is not None and v.numel() != n)
    ):
        shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        want = n if n is not None else "P"
        raise InputError(f"{name} must be a real tensor of shape ({want},), not {shape}")
    return check_real(v, name)


def check_real(t: torch.Tensor, name: str) -> torch.Tensor:
    """``t`` itself if it holds float32 or float64 numbers (the types computed in), else InputError:
    float16 and bfloat16 would lose the cliffs to rounding without a word."""
    if t.dtype not in DTYPES.values():
        raise InputError(f"{name} must hold float32 or float64 numbers, not {t.dtype}")
    return t


DTYPES = {"float32": torch.float32, "float64": torch.float64}  # the floating-point types computed in


def check_dtype(dtype) -> torch.dtype:
    """A torch dtype from its name or itself, float32 or float64."""
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    raise InputError(f"dtype {dtype!r} is unknown; valid: {', '.join(DTYPES)}")


def check_device(device) -> torch.device:
    """A torch device, cpu or cuda (where one is present)."""
    try:
        dev = torch.device(device) if isinstance(device, (str, torch.device)) else None
    except RuntimeError:  # torch's answer to an unknown device string
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise InputError(f"device {device!r} is unknown; valid: cpu, cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r}: no CUDA device is available here; valid: cpu")
    return dev
