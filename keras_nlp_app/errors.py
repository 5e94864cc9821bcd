"""Errors a user can fix: what went wrong, where, and what to do about it.

The CLI turns every `UserError` into exit code 2 and one line on stderr; any other exception is
an internal error (exit code 1).
"""


class UserError(Exception):
    """Bad usage or bad input, reported as one line naming the file/line and the remedy."""


class DataError(UserError):
    """A data file that cannot be read as asked: missing, malformed, badly encoded."""

    def __init__(self, message, *, path=None, line=None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


class ConfigError(UserError):
    """A configuration key or value that does not exist or does not fit. `key` (dotted, e.g.
    `train.epochs`) lets the caller point at the line of the config file that sets it."""

    def __init__(self, message, *, key=None):
        super().__init__(message)
        self.key = key
