"""The document table of an in-process index: ids, texts, metadata and which rows are alive.

Rows are appended in insertion order and never reordered, except by :meth:`compact`, which
drops deleted rows and replaces the lists. The ``alive`` mask is replaced on every change, never
edited, so a reader that took the mask and the lists under the index lock keeps a consistent
view while a writer goes on.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from lfm_retrievers._validation import check_json, check_str, type_error

_MISSING: Any = object()


def json_copy(value: Any, what: str) -> Any:
    """A JSON-normalised deep copy of ``value`` (what a save and load round trip gives back)."""
    return check_json(value, what)


def check_id(value: object, position: int) -> str:
    """A document id: a ``str`` that is valid UTF-8."""
    return check_str(value, f"ids[{position}]")


def check_metadata(value: object, position: int) -> dict[str, Any]:
    """One document's metadata: a dict (JSON-normalised copy) or ``None`` (empty)."""
    if value is None:
        return {}
    name = f"metadata[{position}]"
    if not isinstance(value, Mapping):
        raise type_error(name, "a dict or None", value)
    return dict(check_json(value, name))


def _show(items: Sequence[str], limit: int = 10) -> str:
    return f"{list(items[:limit])}" + (
        f" and {len(items) - limit} more" if len(items) > limit else ""
    )


def check_batch(
    texts: Sequence[object],
    ids: Iterable[object] | None,
    metadata: Iterable[object] | None,
    taken: Iterable[str] = (),
) -> None:
    """Check a whole batch of documents (when it is a sequence) before anything is encoded."""
    for i, t in enumerate(texts):
        check_str(t, f"texts[{i}]")
    for name, values in (("ids", ids), ("metadata", metadata)):
        if isinstance(values, str | bytes | Mapping):
            raise type_error(name, "a list with one entry per text", values)
    if isinstance(ids, Sequence):
        checked = [check_id(v, i) for i, v in enumerate(ids)]
        existing = set(taken)
        counts: dict[str, int] = {}
        for doc_id in checked:
            counts[doc_id] = counts.get(doc_id, 0) + 1
        dup = sorted(d for d, c in counts.items() if c > 1 or d in existing)
        if dup:
            msg = f"duplicate ids (already in the index or repeated): {_show(dup)}"
            raise ValueError(msg)
    if isinstance(metadata, Sequence):
        for i, m in enumerate(metadata):
            check_metadata(m, i)


def document_chunks(
    texts: Iterable[str],
    ids: Iterable[str] | None,
    metadata: Iterable[Mapping[str, Any] | None] | None,
    chunk: int,
) -> Iterator[tuple[list[str], list[str], list[dict[str, Any]]]]:
    """Stream ``(texts, ids, metadata)`` in chunks of ``chunk`` documents, checking each one.

    Documents without ids get random hex ids; ``ids`` and ``metadata`` must have exactly one
    entry per text.
    """
    id_iter = iter(ids) if ids is not None else None
    meta_iter = iter(metadata) if metadata is not None else None
    c_texts: list[str] = []
    c_ids: list[str] = []
    c_meta: list[dict[str, Any]] = []
    n = 0
    for t in texts:
        check_str(t, f"texts[{n}]")
        if id_iter is None:
            doc_id = uuid.uuid4().hex
        else:
            value = next(id_iter, _MISSING)
            if value is _MISSING:
                msg = f"fewer ids than texts ({n})"
                raise ValueError(msg)
            doc_id = check_id(value, n)
        meta: Any = None
        if meta_iter is not None:
            meta = next(meta_iter, _MISSING)
            if meta is _MISSING:
                msg = f"fewer metadata entries than texts ({n})"
                raise ValueError(msg)
        c_texts.append(t)
        c_ids.append(doc_id)
        c_meta.append(check_metadata(meta, n))
        n += 1
        if len(c_texts) >= chunk:
            yield c_texts, c_ids, c_meta
            c_texts, c_ids, c_meta = [], [], []
    for name, it in (("ids", id_iter), ("metadata entries", meta_iter)):
        if it is not None and next(it, _MISSING) is not _MISSING:
            msg = f"more {name} than texts ({n})"
            raise ValueError(msg)
    if c_texts:
        yield c_texts, c_ids, c_meta


class DocumentTable:
    """Ids, texts and metadata of an index's documents, with an ``alive`` mask for deletes."""

    def __init__(self) -> None:
        """An empty table."""
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.metadata: list[dict[str, Any]] = []
        self.alive = np.zeros(0, dtype=bool)
        self.row_of: dict[str, int] = {}

    def __len__(self) -> int:
        """Living documents."""
        return len(self.row_of)

    @property
    def n_rows(self) -> int:
        """Rows, deleted ones included until the next :meth:`compact`."""
        return len(self.ids)

    def living_ids(self) -> list[str]:
        """Ids of the living documents in insertion order."""
        return [self.ids[r] for r in np.flatnonzero(self.alive)]

    def get(self, doc_id: str) -> tuple[str, dict[str, Any]]:
        """``(text, metadata copy)`` of one document; ``KeyError`` if unknown."""
        row = self.row_of.get(doc_id)
        if row is None:
            msg = f"unknown id: {doc_id!r}"
            raise KeyError(msg)
        return self.texts[row], copy.deepcopy(self.metadata[row])

    def append(self, ids: list[str], texts: list[str], metadata: list[dict[str, Any]]) -> int:
        """Add rows (ids already checked to be new); returns the first new row."""
        first = len(self.ids)
        # Lists grow in place: a reader's snapshot only looks at rows below its own mask.
        self.ids.extend(ids)
        self.texts.extend(texts)
        self.metadata.extend(metadata)
        self.alive = np.concatenate([self.alive, np.ones(len(ids), dtype=bool)])
        for i, doc_id in enumerate(ids):
            self.row_of[doc_id] = first + i
        return first

    def load_rows(
        self, ids: list[str], texts: list[str], metadata: list[dict[str, Any]], alive: np.ndarray
    ) -> None:
        """Take saved rows as they are (``alive`` False for deleted ones; living ids unique)."""
        self.ids, self.texts, self.metadata = ids, texts, metadata
        self.alive = alive.copy()
        self.row_of = {ids[r]: int(r) for r in np.flatnonzero(alive)}

    def unknown(self, ids: Iterable[str]) -> list[str]:
        """The ids of ``ids`` that are not in the table (first occurrences, in order)."""
        return [i for i in dict.fromkeys(ids) if i not in self.row_of]

    def delete(self, ids: Iterable[str]) -> None:
        """Mark documents deleted (ids already checked to be known)."""
        alive = self.alive.copy()
        for doc_id in dict.fromkeys(ids):
            alive[self.row_of.pop(doc_id)] = False
        self.alive = alive  # replaced, not edited: snapshots keep their mask

    def compact(self) -> None:
        """Drop deleted rows; row numbers of living documents shift down."""
        rows = np.flatnonzero(self.alive)
        self.ids = [self.ids[r] for r in rows]
        self.texts = [self.texts[r] for r in rows]
        self.metadata = [self.metadata[r] for r in rows]
        self.alive = np.ones(len(rows), dtype=bool)
        self.row_of = {doc_id: r for r, doc_id in enumerate(self.ids)}

    def living(self) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """Ids, texts and metadata of the living documents, in order."""
        rows = np.flatnonzero(self.alive)
        return (
            [self.ids[r] for r in rows],
            [self.texts[r] for r in rows],
            [self.metadata[r] for r in rows],
        )
