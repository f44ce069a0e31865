"""Exceptions that carry a message meant for the user, not a traceback."""


class UsageError(ValueError):
    """The command line or configuration is wrong; the CLI exits 2 with this message."""


class SetupError(RuntimeError):
    """The pipeline could not be built on the actors (a model missing, a bad parameter),
    or no actor is left to run the remaining inputs; the CLI exits 2 with this message."""


class ModelUnavailableError(RuntimeError):
    """A pipeline needs a model that is neither cached locally nor downloadable."""


def first_line(exc: BaseException) -> str:
    """An exception's message as one line (its first), or its repr when it has none:
    what users see of an error in failure records and one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)
