"""Persistent in-process indexes with exact search: :class:`DenseIndex` and :class:`ColBERTIndex`.

Both keep texts, string ids and JSON metadata next to the vectors and offer
``add`` / ``delete`` / ``search`` / ``save`` / ``load``:

* ``DenseIndex``: one float32 vector per document; exact top-k by cosine (dot product of unit
  vectors), computed chunk by chunk.
* ``ColBERTIndex``: all documents' token vectors in flat float16 matrices plus int64 offsets
  (about ``tokens x dim x 2`` bytes per document, no padding); exact MaxSim over every
  document, chunk by chunk (:func:`~lfm_retrievers.scoring.maxsim_flat`), so search memory is
  bounded by ``chunk_tokens``, not by the corpus.

**Adding** streams: texts (any iterable) are encoded ``add_chunk`` documents at a time, so
building from an iterator needs the index's own size plus one chunk. New documents become
visible only when the whole ``add`` succeeded; a duplicate id (within the call or already
indexed) raises ValueError naming it and nothing is added. ``delete`` of unknown ids raises
KeyError naming them and nothing is deleted. Deleted documents are dropped from the vectors at
the next ``save`` (or as soon as more than half of the rows are deleted).

**Search filters** (``filter=``), combined with AND:

* ``{"ids": [...]}``: only these ids (ids not in the index are ignored);
* ``{"metadata": {"key": value, ...}}``: only documents whose metadata has every key equal to
  the value (values compare as JSON, so a tuple equals the stored list).

Ties are broken by insertion order. An empty index, or a filter nothing passes, returns ``[]``.

**Saving** writes ``index.json`` (format version, package version, the model's name and
fingerprint, counts, checksums), ``docs.json`` (ids, texts, metadata) and ``.npy`` arrays into
a temporary folder next to the target, then renames it into place: an interrupted save leaves
the previous index intact. ``load`` memory-maps the vectors (``np.load(mmap_mode="r")``, never
pickle), checks sizes, checksums, shapes and the model, and raises :class:`IndexFormatError`
(a ValueError) for a corrupted, truncated, foreign or newer-format folder and ValueError for
another model; nothing is half-loaded.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import torch
from tqdm.auto import tqdm

from ._io import replace_dir
from .rerank import check_top_k
from .scoring import DEFAULT_CHUNK_TOKENS, check_score_mode, maxsim_flat

logger = logging.getLogger(__name__)

INDEX_FORMAT = "lfm-retrievers-index"
INDEX_FORMAT_VERSION = 1
MANIFEST = "index.json"
DOCS_FILE = "docs.json"
VECTORS_FILE = "vectors.npy"
OFFSETS_FILE = "offsets.npy"
DEFAULT_ADD_CHUNK = 512
_MERGE_BELOW_BYTES = 16 * 2**20
_FILTER_KEYS = ("ids", "metadata")
_MISSING: Any = object()


class IndexFormatError(ValueError):
    """A saved index that cannot be loaded: missing, truncated or corrupted files, another
    index kind, or a format version newer than this package reads."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result; ``metadata`` is a copy, ``rank`` starts at 1."""

    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    rank: int


@dataclass(frozen=True)
class _Segment:
    """Documents ``first_row .. first_row + n`` with vectors ``vectors[offsets[i]:offsets[i+1]]``."""

    vectors: np.ndarray  # (T, dim), storage dtype; may be a read-only memory map
    offsets: np.ndarray  # (n + 1,) int64
    first_row: int

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    @property
    def in_memory(self) -> bool:
        return not isinstance(self.vectors, np.memmap)


def _json_copy(value: Any, what: str) -> Any:
    """A JSON-normalised deep copy (what ``save`` / ``load`` will give back)."""
    try:
        return json.loads(json.dumps(value, ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as exc:
        msg = f"{what} must be JSON-serialisable (str keys; str, number, bool, None, list, dict values): {exc}"
        raise TypeError(msg) from exc


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class _VectorIndex:
    """Shared machinery of the two indexes (documents as blocks of vectors)."""

    kind: ClassVar[Literal["dense", "colbert"]]
    storage_dtype: ClassVar[type[np.floating[Any]]]

    def __init__(
        self,
        encoder: Any,
        *,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        add_chunk: int = DEFAULT_ADD_CHUNK,
    ) -> None:
        if isinstance(encoder, str | os.PathLike):
            self._encoder: Any = None
            self._encoder_name: str | os.PathLike[str] | None = encoder
        else:
            self._check_encoder(encoder)
            self._encoder = encoder
            self._encoder_name = None
        for name, value in (("chunk_tokens", chunk_tokens), ("add_chunk", add_chunk)):
            check_top_k(value, name)
        self.chunk_tokens = chunk_tokens
        self.add_chunk = add_chunk
        self._lock = threading.RLock()
        self._ids: list[str] = []
        self._texts: list[str] = []
        self._metadata: list[dict[str, Any]] = []
        self._alive = np.zeros(0, dtype=bool)
        self._row_of: dict[str, int] = {}
        self._segments: list[_Segment] = []
        self._dim: int | None = None

    # ------------------------------------------------------------------ encoder
    @classmethod
    def _check_encoder(cls, encoder: object) -> None:
        kind = getattr(encoder, "kind", None)
        if kind != cls.kind:
            want = "DenseEncoder" if cls.kind == "dense" else "ColBERTEncoder"
            msg = (
                f"{cls.__name__} needs a {want} (or a model name/path), got {type(encoder).__name__}"
                + (f" (a {kind} encoder)" if kind else "")
            )
            raise TypeError(msg)

    @property
    def encoder(self) -> Any:
        """The encoder (loaded on first use when a model name or path was given)."""
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    from .encoders import get_encoder

                    assert self._encoder_name is not None
                    self._encoder = get_encoder(self._encoder_name, expect=self.kind)
        return self._encoder

    def _encode_documents(self, texts: list[str], batch_size: int) -> list[np.ndarray]:
        raise NotImplementedError

    def _encode_query(self, query: str) -> np.ndarray:
        raise NotImplementedError

    def _score_block(
        self, query: np.ndarray, vectors: np.ndarray, offsets: np.ndarray
    ) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._row_of

    @property
    def ids(self) -> list[str]:
        """Ids of the documents, in insertion order (a copy)."""
        with self._lock:
            return [self._ids[r] for r in np.flatnonzero(self._alive)]

    @property
    def dim(self) -> int | None:
        """Vector dimension (None until the first document is added)."""
        return self._dim

    @property
    def n_vectors(self) -> int:
        """Stored vectors, deleted documents' included until the next compaction."""
        return sum(len(s.vectors) for s in self._segments)

    @property
    def nbytes(self) -> int:
        """Bytes of stored vectors and offsets (memory-mapped ones included)."""
        return sum(int(s.vectors.nbytes) + int(s.offsets.nbytes) for s in self._segments)

    def get(self, doc_id: str) -> tuple[str, dict[str, Any]]:
        """``(text, metadata)`` of one document (metadata is a copy); KeyError if unknown."""
        with self._lock:
            row = self._row_of.get(doc_id)
            if row is None:
                msg = f"unknown id: {doc_id!r}"
                raise KeyError(msg)
            return self._texts[row], copy.deepcopy(self._metadata[row])

    def __repr__(self) -> str:
        name = self._encoder.name if self._encoder is not None else self._encoder_name
        return f"{type(self).__name__}(encoder={str(name)!r}, n_docs={len(self)}, n_vectors={self.n_vectors})"

    # ------------------------------------------------------------------ add / delete
    def add(
        self,
        texts: Iterable[str],
        ids: Iterable[str] | None = None,
        metadata: Iterable[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> list[str]:
        """Encode and add documents; returns their ids (random hex ids when ``ids`` is None).

        ``texts`` may be any iterable (streamed ``add_chunk`` documents at a time); ``ids`` and
        ``metadata`` must have the same length. Everything is validated before it becomes
        visible; on any error nothing is added. ``show_progress=None`` shows a bar only for
        builds that take more than a couple of seconds.
        """
        from .encoders import check_batch_size

        if texts is None or isinstance(texts, str | bytes):
            msg = f"texts must be an iterable of str, got {type(texts).__name__}"
            raise TypeError(msg)
        batch_size = check_batch_size(batch_size)
        total = len(texts) if isinstance(texts, Sequence) else None
        for name, values in (("ids", ids), ("metadata", metadata)):
            if isinstance(values, str | bytes | Mapping):
                msg = f"{name} must be a list with one entry per text, got a single {type(values).__name__}"
                raise TypeError(msg)
            if total is not None and isinstance(values, Sequence) and len(values) != total:
                msg = f"got {total} texts but {len(values)} {name}"
                raise ValueError(msg)
        if isinstance(texts, Sequence):
            self._check_all(texts, ids, metadata)  # fail before encoding anything
        with self._lock:
            taken = set(self._row_of)
        pending: list[
            tuple[list[str], list[str], list[dict[str, Any]], np.ndarray, np.ndarray]
        ] = []
        seen: set[str] = set()
        bar = tqdm(
            total=total,
            desc=f"indexing ({self.kind})",
            unit="doc",
            disable=show_progress is False,
            delay=0.0 if show_progress else 2.0,
        )
        try:
            for chunk in self._chunks(texts, ids, metadata):
                c_texts, c_ids, c_meta = chunk
                dup = sorted({i for i in c_ids if i in taken or i in seen})
                if dup:
                    msg = f"duplicate ids (already in the index or repeated): {dup[:10]}" + (
                        f" and {len(dup) - 10} more" if len(dup) > 10 else ""
                    )
                    raise ValueError(msg)
                seen.update(c_ids)
                vectors, offsets = self._pack(self._encode_documents(c_texts, batch_size))
                pending.append((c_ids, c_texts, c_meta, vectors, offsets))
                bar.update(len(c_texts))
        finally:
            bar.close()
        added: list[str] = []
        with self._lock:
            clash = sorted(seen & set(self._row_of))
            if clash:  # another thread added them meanwhile
                msg = f"duplicate ids (already in the index): {clash[:10]}"
                raise ValueError(msg)
            for c_ids, c_texts, c_meta, vectors, offsets in pending:
                self._append(vectors, offsets, c_ids, c_texts, c_meta)
                added.extend(c_ids)
        return added

    def _check_all(
        self,
        texts: Sequence[str],
        ids: Iterable[str] | None,
        metadata: Iterable[Mapping[str, Any] | None] | None,
    ) -> None:
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                msg = f"texts[{i}] must be str, got {type(t).__name__}: {t!r:.60}"
                raise TypeError(msg)
        if isinstance(ids, Sequence):
            self._check_ids(ids)
            counts: dict[str, int] = {}
            for i in ids:
                counts[i] = counts.get(i, 0) + 1
            dup = sorted(i for i, c in counts.items() if c > 1 or i in self._row_of)
            if dup:
                msg = f"duplicate ids (already in the index or repeated): {dup[:10]}" + (
                    f" and {len(dup) - 10} more" if len(dup) > 10 else ""
                )
                raise ValueError(msg)
        if isinstance(metadata, Sequence):
            for i, m in enumerate(metadata):
                self._check_metadata(m, i)

    @staticmethod
    def _check_ids(ids: Sequence[object]) -> None:
        for i, v in enumerate(ids):
            if not isinstance(v, str):
                msg = f"ids[{i}] must be str, got {type(v).__name__}: {v!r:.60}"
                raise TypeError(msg)

    @staticmethod
    def _check_metadata(m: object, i: int) -> dict[str, Any]:
        if m is None:
            return {}
        if not isinstance(m, Mapping):
            msg = f"metadata[{i}] must be a dict or None, got {type(m).__name__}"
            raise TypeError(msg)
        return dict(_json_copy(dict(m), f"metadata[{i}]"))

    def _chunks(
        self,
        texts: Iterable[str],
        ids: Iterable[str] | None,
        metadata: Iterable[Mapping[str, Any] | None] | None,
    ) -> Iterator[tuple[list[str], list[str], list[dict[str, Any]]]]:
        id_iter = iter(ids) if ids is not None else None
        meta_iter = iter(metadata) if metadata is not None else None
        c_texts: list[str] = []
        c_ids: list[str] = []
        c_meta: list[dict[str, Any]] = []
        n = 0
        for t in texts:
            if not isinstance(t, str):
                msg = f"texts[{n}] must be str, got {type(t).__name__}: {t!r:.60}"
                raise TypeError(msg)
            if id_iter is None:
                doc_id: Any = uuid.uuid4().hex
            else:
                doc_id = next(id_iter, _MISSING)
                if doc_id is _MISSING:
                    msg = f"fewer ids than texts ({n})"
                    raise ValueError(msg)
                self._check_ids([doc_id])
            meta: Any = None
            if meta_iter is not None:
                meta = next(meta_iter, _MISSING)
                if meta is _MISSING:
                    msg = f"fewer metadata entries than texts ({n})"
                    raise ValueError(msg)
            c_texts.append(t)
            c_ids.append(doc_id)
            c_meta.append(self._check_metadata(meta, n))
            n += 1
            if len(c_texts) >= self.add_chunk:
                yield c_texts, c_ids, c_meta
                c_texts, c_ids, c_meta = [], [], []
        for name, it in (("ids", id_iter), ("metadata entries", meta_iter)):
            if it is not None and next(it, _MISSING) is not _MISSING:
                msg = f"more {name} than texts ({n})"
                raise ValueError(msg)
        if c_texts:
            yield c_texts, c_ids, c_meta

    def _pack(self, blocks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Documents' vector blocks as one flat storage-dtype matrix plus offsets."""
        lengths = np.array([len(b) for b in blocks], dtype=np.int64)
        offsets = np.zeros(len(blocks) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        dim = blocks[0].shape[1] if blocks else (self._dim or 0)
        if self._dim is not None and dim != self._dim:
            msg = f"vectors of dim {dim} cannot join an index of dim {self._dim}"
            raise ValueError(msg)
        vectors = np.empty((int(offsets[-1]), dim), dtype=self.storage_dtype)
        for b, a, z in zip(blocks, offsets[:-1], offsets[1:], strict=True):
            vectors[a:z] = b
        return vectors, offsets

    def _append(
        self,
        vectors: np.ndarray,
        offsets: np.ndarray,
        ids: list[str],
        texts: list[str],
        metadata: list[dict[str, Any]],
    ) -> None:
        """Make packed documents visible (caller holds the lock and has checked the ids)."""
        if not ids:
            return
        first = len(self._ids)
        last = self._segments[-1] if self._segments else None
        if (
            last is not None
            and last.in_memory
            and last.vectors.nbytes < _MERGE_BELOW_BYTES
            and last.first_row + last.n_docs == first
        ):
            merged_vectors = np.concatenate([last.vectors, vectors])
            merged_offsets = np.concatenate([last.offsets, offsets[1:] + last.offsets[-1]])
            self._segments[-1] = _Segment(merged_vectors, merged_offsets, last.first_row)
        else:
            self._segments.append(_Segment(vectors, offsets, first))
        self._dim = int(vectors.shape[1])
        self._ids.extend(ids)
        self._texts.extend(texts)
        self._metadata.extend(metadata)
        self._alive = np.concatenate([self._alive, np.ones(len(ids), dtype=bool)])
        for i, doc_id in enumerate(ids):
            self._row_of[doc_id] = first + i

    def delete(self, ids: str | Iterable[str]) -> None:
        """Remove documents by id (a single str is one id); unknown ids raise KeyError and
        nothing is removed."""
        wanted = [ids] if isinstance(ids, str) else list(ids)
        with self._lock:
            unknown = [i for i in dict.fromkeys(wanted) if i not in self._row_of]
            if unknown:
                msg = f"unknown ids, nothing deleted: {unknown[:10]}" + (
                    f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
                )
                raise KeyError(msg)
            alive = self._alive.copy()
            for doc_id in dict.fromkeys(wanted):
                alive[self._row_of.pop(doc_id)] = False
            self._alive = alive  # texts and metadata go at the next compaction
            if len(self._row_of) * 2 < len(self._ids):
                self._compact()

    def _compact(self) -> None:
        """Drop deleted documents' rows and vectors (caller holds the lock)."""
        rows = np.flatnonzero(self._alive)
        segments = []
        for vectors, offsets in self._alive_blocks(self._segments, self._alive):
            segments.append(_Segment(vectors, offsets, 0))
        self._ids = [self._ids[r] for r in rows]
        self._texts = [self._texts[r] for r in rows]
        self._metadata = [self._metadata[r] for r in rows]
        self._alive = np.ones(len(rows), dtype=bool)
        self._row_of = {doc_id: r for r, doc_id in enumerate(self._ids)}
        self._segments = []
        first = 0
        for s in segments:
            self._segments.append(_Segment(s.vectors, s.offsets, first))
            first += s.n_docs

    @staticmethod
    def _alive_blocks(
        segments: Sequence[_Segment], alive: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Per segment, the living documents' vectors (copied) and offsets."""
        for s in segments:
            keep = alive[s.first_row : s.first_row + s.n_docs]
            if keep.all():
                yield np.array(s.vectors), s.offsets.copy()
                continue
            lengths = np.diff(s.offsets)[keep]
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            vectors = np.empty((int(offsets[-1]), s.vectors.shape[1]), dtype=s.vectors.dtype)
            for j, local in enumerate(np.flatnonzero(keep)):
                vectors[offsets[j] : offsets[j + 1]] = s.vectors[
                    s.offsets[local] : s.offsets[local + 1]
                ]
            if len(lengths):
                yield vectors, offsets

    # ------------------------------------------------------------------ search
    def _candidate_mask(self, filter: Mapping[str, Any] | None) -> np.ndarray:
        """Rows that may be returned: alive and passing ``filter`` (caller holds the lock)."""
        mask = self._alive.copy()
        if filter is None:
            return mask
        if "ids" in filter:
            allowed = np.zeros_like(mask)
            for doc_id in filter["ids"]:
                row = self._row_of.get(doc_id)
                if row is not None:
                    allowed[row] = True
            mask &= allowed
        if "metadata" in filter:
            want = filter["metadata"]
            for r in np.flatnonzero(mask):
                meta = self._metadata[r]
                if any(k not in meta or meta[k] != v for k, v in want.items()):
                    mask[r] = False
        return mask

    @staticmethod
    def _check_filter(filter: object) -> dict[str, Any] | None:
        if filter is None:
            return None
        if not isinstance(filter, Mapping):
            msg = f"filter must be a dict like {{'ids': [...], 'metadata': {{...}}}} or None, got {type(filter).__name__}"
            raise TypeError(msg)
        bad = [k for k in filter if k not in _FILTER_KEYS]
        if bad:
            msg = f"unknown filter keys {bad}; valid keys: {list(_FILTER_KEYS)} (e.g. {{'metadata': {{'lang': 'en'}}}})"
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
                msg = f"filter['metadata'] must be a dict of key -> required value, got {type(meta).__name__}"
                raise TypeError(msg)
            out["metadata"] = _json_copy(dict(meta), "filter['metadata']")
        return out

    def _search_vectors(
        self, query: np.ndarray, k: int, filter: dict[str, Any] | None
    ) -> list[tuple[int, float, str, str, dict[str, Any]]]:
        """Top-k ``(row, raw score, id, text, metadata copy)`` for an encoded query."""
        with self._lock:  # a consistent snapshot: mutations replace these objects
            segments = list(self._segments)
            mask = self._candidate_mask(filter)
            ids, texts, metadata = self._ids, self._texts, self._metadata
        n_candidates = int(mask.sum())
        if n_candidates == 0:
            return []
        scores = np.full(len(mask), -np.inf, dtype=np.float32)
        sparse = n_candidates * 4 < len(mask)
        for s in segments:
            local = mask[s.first_row : s.first_row + s.n_docs]
            if not local.any():
                continue
            if not sparse:
                block = self._score_block(query, s.vectors, s.offsets)
                scores[s.first_row : s.first_row + s.n_docs] = np.where(local, block, -np.inf)
                continue
            for rows, vectors, offsets in self._gather(s, np.flatnonzero(local)):
                scores[s.first_row + rows] = self._score_block(query, vectors, offsets)
        candidates = np.flatnonzero(mask)
        cand_scores = scores[candidates]
        if len(candidates) > k:
            kth = np.partition(cand_scores, len(cand_scores) - k)[len(cand_scores) - k]
            keep = cand_scores >= kth
            candidates, cand_scores = candidates[keep], cand_scores[keep]
        order = np.lexsort((candidates, -cand_scores))[:k]
        return [
            (
                int(candidates[j]),
                float(cand_scores[j]),
                ids[candidates[j]],
                texts[candidates[j]],
                copy.deepcopy(metadata[candidates[j]]),
            )
            for j in order
        ]

    def _gather(
        self, s: _Segment, local_rows: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Selected documents of a segment, copied in groups of at most ``chunk_tokens`` vectors."""
        lengths = s.offsets[local_rows + 1] - s.offsets[local_rows]
        start = 0
        while start < len(local_rows):
            total, end = 0, start
            while end < len(local_rows) and (
                end == start or total + lengths[end] <= self.chunk_tokens
            ):
                total += int(lengths[end])
                end += 1
            rows = local_rows[start:end]
            offsets = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum(lengths[start:end], out=offsets[1:])
            vectors = np.empty((total, s.vectors.shape[1]), dtype=s.vectors.dtype)
            for j, r in enumerate(rows):
                vectors[offsets[j] : offsets[j + 1]] = s.vectors[s.offsets[r] : s.offsets[r + 1]]
            yield rows, vectors, offsets
            start = end

    def _check_query(self, query: object) -> str:
        if not isinstance(query, str):
            msg = f"query must be str, got {type(query).__name__}"
            raise TypeError(msg)
        return query

    @staticmethod
    def _hits(
        found: list[tuple[int, float, str, str, dict[str, Any]]], divisor: int = 1
    ) -> list[SearchHit]:
        return [
            SearchHit(id=doc_id, score=score / divisor, text=text, metadata=meta, rank=rank)
            for rank, (_, score, doc_id, text, meta) in enumerate(found, 1)
        ]

    # ------------------------------------------------------------------ persistence
    def _model_stamp(self) -> dict[str, Any]:
        enc = self.encoder
        return {
            "name": str(enc.name),
            "fingerprint": str(enc.fingerprint),
            "kind": self.kind,
            "dim": int(enc.dim),
        }

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the index to ``directory`` atomically (a temporary folder, then a rename).

        An existing ``directory`` is replaced only if it is empty or holds a saved index;
        if anything fails, the previous contents stay as they were.
        """
        from . import __version__

        target = Path(directory)
        if target.exists() and (
            not target.is_dir() or (any(target.iterdir()) and not (target / MANIFEST).exists())
        ):
            msg = f"{target} exists and is not a saved index; refusing to overwrite it"
            raise ValueError(msg)
        target.parent.mkdir(parents=True, exist_ok=True)
        model = self._model_stamp()
        with self._lock:
            segments = list(self._segments)
            alive = self._alive.copy()
            rows = np.flatnonzero(alive)
            ids = [self._ids[r] for r in rows]
            texts = [self._texts[r] for r in rows]
            metadata = [self._metadata[r] for r in rows]
            dim = self._dim if self._dim is not None else model["dim"]
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            n_vectors = self._write_arrays(tmp, segments, alive, dim)
            docs = json.dumps(
                {"ids": ids, "texts": texts, "metadata": metadata}, ensure_ascii=False
            ).encode("utf-8")
            _fsync_write(tmp / DOCS_FILE, docs)
            files = {
                name: {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)}
                for name in (DOCS_FILE, OFFSETS_FILE)
            }
            files[VECTORS_FILE] = {"bytes": (tmp / VECTORS_FILE).stat().st_size}
            manifest = {
                "format": INDEX_FORMAT,
                "format_version": INDEX_FORMAT_VERSION,
                "index_kind": self.kind,
                "package": "lfm-retrievers",
                "package_version": __version__,
                "model": model,
                "dtype": np.dtype(self.storage_dtype).name,
                "dim": int(dim),
                "n_documents": len(ids),
                "n_vectors": n_vectors,
                "files": files,
            }
            _fsync_write(tmp / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
            replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("saved %s of %d documents to %s", type(self).__name__, len(ids), target)

    def _write_arrays(
        self, tmp: Path, segments: Sequence[_Segment], alive: np.ndarray, dim: int
    ) -> int:
        """Stream the living documents' vectors into one .npy (never all in memory at once)."""
        lengths = [
            np.diff(s.offsets)[alive[s.first_row : s.first_row + s.n_docs]] for s in segments
        ]
        all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
        offsets = np.zeros(len(all_lengths) + 1, dtype=np.int64)
        np.cumsum(all_lengths, out=offsets[1:])
        n_vectors = int(offsets[-1])
        path = tmp / VECTORS_FILE
        if n_vectors == 0:
            np.save(path, np.zeros((0, dim), dtype=self.storage_dtype), allow_pickle=False)
        else:
            out = np.lib.format.open_memmap(
                path, mode="w+", dtype=self.storage_dtype, shape=(n_vectors, dim)
            )
            pos = 0
            for s in segments:
                keep = alive[s.first_row : s.first_row + s.n_docs]
                for local in _runs(keep):
                    a, z = int(s.offsets[local[0]]), int(s.offsets[local[1]])
                    out[pos : pos + z - a] = s.vectors[a:z]
                    pos += z - a
            out.flush()
            del out
        with path.open("rb+") as f:
            os.fsync(f.fileno())
        with (tmp / OFFSETS_FILE).open("wb") as f:
            np.save(f, offsets, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        return n_vectors

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        encoder: Any = None,
        *,
        model: str | os.PathLike[str] | None = None,
        mmap: bool = True,
    ) -> Self:
        """Open a saved index; vectors are memory-mapped unless ``mmap=False``.

        ``encoder`` (an encoder or a model name/path) or ``model`` (a name/path) gives the
        encoder for queries and new documents; by default the model named in the index is
        loaded. It must be the model the index was built with (same fingerprint).
        """
        if encoder is not None and model is not None:
            msg = "give encoder= or model=, not both"
            raise ValueError(msg)
        path = Path(directory)
        manifest, docs, vectors, offsets = cls._read_files(path, mmap)
        stamp = manifest["model"]
        source = encoder if encoder is not None else model
        if source is None:
            source = stamp["name"]
        if isinstance(source, str | os.PathLike):
            from .encoders import get_encoder

            try:
                source = get_encoder(source, expect=cls.kind)
            except Exception as exc:
                msg = (
                    f"could not load the model of the index in {path} ({stamp['name']!r}, "
                    f"fingerprint {stamp['fingerprint']}); pass encoder= or model=: {exc}"
                )
                raise ValueError(msg) from exc
        cls._check_encoder(source)
        if str(source.fingerprint) != stamp["fingerprint"]:
            msg = (
                f"the index in {path} was built with model {stamp['name']!r} (fingerprint "
                f"{stamp['fingerprint']}), not {str(source.name)!r} (fingerprint "
                f"{source.fingerprint}); its vectors are not comparable: rebuild it or load "
                f"it with that model"
            )
            raise ValueError(msg)
        index = cls(source)
        ids, texts, metadata = docs["ids"], docs["texts"], docs["metadata"]
        if ids:
            index._append(vectors, offsets, ids, texts, metadata)
        index._dim = int(manifest["dim"])
        return index

    @classmethod
    def _read_files(
        cls, path: Path, mmap: bool
    ) -> tuple[dict[str, Any], dict[str, Any], np.ndarray, np.ndarray]:
        def bad(why: str, exc: BaseException | None = None) -> IndexFormatError:
            err = IndexFormatError(f"cannot load the index in {path}: {why}")
            if exc is not None:
                err.__cause__ = exc
            return err

        if not (path / MANIFEST).is_file():
            raise bad(f"no {MANIFEST} (not a saved index, or an incomplete copy)")
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise bad(f"{MANIFEST} is not valid JSON (corrupted?)", exc) from exc
        if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT:
            raise bad(f"{MANIFEST} is not an lfm-retrievers index manifest")
        version = manifest.get("format_version")
        if not isinstance(version, int) or version > INDEX_FORMAT_VERSION:
            raise bad(
                f"it was written in index format v{version} by lfm-retrievers "
                f"{manifest.get('package_version')}; this version reads up to "
                f"v{INDEX_FORMAT_VERSION}: upgrade lfm-retrievers"
            )
        if manifest.get("index_kind") != cls.kind:
            other = "DenseIndex" if manifest.get("index_kind") == "dense" else "ColBERTIndex"
            raise bad(f"it is a {manifest.get('index_kind')} index: open it with {other}.load")
        try:
            files = manifest["files"]
            n_docs, n_vectors, dim = (
                int(manifest["n_documents"]),
                int(manifest["n_vectors"]),
                int(manifest["dim"]),
            )
            stamp = manifest["model"]
            if not isinstance(stamp["name"], str) or not isinstance(stamp["fingerprint"], str):
                raise TypeError("model name and fingerprint must be strings")
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"{MANIFEST} lacks required fields", exc) from exc
        for name in (DOCS_FILE, OFFSETS_FILE, VECTORS_FILE):
            file = path / name
            if not file.is_file():
                raise bad(f"{name} is missing")
            want = files.get(name, {})
            size = file.stat().st_size
            if size != want.get("bytes"):
                raise bad(f"{name} has {size} bytes, expected {want.get('bytes')} (truncated?)")
            if "sha256" in want and _sha256(file) != want["sha256"]:
                raise bad(f"{name} does not match its checksum (corrupted)")
        try:
            docs = json.loads((path / DOCS_FILE).read_text(encoding="utf-8"))
            offsets = np.load(path / OFFSETS_FILE, allow_pickle=False)
            vectors = np.load(
                path / VECTORS_FILE, allow_pickle=False, mmap_mode="r" if mmap else None
            )
        except (OSError, ValueError, EOFError) as exc:
            raise bad(f"unreadable file: {exc}", exc) from exc
        if (
            not isinstance(docs, dict)
            or not all(isinstance(docs.get(k), list) for k in ("ids", "texts", "metadata"))
            or not len(docs["ids"]) == len(docs["texts"]) == len(docs["metadata"]) == n_docs
            or len(set(docs["ids"])) != n_docs
        ):
            raise bad(f"{DOCS_FILE} does not hold {n_docs} unique ids, texts and metadata")
        if vectors.shape != (n_vectors, dim) or vectors.dtype != np.dtype(cls.storage_dtype):
            raise bad(
                f"{VECTORS_FILE} is {vectors.shape} {vectors.dtype}, expected "
                f"({n_vectors}, {dim}) {np.dtype(cls.storage_dtype).name}"
            )
        if (
            offsets.shape != (n_docs + 1,)
            or offsets.dtype != np.int64
            or offsets[0] != 0
            or offsets[-1] != n_vectors
            or (np.diff(offsets) < 0).any()
        ):
            raise bad(f"{OFFSETS_FILE} does not describe {n_docs} documents of {n_vectors} vectors")
        return manifest, docs, vectors, offsets


def _runs(keep: np.ndarray) -> Iterator[tuple[int, int]]:
    """``[a, b)`` ranges of consecutive True values."""
    if not len(keep):
        return
    padded = np.concatenate([[False], keep, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        yield int(a), int(b)


class DenseIndex(_VectorIndex):
    """Exact cosine search over dense document vectors (float32), persisted as JSON + .npy.

    >>> index = DenseIndex(load("LiquidAI/LFM2.5-Embedding-350M"))  # doctest: +SKIP
    >>> index.add(["Mars is red.", "Venus is hot."], ids=["mars", "venus"])  # doctest: +SKIP
    >>> index.search("red planet", k=1)[0].id  # doctest: +SKIP
    'mars'
    """

    kind = "dense"
    storage_dtype = np.float32

    def _encode_documents(self, texts: list[str], batch_size: int) -> list[np.ndarray]:
        vectors = self.encoder.encode_documents(texts, batch_size=batch_size, show_progress=False)
        return [np.asarray(v)[None, :] for v in vectors]

    def _encode_query(self, query: str) -> np.ndarray:
        return np.asarray(self.encoder.encode_queries([query], show_progress=False)[0], np.float32)

    def _score_block(
        self, query: np.ndarray, vectors: np.ndarray, offsets: np.ndarray
    ) -> np.ndarray:
        out = np.empty(len(vectors), dtype=np.float32)
        step = max(1, self.chunk_tokens)
        for a in range(0, len(vectors), step):
            np.matmul(vectors[a : a + step], query, out=out[a : a + step])
        return out

    def search(
        self, query: str, k: int = 10, filter: Mapping[str, Any] | None = None
    ) -> list[SearchHit]:
        """The ``k`` documents most similar to ``query`` (cosine), best first."""
        k = check_top_k(k, "k")
        query = self._check_query(query)
        flt = self._check_filter(filter)
        if not len(self):
            return []
        return self.search_vectors(self._encode_query(query), k, flt)

    def search_vectors(
        self, query_vector: np.ndarray, k: int = 10, filter: Mapping[str, Any] | None = None
    ) -> list[SearchHit]:
        """Like :meth:`search`, for an already encoded (unit) query vector ``(dim,)``."""
        k = check_top_k(k, "k")
        flt = self._check_filter(filter)
        q = np.asarray(query_vector, dtype=np.float32)
        if q.ndim != 1 or (self._dim is not None and len(q) != self._dim):
            msg = f"query_vector must have shape ({self._dim},), got {q.shape}"
            raise ValueError(msg)
        return self._hits(self._search_vectors(q, k, flt))


class ColBERTIndex(_VectorIndex):
    """Exact MaxSim search over ColBERT token vectors (flat float16 + offsets), persisted as
    JSON + .npy and memory-mapped on load.

    >>> index = ColBERTIndex(load("LiquidAI/LFM2.5-ColBERT-350M"))  # doctest: +SKIP
    >>> index.add(["Mars is red.", "Venus is hot."], ids=["mars", "venus"])  # doctest: +SKIP
    >>> index.search("red planet", k=1, filter={"ids": ["mars", "venus"]})[0].id  # doctest: +SKIP
    'mars'
    """

    kind = "colbert"
    storage_dtype = np.float16

    def _encode_documents(self, texts: list[str], batch_size: int) -> list[np.ndarray]:
        return list(
            self.encoder.encode_documents(texts, batch_size=batch_size, show_progress=False)
        )

    def _encode_query(self, query: str) -> np.ndarray:
        return np.asarray(self.encoder.encode_queries([query], show_progress=False)[0], np.float32)

    def _score_block(
        self, query: np.ndarray, vectors: np.ndarray, offsets: np.ndarray
    ) -> np.ndarray:
        device = getattr(self._encoder, "device", None)
        q = torch.from_numpy(query)
        if isinstance(device, torch.device) and device.type != "cpu":
            q = q.to(device)
        return maxsim_flat(q, vectors, offsets, chunk_tokens=self.chunk_tokens).cpu().numpy()

    def search(
        self,
        query: str,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        *,
        score: str = "raw",
    ) -> list[SearchHit]:
        """The ``k`` documents with the highest MaxSim for ``query``, best first.

        ``score``: ``"raw"`` (MaxSim sum) or ``"mean"`` (÷ query vectors), see
        :mod:`lfm_retrievers.scoring`.
        """
        k = check_top_k(k, "k")
        query = self._check_query(query)
        check_score_mode(score)
        flt = self._check_filter(filter)
        if not len(self):
            return []
        return self.search_vectors(self._encode_query(query), k, flt, score=score)

    def search_vectors(
        self,
        query_vectors: np.ndarray,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        *,
        score: str = "raw",
    ) -> list[SearchHit]:
        """Like :meth:`search`, for already encoded query vectors ``(q, dim)``."""
        k = check_top_k(k, "k")
        mode = check_score_mode(score)
        flt = self._check_filter(filter)
        q = np.ascontiguousarray(query_vectors, dtype=np.float32)
        if q.ndim != 2 or (self._dim is not None and q.shape[1] != self._dim):
            msg = f"query_vectors must have shape (n, {self._dim}), got {q.shape}"
            raise ValueError(msg)
        return self._hits(self._search_vectors(q, k, flt), len(q) if mode == "mean" else 1)


__all__ = ["ColBERTIndex", "DenseIndex", "IndexFormatError", "SearchHit"]
