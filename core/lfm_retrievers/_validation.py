r"""Every argument check of the package, in one place and one wording.

A wrong *type* raises :class:`TypeError`; a value of the right type that is not allowed raises
:class:`ValueError`. Every message names the argument, shows the bad value (shortened) and,
where there is a fixed set, the valid choices::

    k must be a positive int, got str: '3'
    score must be one of ['raw', 'mean'], got 'max'
    texts[2] is not valid UTF-8 text: lone surrogate '\ud800' at position 4

Written by hand: the checks are small and their wording is the point. pydantic (which the
LangChain and LlamaIndex adapters use for their fields) does not cover the core's plain
function arguments, and the core imports no framework. Core modules import from here;
adapters use the re-exports in :mod:`lfm_retrievers.seam`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "check_batch_size",
    "check_bool",
    "check_choice",
    "check_finite",
    "check_float",
    "check_id_list",
    "check_ids",
    "check_json",
    "check_metadata_list",
    "check_nonnegative_int",
    "check_optional_float",
    "check_optional_positive_int",
    "check_optional_str",
    "check_positive_int",
    "check_str",
    "check_text",
    "check_texts",
    "check_vectors",
    "show",
    "type_error",
    "value_error",
]

_T = TypeVar("_T")

#: Deepest nesting accepted in metadata and filters (deeper JSON is refused, not recursed).
MAX_JSON_DEPTH = 64


def show(value: object, width: int = 60) -> str:
    """``repr(value)``, shortened to ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def type_error(name: str, expected: str, value: object) -> TypeError:
    """The one TypeError wording: ``{name} must be {expected}, got {type}: {value}``."""
    msg = f"{name} must be {expected}, got {type(value).__name__}: {show(value)}"
    return TypeError(msg)


def value_error(
    name: str, expected: str, value: object, choices: Iterable[object] | None = None
) -> ValueError:
    """The one ValueError wording: ``{name} must be {expected}, got {value}``."""
    if choices is not None:
        expected = f"one of {list(choices)}"
    msg = f"{name} must be {expected}, got {show(value)}"
    return ValueError(msg)


# ----------------------------------------------------------------------------- scalars


def _is_int(value: object) -> bool:
    return not isinstance(value, bool | np.bool_) and isinstance(value, int | np.integer)


def check_positive_int(value: object, name: str) -> int:
    """An int >= 1 (numpy ints accepted; bool, float and str are TypeErrors)."""
    if not _is_int(value):
        raise type_error(name, "a positive int", value)
    number = int(value)  # type: ignore[call-overload]
    if number < 1:
        raise value_error(name, "a positive int (>= 1)", value)
    return number


def check_optional_positive_int(value: object, name: str) -> int | None:
    """``None`` or an int >= 1."""
    return None if value is None else check_positive_int(value, name)


def check_batch_size(batch_size: object) -> int:
    """``batch_size``: a positive int."""
    return check_positive_int(batch_size, "batch_size")


def check_nonnegative_int(value: object, name: str) -> int:
    """An int >= 0."""
    if not _is_int(value):
        raise type_error(name, "an int >= 0", value)
    number = int(value)  # type: ignore[call-overload]
    if number < 0:
        raise value_error(name, "an int >= 0", value)
    return number


def check_float(
    value: object, name: str, lo: float | None = None, hi: float | None = None
) -> float:
    """A finite real number in ``[lo, hi]`` (``None``: no bound).

    bool and str are TypeErrors; NaN and infinities are ValueErrors.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        raise type_error(name, "a number", value)
    number = float(value)
    bounds = [b for b in ("" if lo is None else f">= {lo}", "" if hi is None else f"<= {hi}") if b]
    want = " ".join(["a finite number", " and ".join(bounds)]).strip()
    if (
        not math.isfinite(number)
        or (lo is not None and number < lo)
        or (hi is not None and number > hi)
    ):
        raise value_error(name, want, value)
    return number


def check_optional_float(
    value: object, name: str, lo: float | None = None, hi: float | None = None
) -> float | None:
    """``None`` or a finite real number in ``[lo, hi]`` (a NaN threshold is a ValueError)."""
    return None if value is None else check_float(value, name, lo, hi)


def check_bool(value: object, name: str) -> bool:
    """A bool (numpy bools accepted)."""
    if not isinstance(value, bool | np.bool_):
        raise type_error(name, "a bool", value)
    return bool(value)


def check_choice(value: object, name: str, choices: Sequence[_T]) -> _T:
    """One of ``choices``; returns the matching choice.

    A value of another type than every choice is a TypeError, otherwise a ValueError; both
    list the choices.
    """
    for choice in choices:
        if type(value) is type(choice) and value == choice:
            return choice
    kinds = tuple({type(c) for c in choices})
    if kinds and not isinstance(value, kinds):
        raise type_error(name, f"one of {list(choices)}", value)
    raise value_error(name, "", value, choices)


# ----------------------------------------------------------------------------- text


def check_text(value: str, name: str) -> str:
    r"""``value`` (a str) unless it cannot be encoded as UTF-8 (it holds a lone surrogate).

    Such strings come from JSON ``\ud800`` escapes or ``surrogateescape`` file names; the
    tokenizer and every saved file need UTF-8, so they are refused before anything changes.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start : exc.end]
        msg = (
            f"{name} is not valid UTF-8 text: lone surrogate {bad!r} at position {exc.start} "
            "(decode the source with errors='replace', or fix the escape)"
        )
        raise ValueError(msg) from None
    return value


def check_str(value: object, name: str) -> str:
    """A str that is valid UTF-8."""
    if not isinstance(value, str):
        raise type_error(name, "str", value)
    return check_text(value, name)


def check_optional_str(value: object, name: str) -> str | None:
    """``None`` or a str that is valid UTF-8."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise type_error(name, "str or None", value)
    return check_text(value, name)


def _as_list(values: object, name: str, what: str) -> list[Any]:
    """A list from any iterable that is not a str, bytes or dict (TypeError otherwise)."""
    if isinstance(values, str | bytes | bytearray):
        msg = (
            f"{name} must be a list of {what}, got a single {type(values).__name__}: "
            f"{show(values)} (wrap it as [{show(values, 40)}])"
        )
        raise TypeError(msg)
    if isinstance(values, Mapping) or not isinstance(values, Iterable):
        msg = f"{name} must be a list of {what}, got {type(values).__name__}: {show(values)}"
        raise TypeError(msg)
    return list(values)


def check_texts(texts: object, what: str = "texts") -> list[str]:
    """A list (or other iterable, not a bare str or a dict) of valid UTF-8 str."""
    out = _as_list(texts, what, "str")
    for i, text in enumerate(out):
        check_str(text, f"{what}[{i}]")
    return out


def check_id_list(ids: object, name: str = "ids") -> list[str]:
    """A list of str ids; a bare str is a TypeError (``delete("ab")`` is not two ids)."""
    out = _as_list(ids, name, "str ids")
    for i, item in enumerate(out):
        check_str(item, f"{name}[{i}]")
    return out


def check_ids(ids: object, n: int | None = None, name: str = "ids") -> list[str]:
    """Ids for ``n`` new items: str, valid UTF-8, none repeated (ValueError naming them)."""
    out = check_id_list(ids, name)
    if n is not None and len(out) != n:
        msg = f"{name} must have one entry per text ({n}), got {len(out)}"
        raise ValueError(msg)
    seen: set[str] = set()
    repeated: list[str] = []
    for item in out:
        if item in seen:
            repeated.append(item)
        seen.add(item)
    if repeated:
        names = sorted(set(repeated))
        more = f" and {len(names) - 10} more" if len(names) > 10 else ""
        msg = f"{name} must be unique; repeated: {names[:10]}{more}"
        raise ValueError(msg)
    return out


# ----------------------------------------------------------------------------- JSON values


def check_json(value: object, name: str, _depth: int = 0) -> Any:
    """A JSON-normalised deep copy of ``value`` (what a save and load round trip gives back).

    str keys; str (UTF-8), finite number, bool, None, list/tuple (copied as a list) or dict
    values. A wrong type is a TypeError; NaN, infinities, lone surrogates and nesting deeper
    than 64 levels are ValueErrors.
    """
    if _depth > MAX_JSON_DEPTH:
        msg = f"{name} is nested more than {MAX_JSON_DEPTH} levels deep"
        raise ValueError(msg)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, str):
        return check_text(value, name)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            raise value_error(name, "a finite number (JSON has no NaN or Infinity)", value)
        return float(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                where = f"{name} keys"
                raise type_error(where, "str", key)
            check_text(key, f"{name} key {show(key, 30)}")
            out[key] = check_json(item, f"{name}[{key!r}]", _depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [check_json(x, f"{name}[{i}]", _depth + 1) for i, x in enumerate(value)]
    raise type_error(name, "JSON data (str, number, bool, None, list or dict)", value)


def check_metadata_list(metadata: object, n: int, name: str = "metadata") -> list[dict[str, Any]]:
    """One JSON metadata dict (or None, meaning ``{}``) per item, as copies."""
    if metadata is None:
        return [{} for _ in range(n)]
    out = _as_list(metadata, name, "dicts (one per text)")
    if len(out) != n:
        msg = f"{name} must have one entry per text ({n}), got {len(out)}"
        raise ValueError(msg)
    result: list[dict[str, Any]] = []
    for i, item in enumerate(out):
        if item is None:
            result.append({})
        elif not isinstance(item, Mapping):
            where = f"{name}[{i}]"
            raise type_error(where, "a dict or None", item)
        else:
            result.append(check_json(item, f"{name}[{i}]"))
    return result


# ----------------------------------------------------------------------------- arrays


def check_finite(array: Any, name: str) -> None:
    """ValueError naming the first NaN or infinite entry of a numpy array or torch tensor."""
    data = array.detach().cpu().numpy() if hasattr(array, "detach") else np.asarray(array)
    if data.dtype.kind not in "fc" or data.size == 0:
        return
    bad = ~np.isfinite(data)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = first if len(first) > 1 else first[0]
        msg = (
            f"{name} must be finite, got {data[first]} at index {where} ({int(bad.sum())} "
            "non-finite entries; NaN in model output usually means a float16 overflow)"
        )
        raise ValueError(msg)


def check_vectors(value: object, name: str, ndim: int, dim: int | None = None) -> np.ndarray:
    """A finite float32 array of ``ndim`` dimensions (last one ``dim`` when given), as a copy.

    Non-numeric input is a TypeError; a wrong shape, NaN or infinity is a ValueError.
    """
    if hasattr(value, "detach"):
        value = value.detach().cpu().float().numpy()  # type: ignore[attr-defined]
    if isinstance(value, str | bytes | Mapping) or value is None:
        raise type_error(name, f"a {ndim}-d float array", value)
    try:
        array = np.array(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        msg = f"{name} must be a {ndim}-d float array, got {type(value).__name__}: {show(value)}"
        raise TypeError(msg) from exc
    shape = "(dim,)" if ndim == 1 else "(n, dim)"
    want = shape if dim is None else shape.replace("dim", str(dim))
    if array.ndim != ndim or (dim is not None and array.shape[-1] != dim):
        msg = f"{name} must have shape {want}, got {array.shape}"
        raise ValueError(msg)
    check_finite(array, name)
    return array
