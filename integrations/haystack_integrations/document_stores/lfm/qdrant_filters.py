"""Haystack filters as Qdrant filters, for :class:`LFMQdrantDocumentStore`.

Haystack's filter syntax (``{"field": "meta.x", "operator": ">", "value": 1}`` combined with
``AND`` / ``OR`` / ``NOT``) becomes a ``qdrant_client.models.Filter`` evaluated by the engine,
with the semantics of Haystack's ``InMemoryDocumentStore``:

* ``==`` / ``!=`` with ``None`` test for a missing or null field; ``!=`` and ``not in`` let
  documents without the field through;
* ``>``, ``>=``, ``<``, ``<=`` take numbers, or ISO-8601 date strings (compared as dates); a
  ``None`` value matches nothing; another string or a list is a ``FilterError``;
* ``in`` / ``not in`` need a list.

Anything else raises :class:`UnsupportedFilterError` (a Haystack ``FilterError``).

Fields are ``id``, ``content`` and ``meta.<key>``. qdrant-haystack has a converter of its own,
but for its own payload layout (``meta.*`` at the top, no ``metadata`` object); this one
addresses the payload of :class:`lfm_retrievers.QdrantIndex` through its public
``payload_key``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .filters import COMPARISON_OPERATORS, LOGICAL_OPERATORS, UnsupportedFilterError

_RANGE = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def _models() -> Any:
    from qdrant_client import models

    return models


def _nothing() -> Any:
    """A filter no point passes."""
    m = _models()
    return m.Filter(must=[m.HasIdCondition(has_id=[])])


def to_qdrant_filter(filters: dict[str, Any] | None, payload_key: Callable[[str], str]) -> Any:
    """The Qdrant ``Filter`` of a Haystack filter (``None`` / ``{}``: no filter)."""
    if filters is None or filters == {}:
        return None
    if not isinstance(filters, dict):
        msg = f"filters must be a dict in Haystack filter syntax, got {type(filters).__name__}"
        raise UnsupportedFilterError(msg)
    return _node(filters, payload_key, "filters")


def _node(node: Any, key: Callable[[str], str], path: str) -> Any:
    m = _models()
    if not isinstance(node, dict):
        msg = f"{path} must be a dict, got {type(node).__name__}: {node!r}"
        raise UnsupportedFilterError(msg)
    if "field" in node:
        return _comparison(node, key, path)
    if "operator" not in node:
        msg = f"{path}: 'operator' key missing in {node!r}"
        raise UnsupportedFilterError(msg)
    if "conditions" not in node:
        msg = f"{path}: 'conditions' key missing in {node!r}"
        raise UnsupportedFilterError(msg)
    op, conditions = node["operator"], node["conditions"]
    if op not in LOGICAL_OPERATORS:
        msg = f"{path}: unknown logical operator {op!r}; choose one of {list(LOGICAL_OPERATORS)}"
        raise UnsupportedFilterError(msg)
    if not isinstance(conditions, list):
        msg = f"{path}: 'conditions' must be a list, got {type(conditions).__name__}"
        raise UnsupportedFilterError(msg)
    parts: list[Any] = [_node(c, key, f"{path}.conditions[{i}]") for i, c in enumerate(conditions)]
    if op == "AND":
        return m.Filter(must=parts)
    if op == "OR":
        return m.Filter(should=parts) if parts else _nothing()
    return m.Filter(must_not=[m.Filter(must=parts)])


def _field(field: object, key: Callable[[str], str], path: str) -> str:
    if not isinstance(field, str) or not field:
        msg = f"{path}: 'field' must be a non-empty str such as 'meta.lang', got {field!r}"
        raise UnsupportedFilterError(msg)
    if field == "id":
        return key("id")
    if field == "content":
        return key("text")
    if field.startswith("meta."):
        return key(field[len("meta.") :])
    msg = f"{path}: cannot filter on {field!r}; use 'id', 'content' or 'meta.<key>'"
    raise UnsupportedFilterError(msg)


def _equal(name: str, value: Any, path: str) -> Any:
    m = _models()
    if isinstance(value, bool | str | int):
        return m.FieldCondition(key=name, match=m.MatchValue(value=value))
    if isinstance(value, float):
        return m.FieldCondition(key=name, range=m.Range(gte=value, lte=value))
    msg = f"{path}: '==' / '!=' / 'in' compare str, int, float, bool or None, got {value!r}"
    raise UnsupportedFilterError(msg)


def _comparison(node: dict[str, Any], key: Callable[[str], str], path: str) -> Any:
    m = _models()
    for part in ("operator", "value"):
        if part not in node:
            msg = f"{path}: '{part}' key missing in {node!r}"
            raise UnsupportedFilterError(msg)
    name = _field(node["field"], key, path)
    op, value = node["operator"], node["value"]
    if op not in COMPARISON_OPERATORS:
        msg = (
            f"{path}: unknown comparison operator {op!r}; "
            f"choose one of {list(COMPARISON_OPERATORS)}"
        )
        raise UnsupportedFilterError(msg)
    empty = m.IsEmptyCondition(is_empty=m.PayloadField(key=name))
    if op in ("==", "!="):
        cond = empty if value is None else _equal(name, value, path)
        return m.Filter(must=[cond]) if op == "==" else m.Filter(must_not=[cond])
    if op in _RANGE:
        if value is None:
            return _nothing()
        if isinstance(value, bool | list | dict | tuple):
            msg = f"{path}: {op!r} needs a number or an ISO date string, got {value!r}"
            raise UnsupportedFilterError(msg)
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value)
            except ValueError as exc:
                msg = f"{path}: {op!r} needs a number or an ISO date string, got {value!r}"
                raise UnsupportedFilterError(msg) from exc
            return m.Filter(
                must=[m.FieldCondition(key=name, range=m.DatetimeRange(**{_RANGE[op]: when}))]
            )
        if not isinstance(value, int | float):
            msg = f"{path}: {op!r} needs a number or an ISO date string, got {value!r}"
            raise UnsupportedFilterError(msg)
        return m.Filter(must=[m.FieldCondition(key=name, range=m.Range(**{_RANGE[op]: value}))])
    if not isinstance(value, list):
        msg = f"{path}: {op!r} needs a list, got {type(value).__name__}: {value!r}"
        raise UnsupportedFilterError(msg)
    if not value:
        any_of: Any = _nothing()
    elif all(isinstance(v, str) for v in value) or all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        any_of = m.Filter(must=[m.FieldCondition(key=name, match=m.MatchAny(any=value))])
    else:
        any_of = m.Filter(should=[_equal(name, v, path) for v in value])
    return any_of if op == "in" else m.Filter(must_not=[any_of])
