"""Search filters of the in-process indexes: restrict a search to ids and metadata values.

A filter is a dict with up to two keys, combined with AND:

* ``{"ids": [...]}``: only these ids (ids not in the index are ignored);
* ``{"metadata": {"key": value, ...}}``: only documents whose metadata has every key equal to
  the value (values compare as JSON, so a tuple equals the stored list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .table import DocumentTable, json_copy

FILTER_KEYS = ("ids", "metadata")


def check_filter(filter: object) -> dict[str, Any] | None:
    """A validated, JSON-normalised copy of ``filter`` (``None`` stays ``None``)."""
    if filter is None:
        return None
    if not isinstance(filter, Mapping):
        msg = (
            "filter must be a dict like {'ids': [...], 'metadata': {...}} or None, "
            f"got {type(filter).__name__}"
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
        ids = filter["ids"]
        if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
            msg = f"filter['ids'] must be a list of ids, got {type(ids).__name__}"
            raise TypeError(msg)
        out["ids"] = list(ids)
    if "metadata" in filter:
        meta = filter["metadata"]
        if not isinstance(meta, Mapping):
            msg = (
                "filter['metadata'] must be a dict of key -> required value, "
                f"got {type(meta).__name__}"
            )
            raise TypeError(msg)
        out["metadata"] = json_copy(dict(meta), "filter['metadata']")
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
    if "metadata" in filter:
        want = filter["metadata"]
        for r in np.flatnonzero(mask):
            meta = table.metadata[r]
            if any(k not in meta or meta[k] != v for k, v in want.items()):
                mask[r] = False
    return mask
