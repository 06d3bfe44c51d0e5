"""What the two in-process indexes share: documents as blocks of vectors, exact search, files.

A :class:`VectorIndex` is three parts: a :class:`~.table.DocumentTable` (ids, texts, metadata),
:class:`~.packed.PackedVectors` (the vectors, flat, with offsets) and the folder format of
:mod:`.format`. Subclasses say how to encode and how to score a block of documents.

**Adding** streams: texts (any iterable) are encoded ``add_chunk`` documents at a time, so
building from an iterator needs the index's own size plus one chunk. New documents become
visible only when the whole ``add`` succeeded; a duplicate id (within the call or already
indexed) raises ValueError naming it and nothing is added. ``delete`` of unknown ids raises
KeyError naming them and nothing is deleted. Deleted documents are dropped from the vectors at
the next ``save`` (or as soon as more than half of the rows are deleted).

Ties are broken by insertion order. An empty index, or a filter nothing passes, returns ``[]``.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
from tqdm.auto import tqdm

from lfm_retrievers._io import replace_dir
from lfm_retrievers._validation import (
    check_batch_size,
    check_finite,
    check_id_list,
    check_positive_int,
    check_str,
    type_error,
)
from lfm_retrievers.models.registry import EncoderSpec, get_encoder, resolve_encoder
from lfm_retrievers.results import SearchHit
from lfm_retrievers.scoring import DEFAULT_CHUNK_TOKENS

from . import format as fmt
from .filters import candidate_mask, check_filter
from .packed import PackedVectors
from .table import DocumentTable, check_batch, document_chunks

logger = logging.getLogger(__name__)

DEFAULT_ADD_CHUNK = 512


class VectorIndex:
    """Shared machinery of :class:`~.dense.DenseIndex` and :class:`~.colbert.ColBERTIndex`."""

    kind: ClassVar[Literal["dense", "colbert"]]
    storage_dtype: ClassVar[type[np.floating[Any]]]

    def __init__(
        self,
        encoder: Any,
        *,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        add_chunk: int = DEFAULT_ADD_CHUNK,
    ) -> None:
        """Configure the index; a model name, path or ``EncoderSpec`` loads on first use.

        Args:
            encoder: A loaded encoder of this index's kind, an ``EncoderSpec``, or a model
                name or path.
            chunk_tokens: Vectors scored at once during a search (bounds search memory).
            add_chunk: Documents encoded at once by ``add``.
        """
        if isinstance(encoder, str | os.PathLike):
            encoder = EncoderSpec(os.fspath(encoder))
        if isinstance(encoder, EncoderSpec):
            self._encoder: Any = None
            self._spec: EncoderSpec | None = encoder
        else:
            self._encoder = resolve_encoder(encoder, self.kind)
            self._spec = None
        self.chunk_tokens = check_positive_int(chunk_tokens, "chunk_tokens")
        self.add_chunk = check_positive_int(add_chunk, "add_chunk")
        self._lock = threading.RLock()
        self._table = DocumentTable()
        self._vectors = PackedVectors(self.storage_dtype)

    # ------------------------------------------------------------------ encoder
    @property
    def encoder(self) -> Any:
        """The encoder (loaded on first use when a model name, path or spec was given)."""
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    assert self._spec is not None
                    self._encoder = get_encoder(self._spec, expect=self.kind)
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
        """Documents in the index."""
        return len(self._table)

    def __contains__(self, doc_id: object) -> bool:
        """Whether a document with this id is in the index."""
        return doc_id in self._table.row_of

    @property
    def ids(self) -> list[str]:
        """Ids of the documents, in insertion order (a copy)."""
        with self._lock:
            return self._table.living_ids()

    @property
    def dim(self) -> int | None:
        """Vector dimension (None until the first document is added)."""
        return self._vectors.dim

    @property
    def n_vectors(self) -> int:
        """Stored vectors, deleted documents' included until the next compaction."""
        return self._vectors.n_vectors

    @property
    def nbytes(self) -> int:
        """Bytes of stored vectors and offsets (memory-mapped ones included)."""
        return self._vectors.nbytes

    def get(self, doc_id: str) -> tuple[str, dict[str, Any]]:
        """``(text, metadata)`` of one document (metadata is a copy); KeyError if unknown."""
        with self._lock:
            return self._table.get(doc_id)

    def vectors(self, doc_id: str) -> np.ndarray:
        """A copy of one document's stored vectors, ``(n, dim)``; KeyError if unknown."""
        with self._lock:
            row = self._table.row_of.get(doc_id)
            if row is None:
                msg = f"unknown id: {doc_id!r}"
                raise KeyError(msg)
            return self._vectors.block(row)

    def __repr__(self) -> str:
        """Class, model, and sizes."""
        name = self._encoder.name if self._encoder is not None else self._spec and self._spec.model
        return (
            f"{type(self).__name__}(encoder={str(name)!r}, n_docs={len(self)}, "
            f"n_vectors={self.n_vectors})"
        )

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
        if isinstance(texts, str | bytes | Mapping) or not isinstance(texts, Iterable):
            what = "texts"
            raise type_error(what, "an iterable of str", texts)
        batch_size = check_batch_size(batch_size)
        total = len(texts) if isinstance(texts, Sequence) else None
        for name, values in (("ids", ids), ("metadata", metadata)):
            if isinstance(values, str | bytes | Mapping):
                raise type_error(name, "a list with one entry per text", values)
            if total is not None and isinstance(values, Sequence) and len(values) != total:
                msg = f"{name} must have one entry per text ({total}), got {len(values)}"
                raise ValueError(msg)
        with self._lock:
            taken = set(self._table.row_of)
        if isinstance(texts, Sequence):
            check_batch(texts, ids, metadata, taken)  # fail before encoding anything
        pending: list[tuple[list[str], list[str], list[dict[str, Any]], np.ndarray, np.ndarray]]
        pending = []
        seen: set[str] = set()
        bar = tqdm(
            total=total,
            desc=f"indexing ({self.kind})",
            unit="doc",
            disable=show_progress is False,
            delay=0.0 if show_progress else 2.0,
        )
        try:
            for c_texts, c_ids, c_meta in document_chunks(texts, ids, metadata, self.add_chunk):
                dup = sorted({i for i in c_ids if i in taken or i in seen})
                if dup:
                    msg = f"duplicate ids (already in the index or repeated): {dup[:10]}" + (
                        f" and {len(dup) - 10} more" if len(dup) > 10 else ""
                    )
                    raise ValueError(msg)
                seen.update(c_ids)
                encoded = self._encode_documents(c_texts, batch_size)
                for doc_id, vec in zip(c_ids, encoded, strict=True):
                    check_finite(vec, f"the vectors of document {doc_id!r}")
                vectors, offsets = self._vectors.pack(encoded)
                pending.append((c_ids, c_texts, c_meta, vectors, offsets))
                bar.update(len(c_texts))
        finally:
            bar.close()
        added: list[str] = []
        with self._lock:
            clash = sorted(seen & set(self._table.row_of))
            if clash:  # another thread added them meanwhile
                msg = f"duplicate ids (already in the index): {clash[:10]}"
                raise ValueError(msg)
            for c_ids, c_texts, c_meta, vectors, offsets in pending:
                self._append(vectors, offsets, c_ids, c_texts, c_meta)
                added.extend(c_ids)
        return added

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
        first = self._table.n_rows
        self._vectors.append(vectors, offsets, first)
        self._table.append(ids, texts, metadata)

    def delete(self, ids: str | Iterable[str]) -> None:
        """Remove documents by id (a single str is one id).

        Unknown ids raise KeyError and nothing is removed.
        """
        wanted = [check_str(ids, "ids")] if isinstance(ids, str) else check_id_list(ids, "ids")
        with self._lock:
            unknown = self._table.unknown(wanted)
            if unknown:
                msg = f"unknown ids, nothing deleted: {unknown[:10]}" + (
                    f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
                )
                raise KeyError(msg)
            self._table.delete(wanted)  # texts and metadata go at the next compaction
            if len(self._table) * 2 < self._table.n_rows:
                self._vectors.compact(self._table.alive)
                self._table.compact()

    # ------------------------------------------------------------------ search
    def _search_vectors(
        self, query: np.ndarray, k: int, filter: dict[str, Any] | None
    ) -> list[tuple[int, float, str, str, dict[str, Any]]]:
        """Top-k ``(row, raw score, id, text, metadata copy)`` for an encoded query."""
        with self._lock:  # a consistent snapshot: mutations replace these objects
            segments = list(self._vectors.segments)
            mask = candidate_mask(self._table, filter)
            ids, texts, metadata = self._table.ids, self._table.texts, self._table.metadata
        if not mask.any():
            return []
        scores = PackedVectors.score(segments, mask, query, self._score_block, self.chunk_tokens)
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

    @staticmethod
    def _check_filter(filter: object) -> dict[str, Any] | None:
        return check_filter(filter)

    @staticmethod
    def _check_query(query: object) -> str:
        return check_str(query, "query")

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
        target = Path(directory)
        if target.exists() and (
            not target.is_dir() or (any(target.iterdir()) and not (target / fmt.MANIFEST).exists())
        ):
            msg = f"{target} exists and is not a saved index; refusing to overwrite it"
            raise ValueError(msg)
        target.parent.mkdir(parents=True, exist_ok=True)
        model = self._model_stamp()
        with self._lock:
            segments = list(self._vectors.segments)
            alive = self._table.alive.copy()
            docs = self._table.living()
            dim = self._vectors.dim if self._vectors.dim is not None else model["dim"]
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            n_vectors = PackedVectors.write_npy(
                segments,
                alive,
                dim,
                self.storage_dtype,
                tmp / fmt.VECTORS_FILE,
                tmp / fmt.OFFSETS_FILE,
            )
            fmt.write_docs_and_manifest(
                tmp,
                kind=self.kind,
                model=model,
                dtype=np.dtype(self.storage_dtype).name,
                dim=dim,
                docs=docs,
                n_vectors=n_vectors,
            )
            replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("saved %s of %d documents to %s", type(self).__name__, len(docs[0]), target)

    @staticmethod
    def exists(directory: str | os.PathLike[str]) -> bool:
        """Whether ``directory`` holds a saved index (of either kind; its files unchecked)."""
        return (Path(directory) / fmt.MANIFEST).is_file()

    @classmethod
    def info(cls, directory: str | os.PathLike[str]) -> fmt.IndexInfo:
        """What the index saved in ``directory`` is, from its manifest alone (no model load).

        Raises:
            IndexFormatError: There is no readable index of this kind in ``directory``.
        """
        path = Path(directory)
        return fmt.info_from_manifest(path, fmt.read_manifest(path, cls.kind))

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        encoder: Any = None,
        *,
        model: str | os.PathLike[str] | EncoderSpec | None = None,
        device: str | None = "auto",
        dtype: str | None = "auto",
        quantize: str | None = None,
        mmap: bool = True,
        backend: str = "torch",
    ) -> Self:
        """Open a saved index; vectors are memory-mapped unless ``mmap=False``.

        The model for queries and new documents is ``encoder`` (a loaded encoder) or ``model``
        (a name, path or ``EncoderSpec``); by default, the model named in the index, run with
        ``device``, ``dtype``, ``quantize`` and ``backend``. It must be the model the index was
        built with (same fingerprint), else ``ValueError``.
        """
        if encoder is not None and model is not None:
            msg = "give encoder= or model=, not both"
            raise ValueError(msg)
        path = Path(directory)
        manifest, docs, vectors, offsets = fmt.read_index(path, cls.kind, cls.storage_dtype, mmap)
        stamp = manifest["model"]
        source: Any = encoder if encoder is not None else model
        if source is None:
            source = stamp["name"]
        if isinstance(source, str | os.PathLike):
            source = EncoderSpec(os.fspath(source), device, dtype, quantize, backend)  # type: ignore[arg-type]
        if isinstance(source, EncoderSpec):
            try:
                source = get_encoder(source, expect=cls.kind)
            except Exception as exc:
                msg = (
                    f"could not load the model of the index in {path} ({stamp['name']!r}, "
                    f"fingerprint {stamp['fingerprint']}); pass encoder= or model=: {exc}"
                )
                raise ValueError(msg) from exc
        source = resolve_encoder(source, cls.kind)
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
        index._vectors.dim = int(manifest["dim"])
        return index
