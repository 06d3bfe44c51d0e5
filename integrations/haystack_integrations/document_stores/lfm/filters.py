"""Haystack metadata filters for the ColBERT document store: validation and matching.

Filters use Haystack's own syntax and are evaluated by Haystack's reference matcher
(``haystack.utils.filters.document_matches_filter``) over the stored metadata, so they mean
exactly what they mean for ``InMemoryDocumentStore``. The matching documents become the id
subset that the ColBERT search is restricted to.

Supported operators: comparisons ``==``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``in``,
``not in`` on ``meta.<key>`` (or ``id`` / ``content``), combined with ``AND``, ``OR``, ``NOT``.
Anything else raises :class:`UnsupportedFilterError` before any search runs.
"""

from __future__ import annotations

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
