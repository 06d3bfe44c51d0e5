"""Argument checks shared by the core and the adapters: one wording, one exception policy.

A wrong *type* is a ``TypeError``; a value of the right type that is out of range or not one of
the choices is a ``ValueError``. Every message names the argument, shows what was given and,
where there are choices, lists them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def check_texts(texts: object, what: str = "texts") -> list[str]:
    """A list of strings; a bare string is an error, not a list of characters."""
    if texts is None:
        msg = f"{what} must be a list of str, got None"
        raise TypeError(msg)
    if isinstance(texts, str | bytes):
        msg = (
            f"{what} must be a list of str, got a single {type(texts).__name__}: "
            f"wrap it as [{texts!r:.40}]"
        )
        raise TypeError(msg)
    if not isinstance(texts, Sequence):
        msg = f"{what} must be a list of str, got {type(texts).__name__}"
        raise TypeError(msg)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            msg = f"{what}[{i}] must be str, got {type(t).__name__}: {t!r:.60}"
            raise TypeError(msg)
    return list(texts)


def check_positive_int(value: object, name: str) -> int:
    """An ``int`` (numpy ints accepted, bools not) that is at least 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        msg = f"{name} must be a positive int, got {type(value).__name__}: {value!r}"
        raise TypeError(msg)
    if value <= 0:
        msg = f"{name} must be a positive int (>= 1), got {value!r}"
        raise ValueError(msg)
    return int(value)


def check_batch_size(batch_size: object) -> int:
    """``batch_size``: a positive int."""
    return check_positive_int(batch_size, "batch_size")


def check_float(value: object, name: str, lo: float, hi: float | None = None) -> float:
    """A finite real number in ``[lo, hi]`` (``hi=None``: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        msg = f"{name} must be a number, got {type(value).__name__}: {value!r}"
        raise TypeError(msg)
    v = float(value)
    if not math.isfinite(v) or v < lo or (hi is not None and v > hi):
        bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        msg = f"{name} must be {bounds}, got {value!r}"
        raise ValueError(msg)
    return v


def check_choice(value: object, name: str, choices: Sequence[object]) -> None:
    """``value`` must be one of ``choices`` (compared with ``==``)."""
    if value not in choices:
        msg = f"{name}={value!r} is not valid; choose one of {list(choices)}"
        raise ValueError(msg)


def check_str(value: object, name: str) -> str:
    """A ``str`` (``TypeError`` naming what was given otherwise)."""
    if not isinstance(value, str):
        msg = f"{name} must be str, got {type(value).__name__}: {value!r:.60}"
        raise TypeError(msg)
    return value
