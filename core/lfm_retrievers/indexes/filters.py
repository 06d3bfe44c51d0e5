"""Search filters: the one metadata filter language of every index and adapter.

A search filter is a dict with up to two keys, combined with AND:

* ``{"ids": [...]}``: only these ids (ids not in the index are ignored);
* ``{"metadata": <metadata filter>}``: only documents whose metadata passes it.

A **metadata filter** uses the operator vocabulary shared by LangChain vector stores (Chroma,
PGVector, Pinecone, ...) and MongoDB:

* ``{"lang": "en"}``: shorthand for ``{"lang": {"$eq": "en"}}``;
* ``{"n": {"$gt": 1, "$lte": 5}}``: comparisons ``$eq $ne $gt $gte $lt $lte`` and list
  membership ``$in $nin`` (their value must be a list); several operators on one field, and
  several fields in one dict, are combined with AND;
* ``{"$and": [f, ...]}``, ``{"$or": [f, ...]}`` (non-empty lists of filters), ``{"$not": f}``.

What each operator means, for a document's metadata ``m``:

* ``$eq v``: ``m`` has the key and its value equals ``v`` as JSON (``1 == 1.0``, a tuple equals
  the stored list, ``True`` is not ``1``); ``{"k": None}`` also matches a missing key.
* ``$ne v`` / ``$nin [...]``: the negations of ``$eq`` / ``$in``, so they match documents that
  lack the key.
* ``$gt $gte $lt $lte``: both sides numbers, or both strings (compared by code point, so ISO
  dates of one format order correctly); anything else (a missing key, ``None``, a list, a
  number against a string) does not match.
* ``$in [...]``: the value equals one of the list's items.

An operator outside this vocabulary (``$regex``, ``$exists``, ...) raises ``ValueError`` naming
it, never a silent empty result. :func:`parse_filter` turns a metadata filter into a small tree
of frozen dataclasses (:class:`Condition`, :class:`And`, :class:`Or`, :class:`Not`) that other
engines translate (the Qdrant engine maps it onto a Qdrant ``Filter``) and that
:func:`matches` evaluates in process.

Written by hand: the vocabulary is small, and libraries that evaluate Mongo-style queries (such
as ``mongoquery``) accept operators outside it and treat missing keys differently.

>>> flt = parse_filter({"lang": {"$in": ["en", "de"]}, "n": {"$gt": 1}})
>>> matches(flt, {"lang": "en", "n": 2}), matches(flt, {"lang": "fr", "n": 2})
(True, False)
>>> parse_filter({"n": {"$regex": "x"}})
Traceback (most recent call last):
...
ValueError: filter operator '$regex' (at n) is not supported; use one of ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin'] on a field, or '$and', '$or', '$not'
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np

from lfm_retrievers._validation import MAX_JSON_DEPTH, check_id_list, check_json, show

from .table import DocumentTable

FILTER_KEYS = ("ids", "metadata")

__all__ = [
    "COMPARISON_OPERATORS",
    "FILTER_KEYS",
    "LOGICAL_OPERATORS",
    "And",
    "Condition",
    "FilterExpr",
    "Not",
    "Or",
    "candidate_mask",
    "check_filter",
    "matches",
    "parse_filter",
]

ComparisonOperator = Literal["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"]
COMPARISON_OPERATORS: tuple[str, ...] = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
LOGICAL_OPERATORS: tuple[str, ...] = ("$and", "$or", "$not")


@dataclass(frozen=True)
class Condition:
    """``metadata[key] <op> value`` (``value`` is a list for ``$in`` / ``$nin``)."""

    key: str
    op: ComparisonOperator
    value: Any


@dataclass(frozen=True)
class And:
    """Every item matches (an empty ``And`` matches everything)."""

    items: tuple[FilterExpr, ...]


@dataclass(frozen=True)
class Or:
    """At least one item matches."""

    items: tuple[FilterExpr, ...]


@dataclass(frozen=True)
class Not:
    """The item does not match."""

    item: FilterExpr


FilterExpr: TypeAlias = Condition | And | Or | Not


def _unsupported(op: str, where: str) -> ValueError:
    at = f" (at {where})" if where else ""
    msg = (
        f"filter operator {op!r}{at} is not supported; use one of {list(COMPARISON_OPERATORS)} "
        "on a field, or '$and', '$or', '$not'"
    )
    return ValueError(msg)


def _wrong(where: str, expected: str, value: object) -> TypeError:
    msg = f"{where} must be {expected}, got {type(value).__name__}: {show(value)}"
    return TypeError(msg)


def _is_list(value: object) -> bool:
    return isinstance(value, list | tuple)


def parse_filter(filter: object, name: str = "filter") -> FilterExpr:
    """Validate a metadata filter and return its tree (``{}`` is an empty :class:`And`).

    Args:
        filter: A metadata filter dict (see the module docstring).
        name: How error messages name the filter.

    Raises:
        TypeError: the filter, or a part of it, has the wrong type (named by its path).
        ValueError: an unknown operator (named), an empty ``$and`` / ``$or``, a NaN value.
    """
    if not isinstance(filter, Mapping):
        raise _wrong(name, "a dict such as {'lang': 'en'} or {'n': {'$gt': 1}}", filter)
    return _parse(filter, name, 0)


def _parse(flt: Mapping[Any, Any], path: str, depth: int) -> FilterExpr:
    if depth > MAX_JSON_DEPTH:
        msg = f"{path} is nested more than {MAX_JSON_DEPTH} levels deep"
        raise ValueError(msg)
    items: list[FilterExpr] = []
    for key, value in flt.items():
        if not isinstance(key, str):
            keys = f"{path} keys"
            raise _wrong(keys, "str", key)
        where = f"{path}[{key!r}]"
        if key in ("$and", "$or"):
            if not _is_list(value):
                raise _wrong(where, "a list of filters", value)
            if not value:
                msg = f"{where} must hold at least one filter, got []"
                raise ValueError(msg)
            subs = []
            for i, sub in enumerate(value):
                item = f"{where}[{i}]"
                if not isinstance(sub, Mapping):
                    raise _wrong(item, "a filter dict", sub)
                subs.append(_parse(sub, item, depth + 1))
            items.append(And(tuple(subs)) if key == "$and" else Or(tuple(subs)))
        elif key == "$not":
            if not isinstance(value, Mapping):
                raise _wrong(where, "a filter dict", value)
            items.append(Not(_parse(value, where, depth + 1)))
        elif key.startswith("$"):
            raise _unsupported(key, "" if path == "filter" else path)
        else:
            items.extend(_parse_field(key, value, where))
    return items[0] if len(items) == 1 else And(tuple(items))


def _parse_field(key: str, value: object, where: str) -> list[Condition]:
    if not (isinstance(value, Mapping) and any(str(k).startswith("$") for k in value)):
        return [Condition(key, "$eq", check_json(value, where))]
    plain = [k for k in value if not str(k).startswith("$")]
    if plain:
        msg = (
            f"{where} mixes operators {[k for k in value if k not in plain]} with plain keys "
            f"{plain}; write {{'$eq': {{...}}}} to compare with a dict"
        )
        raise ValueError(msg)
    out = []
    for op, operand in value.items():
        if op not in COMPARISON_OPERATORS:
            raise _unsupported(op, key)
        at = f"{where}[{op!r}]"
        if op in ("$in", "$nin") and not _is_list(operand):
            raise _wrong(at, "a list of values", operand)
        out.append(Condition(key, op, check_json(operand, at)))  # type: ignore[arg-type]
    return out


_MISSING: Any = object()


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: bools are not numbers, ints equal floats, lists and dicts compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _ordered(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` can be ordered: two numbers (not bools) or two strings."""
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    return numbers or (isinstance(a, str) and isinstance(b, str))


def _condition(c: Condition, metadata: Mapping[str, Any]) -> bool:
    have = metadata.get(c.key, _MISSING)
    if c.op in ("$eq", "$ne"):
        hit = c.value is None if have is _MISSING else _equal(have, c.value)
        return hit if c.op == "$eq" else not hit
    if c.op in ("$in", "$nin"):
        probe = None if have is _MISSING else have
        hit = any(_equal(probe, v) for v in c.value)
        return hit if c.op == "$in" else not hit
    if have is _MISSING or not _ordered(have, c.value):
        return False
    if c.op == "$gt":
        return bool(have > c.value)
    if c.op == "$gte":
        return bool(have >= c.value)
    if c.op == "$lt":
        return bool(have < c.value)
    return bool(have <= c.value)


def matches(filter: FilterExpr, metadata: Mapping[str, Any]) -> bool:
    """Whether a document with ``metadata`` passes ``filter`` (a tree from :func:`parse_filter`)."""
    if isinstance(filter, Condition):
        return _condition(filter, metadata)
    if isinstance(filter, And):
        return all(matches(f, metadata) for f in filter.items)
    if isinstance(filter, Or):
        return any(matches(f, metadata) for f in filter.items)
    return not matches(filter.item, metadata)


def check_filter(filter: object) -> dict[str, Any] | None:
    """A validated, JSON-normalised copy of a search ``filter`` (``None`` stays ``None``).

    Raises:
        TypeError: ``filter`` or a part of it has the wrong type (the message names the part).
        ValueError: an unknown key or operator (named), or a bad value such as NaN.
    """
    if filter is None:
        return None
    if not isinstance(filter, Mapping):
        msg = (
            "filter must be a dict like {'ids': [...], 'metadata': {...}} or None, "
            f"got {type(filter).__name__}: {show(filter)}"
        )
        raise TypeError(msg)
    bad = [k for k in filter if k not in FILTER_KEYS]
    if bad:
        msg = (
            f"unknown filter keys {bad}; valid keys: {list(FILTER_KEYS)} "
            "(e.g. {'metadata': {'lang': 'en'}})"
        )
        raise ValueError(msg)
    out: dict[str, Any] = {}
    if "ids" in filter:
        out["ids"] = check_id_list(filter["ids"], "filter['ids']")
    if "metadata" in filter:
        meta = filter["metadata"]
        parse_filter(meta, "filter['metadata']")
        out["metadata"] = check_json(dict(meta), "filter['metadata']")
    return out


def candidate_mask(table: DocumentTable, filter: Mapping[str, Any] | None) -> np.ndarray:
    """Rows that may be returned: alive and passing a checked ``filter``."""
    mask = table.alive.copy()
    if filter is None:
        return mask
    if "ids" in filter:
        allowed = np.zeros_like(mask)
        for doc_id in filter["ids"]:
            row = table.row_of.get(doc_id)
            if row is not None:
                allowed[row] = True
        mask &= allowed
    if filter.get("metadata"):
        tree = parse_filter(filter["metadata"], "filter['metadata']")
        for r in np.flatnonzero(mask):
            if not matches(tree, table.metadata[r]):
                mask[r] = False
    return mask
