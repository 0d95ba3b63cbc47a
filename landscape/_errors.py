"""The one exception type for bad input."""


class InputError(ValueError):
    """Bad input from the user: an unknown name, a malformed range, a broken file.

    The command-line tools print its message as one line and exit with status 2.
    """
