"""Exceptions that carry a message meant for the user, not a traceback."""


class UsageError(ValueError):
    """The command line or configuration is wrong; the CLI exits 2 with this message."""


class ModelUnavailableError(RuntimeError):
    """A pipeline needs a model that is neither cached locally nor downloadable."""
