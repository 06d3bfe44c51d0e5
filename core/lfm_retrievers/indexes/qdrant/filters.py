"""Search filters on Qdrant: the package's filter language as a Qdrant ``Filter``.

:func:`to_filter` takes the search filter of every index (:mod:`lfm_retrievers.indexes.filters`)
and returns a ``qdrant_client.models.Filter`` that keeps the documents the in-process evaluator
(:func:`~lfm_retrievers.indexes.filters.matches`) keeps, for metadata made of strings, numbers,
booleans, nulls and objects, and for keys a document lacks:

* ``$eq v``: a string or a bool is a ``MatchValue`` (Qdrant keeps ``True`` and ``1`` apart, as
  the evaluator does); a number is a one-point ``Range``, so ``1`` finds ``1.0`` and ``1.0``
  finds ``1``; ``None`` is ``IsEmpty``, which holds for a null and for a missing key.
* ``$in [...]``: a ``should`` of those equalities; ``$in []`` matches nothing.
* ``$ne`` / ``$nin`` / ``$not``: ``must_not``, so a document without the key passes them.
* ``$gt $gte $lt $lte``: a ``Range`` when the bound is a number; a bound that is a bool, null,
  list or object orders against nothing and matches nothing, as in process.
* ``$and`` / ``$or``: ``must`` / ``should``. Parts that match everything or nothing are folded
  away before Qdrant sees them (an empty ``should`` would match everything there).

What Qdrant cannot express raises before any request, naming the operator and the key:

* a string bound of ``$gt $gte $lt $lte`` (``ValueError``): Qdrant has no string ranges (its
  datetime ranges parse the text, not compare code points);
* an integer beyond ``±2**53`` (``ValueError``): Qdrant compares numbers as 64-bit floats;
* a list or object operand of ``$eq $ne $in $nin`` (``TypeError``): Qdrant compares a list item
  by item and an object not at all, never as a whole;
* a metadata key that is empty or holds ``"`` (``ValueError``): no payload path reaches it.

One difference is left, because a filter cannot see it: Qdrant applies a condition to each
item of a **list** in the metadata (``{"tags": "a"}`` finds ``{"tags": ["a", "b"]}``, and a
null ``$eq`` finds ``[]``), while the evaluator compares the list as one value. Numbers stored
beyond ``±2**53`` are compared as their float64 roundings on Qdrant.
"""

from __future__ import annotations

from typing import Any

from lfm_retrievers.indexes.filters import (
    And,
    Condition,
    FilterExpr,
    Not,
    check_filter,
    parse_filter,
)
from lfm_retrievers.indexes.qdrant.layout import metadata_key, models, point_id

__all__ = ["to_filter"]

#: Integers up to this magnitude are exact as the float64 numbers Qdrant compares.
EXACT_INT = 2**53

# A translated part: a Qdrant condition, or True / False when it matches every / no document.
_Part = Any


def to_filter(filter: object) -> Any:
    """A Qdrant ``Filter`` for a search filter of the in-process indexes (or ``None``).

    ``{"ids": [...]}`` keeps those documents; ``{"metadata": <metadata filter>}`` takes every
    operator of :mod:`lfm_retrievers.indexes.filters` (``$eq $ne $gt $gte $lt $lte $in $nin
    $and $or $not``) and keeps the documents the in-process evaluator keeps, missing keys and
    nulls included. Refused before any request: a string bound of ``$gt $gte $lt $lte`` and
    an integer beyond ``±2**53`` (``ValueError``: Qdrant has no string ranges and compares
    numbers as float64), a list or object operand of ``$eq $ne $in $nin`` (``TypeError``).
    A list in the metadata is matched item by item by Qdrant (see the module docstring). A
    ``qdrant_client.models.Filter`` is returned as it is.

    Raises:
        TypeError: a wrong type in the filter, or an operand Qdrant cannot compare as a whole.
        ValueError: a wrong value in the filter, or an operator Qdrant cannot express on it.
    """
    m = models()
    if filter is None or isinstance(filter, m.Filter):
        return filter
    checked = check_filter(filter)
    assert checked is not None
    must: list[Any] = []
    if "ids" in checked:
        for i, v in enumerate(checked["ids"]):
            if not isinstance(v, str):
                msg = f"filter['ids'][{i}] must be str, got {type(v).__name__}"
                raise TypeError(msg)
        must.append(m.HasIdCondition(has_id=[point_id(i) for i in checked["ids"]]))
    if checked.get("metadata"):
        part = _part(parse_filter(checked["metadata"], "filter['metadata']"))
        if part is False:  # keeps no document: as {"ids": []}
            must.append(m.HasIdCondition(has_id=[]))
        elif part is not True:
            must.append(part)
    return m.Filter(must=must)


def _part(expr: FilterExpr) -> _Part:
    if isinstance(expr, Condition):
        return _condition(expr)
    if isinstance(expr, Not):
        return _negate(_part(expr.item))
    parts = [_part(e) for e in expr.items]  # every part translated: all refusals raise
    if isinstance(expr, And):
        return _all(parts)
    return _any(parts)


def _all(parts: list[_Part]) -> _Part:
    if any(p is False for p in parts):
        return False
    rest = [p for p in parts if p is not True]
    if not rest:
        return True
    return rest[0] if len(rest) == 1 else models().Filter(must=rest)


def _any(parts: list[_Part]) -> _Part:
    if any(p is True for p in parts):
        return True
    rest = [p for p in parts if p is not False]
    if not rest:
        return False
    return rest[0] if len(rest) == 1 else models().Filter(should=rest)


def _negate(part: _Part) -> _Part:
    if isinstance(part, bool):
        return not part
    return models().Filter(must_not=[part])


def _condition(c: Condition) -> _Part:
    m = models()
    path = metadata_key(c.key)
    if c.op in ("$eq", "$ne"):
        hit = _equals(c, c.value, path)
        return hit if c.op == "$eq" else _negate(hit)
    if c.op in ("$in", "$nin"):
        hits = _any([_equals(c, v, path) for v in c.value])
        return hits if c.op == "$in" else _negate(hits)
    bound = c.value
    if isinstance(bound, str):
        msg = (
            f"filter operator {c.op!r} on metadata key {c.key!r} compares strings, which "
            f"Qdrant cannot do (it has no string ranges), got {bound!r:.60}; filter on a "
            "number, or use an in-process index"
        )
        raise ValueError(msg)
    if isinstance(bound, bool) or not isinstance(bound, int | float):
        return False  # in process, nothing orders against a bool, null, list or object
    _check_exact(c, bound)
    return m.FieldCondition(key=path, range=m.Range(**{c.op[1:]: bound}))


def _equals(c: Condition, value: Any, path: str) -> _Part:
    """The documents whose metadata ``c.key`` equals ``value`` as JSON (``None``: or lacks it)."""
    m = models()
    if value is None:
        return m.IsEmptyCondition(is_empty=m.PayloadField(key=path))
    if isinstance(value, bool | str):
        return m.FieldCondition(key=path, match=m.MatchValue(value=value))
    if isinstance(value, int | float):
        _check_exact(c, value)
        return m.FieldCondition(key=path, range=m.Range(gte=value, lte=value))
    msg = (
        f"filter operator {c.op!r} on metadata key {c.key!r} needs a str, int, float, bool "
        f"or None on Qdrant, got {type(value).__name__}: Qdrant compares a list item by item "
        "and an object not at all; pass a qdrant_client.models.Filter for more"
    )
    raise TypeError(msg)


def _check_exact(c: Condition, value: int | float) -> None:
    if isinstance(value, int) and abs(value) > EXACT_INT:
        msg = (
            f"filter operator {c.op!r} on metadata key {c.key!r} has the integer {value}, "
            f"beyond ±2**53: Qdrant compares numbers as 64-bit floats and could not tell it "
            "from its neighbours"
        )
        raise ValueError(msg)
