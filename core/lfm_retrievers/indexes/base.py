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
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
from tqdm.auto import tqdm

from lfm_retrievers import _io
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
from . import storage
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
        self._mutations = 0  # add / delete count: a save compacts only if none happened meanwhile
        self._epoch = 0  # compaction count: row numbers changed, appending saves impossible
        self._disk: dict[Path, fmt.DiskState] = {}  # folders loaded from, opened or saved to

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
        replace: bool = False,
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> list[str]:
        """Encode and add documents; returns their ids (random hex ids when ``ids`` is None).

        ``texts`` may be any iterable (streamed ``add_chunk`` documents at a time); ``ids`` and
        ``metadata`` must have the same length. Everything is encoded and validated before it
        becomes visible; on any error (a bad text, out of memory, Ctrl-C) nothing changes.
        With ``replace=True`` an id already in the index replaces that document: the old
        version goes only when the whole call succeeded. ``show_progress=None`` shows a bar
        only for builds that take more than a couple of seconds.
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
            taken = set() if replace else set(self._table.row_of)
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
        return self._commit(pending, seen, replace)

    def _commit(
        self,
        pending: list[tuple[list[str], list[str], list[dict[str, Any]], np.ndarray, np.ndarray]],
        new_ids: set[str],
        replace: bool,
    ) -> list[str]:
        """Make encoded documents visible in one step (replacing old versions if asked)."""
        added: list[str] = []
        with self._lock:
            clash = sorted(new_ids & set(self._table.row_of))
            if clash and not replace:  # another thread added them meanwhile
                msg = f"duplicate ids (already in the index): {clash[:10]}"
                raise ValueError(msg)
            if clash:
                self._table.delete(clash)
            for c_ids, c_texts, c_meta, vectors, offsets in pending:
                self._append(vectors, offsets, c_ids, c_texts, c_meta)
                added.extend(c_ids)
            if clash:
                self._maybe_compact()
        return added

    def add_vectors(
        self,
        vectors: Sequence[np.ndarray] | np.ndarray,
        ids: Sequence[str] | None = None,
        texts: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        replace: bool = False,
    ) -> list[str]:
        """Add documents encoded elsewhere by this index's model; returns their ids.

        For a caller that encodes other text than it stores, or encodes once for several
        indexes. ``vectors``: one ``(dim,)`` vector per document for a dense index, one
        ``(n_tokens, dim)`` array per document for a ColBERT index, made by this index's
        encoder (``encode_documents``). ``texts`` default to ``""``. Validation and
        ``replace`` work as in :meth:`add`; on any error nothing changes.
        """
        if isinstance(vectors, np.ndarray) and self.kind == "dense" and vectors.ndim == 2:
            blocks = [v[None, :] for v in vectors]
        elif isinstance(vectors, np.ndarray | str | bytes) or not isinstance(vectors, Sequence):
            want = "a (n, dim) array or a list of (dim,) vectors"
            if self.kind == "colbert":
                want = "a list of (n_tokens, dim) arrays"
            msg = f"vectors must be {want}, got {type(vectors).__name__}"
            raise TypeError(msg)
        else:
            blocks = [self._vector_block(v, i) for i, v in enumerate(vectors)]
        n = len(blocks)
        texts = [""] * n if texts is None else texts
        for name, values in (("ids", ids), ("texts", texts), ("metadata", metadata)):
            if values is not None and (
                isinstance(values, str | bytes) or not isinstance(values, Sequence)
            ):
                msg = (
                    f"{name} must be a list with one entry per vector, got {type(values).__name__}"
                )
                raise TypeError(msg)
            if values is not None and len(values) != n:
                msg = f"got {n} vectors but {len(values)} {name}"
                raise ValueError(msg)
        with self._lock:
            taken = set() if replace else set(self._table.row_of)
        check_batch(texts, ids, metadata, taken)
        chunk = next(document_chunks(texts, ids, metadata, max(1, n)), ([], [], []))
        c_texts, c_ids, c_meta = chunk
        packed, offsets = self._vectors.pack(blocks)
        return self._commit([(c_ids, c_texts, c_meta, packed, offsets)], set(c_ids), replace)

    def _vector_block(self, value: object, position: int) -> np.ndarray:
        """One document's vectors as a finite ``(n, dim)`` float32 block."""
        array = np.asarray(value, dtype=np.float32)
        want_ndim = 1 if self.kind == "dense" else 2
        dim = self._vectors.dim
        if array.ndim != want_ndim or (dim is not None and array.shape[-1] != dim):
            shape = "(dim,)" if self.kind == "dense" else "(n_tokens, dim)"
            msg = f"vectors[{position}] must have shape {shape} with dim {dim}, got {array.shape}"
            raise ValueError(msg)
        if not np.isfinite(array).all():
            msg = f"vectors[{position}] contains NaN or infinite values"
            raise ValueError(msg)
        return array[None, :] if want_ndim == 1 else array

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
        self._mutations += 1

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
            self._mutations += 1
            self._maybe_compact()

    def _maybe_compact(self) -> None:
        """Drop deleted rows once they are more than half (caller holds the lock)."""
        if len(self._table) * 2 < self._table.n_rows:
            self._compact_locked()

    def _compact_locked(self) -> None:
        self._vectors.compact(self._table.alive)
        self._table.compact()
        self._epoch += 1

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
        """Write the index to ``directory`` atomically and crash-safely.

        A complete new version is written next to the folder and swapped in (see
        :mod:`lfm_retrievers._io`): whatever happens, the folder holds the previous or the new
        index. Saving again to a folder this index was loaded from, opened or saved to appends
        only what changed (new documents, deleted rows) and swaps the manifest, so the cost
        follows the change, not the size of the index.

        **One writer per folder.** If another process or index saved the folder since this
        index loaded or last saved it, :class:`~lfm_retrievers.errors.ConcurrentWriteError` is
        raised and nothing is written: load it again and reapply the changes. Saving to a
        folder this index has never seen replaces what is there (an empty folder or a saved
        index; anything else raises ValueError). A symbolic link is followed.

        Raises:
            ConcurrentWriteError: Another writer saved the folder in between.
            ValueError: ``directory`` is a file or a folder of something else.
        """
        storage.save_index(self, directory)

    @staticmethod
    def exists(directory: str | os.PathLike[str]) -> bool:
        """Whether ``directory`` holds a saved index (of either kind; its files unchecked)."""
        path = _io.recover(directory)
        return _io.read_format(path) in (fmt.index_format("dense"), fmt.index_format("colbert"))

    @classmethod
    def info(cls, directory: str | os.PathLike[str]) -> fmt.IndexInfo:
        """What the index saved in ``directory`` is, from its manifest alone (no model load).

        Raises:
            IndexFormatError: There is no readable index of this kind in ``directory``.
        """
        path = _io.recover(directory)
        return fmt.info_from_manifest(path, fmt.read_manifest(path, cls.kind))

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        encoder: Any = None,
        *,
        model: str | os.PathLike[str] | EncoderSpec | None = None,
        device: str | None = "auto",
        dtype: str | None = "auto",
        quantize: str | None = None,
        backend: str = "torch",
        mmap: bool = True,
        verify: bool = True,
    ) -> Self:
        """The index saved in ``directory``, or a new empty one that will be saved there.

        Like :meth:`load` when the folder holds an index (after repairing what an interrupted
        save left, see :func:`lfm_retrievers._io.recover`). Otherwise a new index of
        ``encoder`` / ``model`` is returned, bound to the folder: its first :meth:`save` there
        raises :class:`~lfm_retrievers.errors.ConcurrentWriteError` if another writer created
        the folder meanwhile. This is how a store reopens its folder without ever mistaking a
        missing index for an empty one.
        """
        path = _io.recover(directory)
        if (path / fmt.MANIFEST).exists() or (path / fmt.LEGACY_MANIFEST).exists():
            return cls.load(
                path,
                encoder,
                model=model,
                device=device,
                dtype=dtype,
                quantize=quantize,
                backend=backend,
                mmap=mmap,
                verify=verify,
            )
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            msg = f"{path} exists and is not a saved index; pick an empty or new folder"
            raise ValueError(msg)
        source: Any = encoder if encoder is not None else model
        if source is None:
            msg = f"no index in {path} yet: pass encoder= or model= to create one"
            raise ValueError(msg)
        if isinstance(source, str | os.PathLike):
            source = EncoderSpec(os.fspath(source), device, dtype, quantize, backend)  # type: ignore[arg-type]
        index = cls(source)
        index._disk[path] = fmt.DiskState(0, [], None)
        return index

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
        verify: bool = True,
    ) -> Self:
        """Open a saved index; vectors are memory-mapped unless ``mmap=False``.

        The model for queries and new documents is ``encoder`` (a loaded encoder) or ``model``
        (a name, path or ``EncoderSpec``); by default, the model named in the index, run with
        ``device``, ``dtype``, ``quantize`` and ``backend``. It must be the model the index was
        built with (same fingerprint), else ``ValueError``.

        Every file is checked against the size and SHA-256 in the manifest before anything is
        used (read once, streaming: about a second per GB). ``verify=False`` checks sizes only,
        for very large indexes on storage you trust. If an interrupted save left the folder
        missing, the complete version it left next to it is put back first.

        Raises:
            IndexFormatError: A missing, truncated, corrupted, foreign or newer-format folder.
            ValueError: The index was built with another model.
        """
        if encoder is not None and model is not None:
            msg = "give encoder= or model=, not both"
            raise ValueError(msg)
        path = _io.recover(directory)
        loaded = fmt.read_index_consistent(
            path, cls.kind, cls.storage_dtype, mmap=mmap, verify=verify
        )
        stamp = loaded.manifest["model"]
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
        storage.fill(index, path, loaded)
        return index
