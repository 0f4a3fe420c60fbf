"""The exceptions of ``ash_search``, one class per kind of failure.

Every failure the library reports is an :class:`AshError` whose class says
whose fault it is and whether trying again can help (the library's
``ErrorKind``); catch the class, never match the message. Each class also
derives from the Python built-in exception a caller would otherwise expect
(``ValueError`` for bad input, ``LookupError`` for a missing id, ``OSError``
for the file system).
"""

from __future__ import annotations


class AshError(Exception):
    """A failure reported by ash-search."""

    #: The library's name for this kind of failure.
    kind = "Internal"


class InvalidInput(AshError, ValueError):
    """What the caller gave is wrong: a query, a record, a schema, an image."""

    kind = "InvalidInput"


class NotFound(AshError, LookupError):
    """What the caller named does not exist: an id, an index, a plugin."""

    kind = "NotFound"


class Conflict(AshError):
    """The request contradicts the index's state: an index that already
    exists, another encoder than the pinned one, a write to an index opened
    read-only."""

    kind = "Conflict"


class Busy(AshError):
    """Another writer holds the index; try again when it is done."""

    kind = "Busy"


class Corrupt(AshError):
    """Stored data is damaged."""

    kind = "Corrupt"


class Unavailable(AshError):
    """A component this machine lacks: ONNX Runtime, a model, CUDA."""

    kind = "Unavailable"


class IoError(AshError, OSError):
    """The file system failed."""

    kind = "Io"


class Internal(AshError):
    """A fault of the library."""

    kind = "Internal"
