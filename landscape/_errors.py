"""The one exception type for bad input, and the checks every boundary shares."""

import math
import numbers


class InputError(ValueError):
    """Bad input from the user: an unknown name, a malformed range, a broken file.

    The command-line tools print its message as one line and exit with status 2.
    """


MAX_SEED = 2**32 - 1  # seeds are combined with indices; numpy and torch both take these


def check_seed(seed, name: str = "seed") -> int:
    """A seed as an int in [0, 2**32 - 1], or InputError naming it and the valid range."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Real) or not math.isfinite(seed) \
            or int(seed) != seed or not 0 <= seed <= MAX_SEED:
        raise InputError(f"{name} {seed!r} must be an integer from 0 to {MAX_SEED}")
    return int(seed)
