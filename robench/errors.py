"""User-facing errors.

A `RobenchError` is a problem with the user's input or environment (a missing data folder, a
bad suite file, a mismatched checkpoint). The CLI prints its message on one line and exits
with code 2; anything else is a bug and keeps its traceback.
"""


class RobenchError(Exception):
    """An error the user can fix; its message says what went wrong and what to do."""


class DataError(RobenchError):
    """Missing, unreadable or malformed data."""


class ConfigError(RobenchError):
    """A suite file or option that does not validate."""


class CheckpointError(RobenchError):
    """A checkpoint that is missing, corrupt, or does not match the model."""
