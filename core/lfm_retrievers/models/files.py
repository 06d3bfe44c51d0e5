"""Reading a checkpoint's files: every failure becomes a :class:`CheckpointError` naming the file.

A damaged checkpoint folder (a truncated ``model.safetensors`` or ``tokenizer.json``, a
``config.json`` holding a list, JSON nested thousands of levels deep) otherwise surfaces as a
library's own error (``SafetensorError``, a bare ``Exception`` from ``tokenizers``,
``AttributeError``, ``RecursionError``) that says nothing about which file is broken.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from safetensors import SafetensorError, safe_open
from tokenizers import Tokenizer

from lfm_retrievers.errors import CheckpointError

_T = TypeVar("_T")


def read_json(path: Path, expect: type = dict) -> Any:
    """The JSON value in ``path``, which must be of type ``expect`` (``dict`` or ``list``).

    Raises:
        CheckpointError: unreadable, not UTF-8, not JSON, too deeply nested or of another type.
    """
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        msg = f"{path} is not a readable JSON file ({detail}); re-download the checkpoint"
        raise CheckpointError(msg) from exc
    if not isinstance(value, expect):
        msg = (
            f"{path} must hold a JSON {'object' if expect is dict else 'array'}, got "
            f"{type(value).__name__} ({json.dumps(value)[:40]}); re-download the checkpoint"
        )
        raise CheckpointError(msg)
    return value


def settings_value(path: Path, key: str, convert: Callable[[Any], _T], value: Any) -> _T:
    """``convert(value)`` for the setting ``key`` of ``path``, or a CheckpointError naming both."""
    try:
        return convert(value)
    except (TypeError, ValueError) as exc:
        msg = f"{path}: {key} must be {convert.__name__}-like, got {value!r:.60}"
        raise CheckpointError(msg) from exc


@contextmanager
def open_safetensors(path: Path) -> Iterator[Any]:
    """``safetensors.safe_open`` on CPU; a truncated or foreign file is a CheckpointError."""
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError) as exc:
        msg = f"{path} is not a readable safetensors file ({exc}); re-download the checkpoint"
        raise CheckpointError(msg) from exc
    with handle as fh:
        yield fh


def load_tokenizer(path: Path) -> Tokenizer:
    """``tokenizers.Tokenizer.from_file``; a damaged ``tokenizer.json`` is a CheckpointError."""
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for every parse error
        msg = f"{path} is not a readable tokenizer ({exc}); re-download the checkpoint"
        raise CheckpointError(msg) from exc


__all__ = ["load_tokenizer", "open_safetensors", "read_json", "settings_value"]
