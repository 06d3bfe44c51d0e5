"""Haystack metadata filters for the ColBERT document store: validation and matching.

Filters use Haystack's own syntax and are evaluated by Haystack's reference matcher
(``haystack.utils.filters.document_matches_filter``) over the stored metadata, so they mean
exactly what they mean for ``InMemoryDocumentStore``. The matching documents become the id
subset that the ColBERT search is restricted to.

Supported operators: comparisons ``==``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``in``,
``not in`` on ``meta.<key>`` (or ``id`` / ``content``), combined with ``AND``, ``OR``, ``NOT``.
Anything else raises :class:`UnsupportedFilterError` before any search runs.

:func:`to_core_filter` translates a filter into the package's one metadata filter language
(:mod:`lfm_retrievers.indexes.filters`, the operators of LangChain vector stores) wherever both
mean the same: comparisons on top-level ``meta.<key>`` fields with numbers, ``None`` or
non-date strings (Haystack orders strings as dates) and lists of those. ``search`` then hands
the filter to the index (and so to any engine behind it); other filters are matched here. The
one remaining difference: the core does not treat ``True`` as ``1``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from haystack.errors import FilterError

COMPARISON_OPERATORS = ("==", "!=", ">", ">=", "<", "<=", "in", "not in")
LOGICAL_OPERATORS = ("AND", "OR", "NOT")


class UnsupportedFilterError(FilterError, ValueError):
    """A filter this store cannot evaluate (a Haystack ``FilterError`` and a ``ValueError``)."""


def validate_filters(filters: object, path: str = "filters") -> None:
    """Raise :class:`UnsupportedFilterError` naming the bad part unless ``filters`` is valid.

    ``None`` and ``{}`` mean "no filter".
    """
    if filters is None:
        return
    if not isinstance(filters, dict):
        msg = (
            f"{path} must be a dict in Haystack filter syntax, "
            f"got {type(filters).__name__}: {filters!r}"
        )
        raise UnsupportedFilterError(msg)
    if not filters and path == "filters":
        return
    if "field" in filters:
        _validate_comparison(filters, path)
    else:
        _validate_logical(filters, path)


def _validate_comparison(condition: dict[str, Any], path: str) -> None:
    for key in ("operator", "value"):
        if key not in condition:
            msg = f"{path}: '{key}' key missing in {condition!r}"
            raise UnsupportedFilterError(msg)
    if not isinstance(condition["field"], str) or not condition["field"]:
        msg = (
            f"{path}: 'field' must be a non-empty str such as 'meta.lang', "
            f"got {condition['field']!r}"
        )
        raise UnsupportedFilterError(msg)
    operator = condition["operator"]
    if operator not in COMPARISON_OPERATORS:
        msg = (
            f"{path}: unsupported comparison operator {operator!r} in {condition!r}; "
            f"supported: {list(COMPARISON_OPERATORS)}, combined with {list(LOGICAL_OPERATORS)}"
        )
        raise UnsupportedFilterError(msg)


def _validate_logical(condition: dict[str, Any], path: str) -> None:
    for key in ("operator", "conditions"):
        if key not in condition:
            msg = f"{path}: '{key}' key missing in {condition!r}"
            raise UnsupportedFilterError(msg)
    operator = condition["operator"]
    if operator not in LOGICAL_OPERATORS:
        msg = (
            f"{path}: unsupported logical operator {operator!r}; supported: "
            f"{list(LOGICAL_OPERATORS)} (comparisons: {list(COMPARISON_OPERATORS)})"
        )
        raise UnsupportedFilterError(msg)
    conditions = condition["conditions"]
    if not isinstance(conditions, list):
        msg = f"{path}: 'conditions' must be a list, got {conditions!r}"
        raise UnsupportedFilterError(msg)
    for i, sub in enumerate(conditions):
        validate_filters(sub, f"{path}.conditions[{i}]")
        if not sub:
            msg = f"{path}.conditions[{i}] is empty"
            raise UnsupportedFilterError(msg)


_CORE_OPERATORS = {
    "==": "$eq",
    "!=": "$ne",
    ">": "$gt",
    ">=": "$gte",
    "<": "$lt",
    "<=": "$lte",
    "in": "$in",
    "not in": "$nin",
}
_CORE_LOGIC = {"AND": "$and", "OR": "$or"}


def to_core_filter(filters: dict[str, Any]) -> dict[str, Any] | None:
    """A validated Haystack filter as a core metadata filter, or ``None`` where none is exact.

    ``NOT`` becomes ``{"$not": {"$and": [...]}}`` (Haystack negates the AND of its conditions).
    """
    if "field" in filters:
        return _core_comparison(filters)
    subs = [to_core_filter(c) for c in filters["conditions"]]
    if any(s is None for s in subs):
        return None
    if filters["operator"] == "NOT":
        return {"$not": {"$and": subs}}
    return {_CORE_LOGIC[filters["operator"]]: subs}


def _core_comparison(condition: dict[str, Any]) -> dict[str, Any] | None:
    field, op, value = condition["field"], condition["operator"], condition["value"]
    key = field[len("meta.") :] if field.startswith("meta.") else ""
    if not key or "." in key or key.startswith("$"):
        return None  # id / content / nested meta paths: matched by Haystack's matcher
    if op in ("in", "not in"):
        ok = isinstance(value, list) and all(_plain(v) for v in value)
    elif op in (">", ">=", "<", "<="):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = _plain(value)
    return {key: {_CORE_OPERATORS[op]: value}} if ok else None


def _plain(value: object) -> bool:
    """A value both languages compare the same way: None, a number or a non-date string."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return True
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return True
    return False
