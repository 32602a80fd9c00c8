"""Every error the package raises on purpose, each with a one-line message for the user.

A leaf: it imports nothing of the package, so any module can raise any of these without importing
the module that first needed it (and without a function-level import to dodge a circle).
"""


class UsageError(ValueError):
    """A flag value the program refuses; the message names the flag and what to do."""


class RunStopped(RuntimeError):
    """A run that stopped before its end (a signal, a non-finite loss, a failed checkpoint write); the
    message says what was kept. ``status`` is the exit status (128 + the signal's number for a signal);
    ``requested``: the user asked for the stop (a signal), so it is reported as such, not as an error."""

    def __init__(self, message: str, status: int = 1, requested: bool = False):
        super().__init__(message)
        self.status = status
        self.requested = requested


class DataError(ValueError):
    """A data file is missing, truncated or not what it claims to be. The message names the file."""


class DownloadError(DataError):
    """Every source failed for at least one file; the message lists each source tried and why."""


class GridError(ValueError):
    """A grid image cannot be made or read; the message names the file."""


class ClassifierError(ValueError):
    """The classifier cannot be trained to its target, or its cache is unusable; one-line message."""


class SourceFailed(Exception):
    """A download source cannot supply anything (unreachable, absent, broken): the download moves on to
    the next source. Never shown to the user: :class:`DownloadError` sums them up."""


class FileFailed(Exception):
    """One file could not be had from one download source; the source may still have the others."""


def first_line(e: BaseException) -> str:
    """``<ExceptionType>: <first line of its message>``, without TensorFlow's ``{{function_node ...}}``
    prefix: a failure from deep inside a library, told in one line."""
    import re

    text = re.sub(r"\{\{[^}]*\}\}\s*", "", str(e)).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}".rstrip(": ")
