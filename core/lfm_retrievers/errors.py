"""The package's own exceptions, importable from every layer.

Each is a subclass of the built-in exception a caller would already catch for that problem
(``ValueError`` for a bad file or value, ``FileNotFoundError`` for a missing model), so code
written against the built-ins keeps working.
"""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint folder is incomplete or not in a layout this package can run."""


class CheckpointNotFoundError(FileNotFoundError):
    """A model could not be found locally and could not be downloaded."""


class IndexFormatError(ValueError):
    """A saved index that cannot be loaded.

    Raised for missing, truncated or corrupted files, another index kind, or a format version
    newer than this package reads.
    """


class ConcurrentWriteError(RuntimeError):
    """Another writer saved the same folder since this one loaded or last saved it.

    Saving would silently discard the other writer's changes, so nothing is written: load the
    folder again and reapply the changes. One writer per folder; readers need no lock.
    """


class CorpusError(ValueError):
    """A corpus file or folder cannot be read (the message names the file and line)."""


__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConcurrentWriteError",
    "CorpusError",
    "IndexFormatError",
]
