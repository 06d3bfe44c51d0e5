"""``QdrantIndex``: the package's ColBERT retrieval in a Qdrant collection (server or cluster).

Documents are written and searched through ``qdrant-client``; MaxSim runs on the engine
(``MultiVectorConfig(comparator=MAX_SIM)``), so a collection can be sharded and replicated.
The layout, the term hash and the point ids are described in :mod:`.layout`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lfm_retrievers._optional import require
from lfm_retrievers._validation import check_float, check_positive_int, check_str
from lfm_retrievers.indexes.analyzers import get_analyzer
from lfm_retrievers.indexes.qdrant import layout as lay
from lfm_retrievers.indexes.qdrant.filters import to_filter
from lfm_retrievers.indexes.qdrant.query import check_encoded, run_query, unpack
from lfm_retrievers.indexes.qdrant.writing import (
    check_documents,
    check_shapes,
    copy_index,
    sync,
    upload,
)
from lfm_retrievers.indexes.table import check_id
from lfm_retrievers.models.checkpoints import DEFAULT_COLBERT_MODEL
from lfm_retrievers.models.registry import resolve_encoder
from lfm_retrievers.results import SearchHit

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

logger = logging.getLogger(__name__)

Document = tuple[str, str, dict[str, Any]]


class QdrantIndex:
    """ColBERT search (plus optional dense and BM25 prefetch) in a Qdrant collection.

    Nothing connects or loads in the constructor: the collection is opened (validated, or
    created with the layout of :mod:`.layout`) on first use. Arguments left at ``None`` take
    what an existing collection records, else the defaults. Another model, analyzer or layout
    than the collection's is a ``ValueError`` naming both, raised before anything is written.

    Args:
        client: A ``qdrant_client.QdrantClient``, or a string: an ``http(s)://`` URL,
            ``":memory:"`` or a local folder (both local mode: for tests and trials).
        collection_name: The collection.
        colbert: ColBERT model: a name, a folder, an ``EncoderSpec`` or a ``ColBERTEncoder``.
        dense: Dense model (same forms), or ``False`` for none.
        bm25: Keep a BM25 sparse vector (``True`` for a new collection).
        analyzer: BM25 analyzer name (``"default"``, ``"english"``, ``"model"``).
        language: Passed to the analyzer lookup, for analyzers that take a language.
        storage: ``"float16"`` (default) or ``"float32"`` ColBERT vectors.
        on_disk: Keep ColBERT vectors on disk (memory-mapped) on the server.
        shard_number: Shards of a new collection.
        replication_factor: Replicas of a new collection.
        write_consistency_factor: Replicas that must confirm a write.
        bm25_k1: BM25 ``k1`` of a new collection (1.2).
        bm25_b: BM25 ``b`` of a new collection (0.75).
        bm25_avgdl: Average analyzed length (default: from the first batch added).
        api_key: API key, when ``client`` is a URL.
        timeout: Request timeout in seconds, when ``client`` is a URL.
        batch_size: Texts per encoder forward pass.
        upload_batch_size: Points per upsert request (each waits for the engine to apply it).
        max_retries: Retries of an upsert that failed on a transient error.
        retry_backoff: Seconds before the first retry; doubled for each next one.

    >>> from qdrant_client import QdrantClient  # doctest: +SKIP
    >>> index = QdrantIndex(QdrantClient(url="http://localhost:6333"), "faq")  # doctest: +SKIP
    >>> index.add(["Mars is red.", "Venus is hot."], ids=["mars", "venus"])  # doctest: +SKIP
    >>> index.search("red planet", k=1)[0].id  # doctest: +SKIP
    'mars'
    """

    payload_key = staticmethod(lay.payload_key)

    def __init__(
        self,
        client: QdrantClient | str | os.PathLike[str],
        collection_name: str,
        *,
        colbert: Any = None,
        dense: Any = None,
        bm25: bool | None = None,
        analyzer: str | None = None,
        language: str | None = None,
        storage: str | None = None,
        on_disk: bool = False,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        write_consistency_factor: int | None = None,
        bm25_k1: float | None = None,
        bm25_b: float | None = None,
        bm25_avgdl: float | None = None,
        api_key: str | None = None,
        timeout: int | None = None,
        batch_size: int = 32,
        upload_batch_size: int = 64,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
    ) -> None:
        """Store the configuration (see the class docstring); nothing connects or loads."""
        qdrant_client = require("qdrant", "qdrant_client", "QdrantIndex")
        client = os.fspath(client) if isinstance(client, os.PathLike) else client
        if not isinstance(client, str | qdrant_client.QdrantClient):
            msg = (
                "client must be a qdrant_client.QdrantClient or a str (an http(s):// URL, "
                f"':memory:' or a local folder), got {type(client).__name__}"
            )
            raise TypeError(msg)
        if isinstance(client, str) and not client:
            msg = "client must not be empty: give ':memory:', a URL or a folder"
            raise ValueError(msg)
        if not check_str(collection_name, "collection_name").strip():
            msg = "collection_name must be a non-empty string"
            raise ValueError(msg)
        self._want = lay.check_wanted(
            colbert=colbert,
            dense=dense,
            bm25=bm25,
            analyzer=analyzer,
            language=language,
            storage=storage,
            k1=bm25_k1,
            b=bm25_b,
            avgdl=bm25_avgdl,
        )
        for name, value in (
            ("shard_number", shard_number),
            ("replication_factor", replication_factor),
            ("write_consistency_factor", write_consistency_factor),
            ("timeout", timeout),
        ):
            if value is not None:
                check_positive_int(value, name)
        if not isinstance(on_disk, bool):
            msg = f"on_disk must be a bool, got {type(on_disk).__name__}: {on_disk!r}"
            raise TypeError(msg)
        self.collection_name = collection_name
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.upload_batch_size = check_positive_int(upload_batch_size, "upload_batch_size")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            msg = f"max_retries must be an int >= 0, got {max_retries!r}"
            raise ValueError(msg)
        self.max_retries = max_retries
        self.retry_backoff = check_float(retry_backoff, "retry_backoff", 0.0)
        self._where = client if isinstance(client, str) else None
        self._client: QdrantClient | None = None if isinstance(client, str) else client
        self._connect_options: dict[str, Any] = {"api_key": api_key, "timeout": timeout}
        self._create_options: dict[str, Any] = {
            "shard_number": shard_number,
            "replication_factor": replication_factor,
            "write_consistency_factor": write_consistency_factor,
        }
        self._on_disk = on_disk
        self._lock = threading.RLock()
        self._record: dict[str, Any] | None = None
        self._colbert: Any = None
        self._dense: Any = None
        self._analyzer: Callable[[str], list[str]] | None = None

    def __repr__(self) -> str:
        """Where the collection lives, without connecting."""
        where = self._where if self._where is not None else type(self._client).__name__
        return f"QdrantIndex({where!r}, {self.collection_name!r})"

    # ------------------------------------------------------------------ opening
    @property
    def client(self) -> QdrantClient:
        """The ``QdrantClient`` (created on first access when a string was given)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from qdrant_client import QdrantClient

                    where = self._where
                    assert where is not None
                    if where == ":memory:":
                        self._client = QdrantClient(":memory:")
                    elif where.startswith(("http://", "https://")):
                        self._client = QdrantClient(url=where, **self._connect_options)
                    else:
                        self._client = QdrantClient(path=where)
        return self._client

    @property
    def record(self) -> dict[str, Any]:
        """The collection's record: layout version, models, storage, BM25 settings (a copy)."""
        return dict(self._open())

    @property
    def colbert_encoder(self) -> Any:
        """The ColBERT encoder (loaded on first use)."""
        self._open()
        return self._colbert

    @property
    def dense_encoder(self) -> Any:
        """The dense encoder, or ``None`` when the collection has no dense vector."""
        self._open()
        return self._dense

    @property
    def has_dense(self) -> bool:
        """Whether the collection holds a dense vector per document."""
        return self._open()[lay.DENSE] is not None

    @property
    def has_bm25(self) -> bool:
        """Whether the collection holds a BM25 sparse vector per document."""
        return self._open()[lay.BM25] is not None

    @property
    def default_mode(self) -> str:
        """``"hybrid"`` with dense and BM25 vectors; otherwise the best mode the layout has."""
        dense, bm25 = self.has_dense, self.has_bm25
        if dense:
            return "hybrid" if bm25 else "dense+colbert"
        return "bm25+colbert" if bm25 else "colbert"

    def _open(self) -> dict[str, Any]:
        if self._record is None:
            with self._lock:
                if self._record is None:
                    client = self.client
                    if client.collection_exists(self.collection_name):
                        info = client.get_collection(self.collection_name)
                        self._adopt(lay.check_layout(self.collection_name, info))
                    else:
                        self._create(client)
        assert self._record is not None
        return self._record

    def _create(self, client: QdrantClient) -> None:
        want = self._want
        self._colbert = resolve_encoder(want["colbert"] or DEFAULT_COLBERT_MODEL, "colbert")
        if want["dense"] not in (None, False):
            self._dense = resolve_encoder(want["dense"], "dense")
        record: dict[str, Any] = {
            "format": lay.LAYOUT_FORMAT,
            "version": lay.LAYOUT_VERSION,
            "point_ids": f"uuid5:{lay.POINT_NAMESPACE}",
            lay.COLBERT: lay.model_record(self._colbert),
            lay.DENSE: None if self._dense is None else lay.model_record(self._dense),
            "storage": want["storage"] or "float16",
            lay.BM25: None,
        }
        if want["bm25"] is not False:
            analyzer = want["analyzer"] or "default"
            self._analyzer = self._lookup_analyzer(analyzer, want["language"])
            record[lay.BM25] = {
                "analyzer": analyzer,
                "language": want["language"],
                "term_hash": lay.TERM_HASH,
                "k1": lay.DEFAULT_K1 if want["k1"] is None else want["k1"],
                "b": lay.DEFAULT_B if want["b"] is None else want["b"],
                "avgdl": want["avgdl"],
            }
        vectors, sparse = lay.vectors_config(record, self._on_disk)
        client.create_collection(
            self.collection_name,
            vectors_config=vectors,
            sparse_vectors_config=sparse,
            metadata={lay.RECORD_KEY: record},
            **self._create_options,
        )
        logger.info("created Qdrant collection %r: %s", self.collection_name, record)
        self._record = record

    def _adopt(self, record: dict[str, Any]) -> None:
        want, bm = self._want, record[lay.BM25] or {}
        lay.check_same_layout(record, want, self.collection_name)
        colbert = resolve_encoder(want["colbert"] or record[lay.COLBERT]["name"], "colbert")
        self._check_model(colbert, record[lay.COLBERT], "ColBERT")
        dense = None
        if record[lay.DENSE] is not None:
            source = want["dense"] if want["dense"] not in (None, False) else None
            dense = resolve_encoder(source or record[lay.DENSE]["name"], "dense")
            self._check_model(dense, record[lay.DENSE], "dense")
        self._colbert, self._dense = colbert, dense
        if record[lay.BM25] is not None:
            self._analyzer = self._lookup_analyzer(bm["analyzer"], bm.get("language"))
        self._record = record

    def _check_model(self, encoder: Any, stored: Mapping[str, Any], what: str) -> None:
        if str(encoder.fingerprint) != stored["fingerprint"] or int(encoder.dim) != stored["dim"]:
            msg = (
                f"the Qdrant collection {self.collection_name!r} holds {what} vectors of model "
                f"{stored['name']!r} (fingerprint {stored['fingerprint']}, dim {stored['dim']}), "
                f"not of {str(encoder.name)!r} (fingerprint {encoder.fingerprint}, dim "
                f"{encoder.dim}): they are not comparable. Use that model or another "
                "collection; nothing was written"
            )
            raise ValueError(msg)

    def _lookup_analyzer(self, name: str, language: str | None) -> Callable[[str], list[str]]:
        tokenizer = self._colbert if name == "model" else None
        if language is None:
            return get_analyzer(name, tokenizer)[1]
        try:
            return get_analyzer(name, tokenizer, language=language)[1]  # type: ignore[call-arg]
        except TypeError as exc:
            msg = f"language={language!r} needs analyzers that take a language"
            raise ValueError(msg) from exc

    # ------------------------------------------------------------------ writing
    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> list[str]:
        """Encode and upload documents; returns their ids (random hex ids when ``ids`` is None).

        An id already stored is replaced (adding is idempotent). Arguments are checked before
        anything is encoded. Documents are encoded and uploaded ``upload_batch_size`` at a time
        (``wait=True``); transient failures are retried with backoff, and a final failure
        raises :class:`~.layout.QdrantWriteError` naming the ids stored and not stored.
        """
        docs = check_documents(texts, ids, metadata)
        bs = self.batch_size if batch_size is None else check_positive_int(batch_size, "batch_size")
        self._open()

        def encode(chunk: list[Document]) -> list[tuple[Any, Any]]:
            chunk_texts = [t for _, t, _ in chunk]
            col = self._colbert.encode_documents(chunk_texts, batch_size=bs, show_progress=False)
            den: Any = [None] * len(chunk)
            if self._dense is not None:
                den = self._dense.encode_documents(chunk_texts, batch_size=bs, show_progress=False)
            return list(zip(col, den, strict=True))

        return upload(self, docs, encode, show_progress, "encoding + uploading")

    def add_vectors(
        self,
        colbert_vectors: Sequence[np.ndarray],
        ids: Sequence[str],
        texts: Sequence[str],
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        dense_vectors: Sequence[np.ndarray] | np.ndarray | None = None,
        show_progress: bool | None = None,
    ) -> list[str]:
        """Upload documents whose vectors this collection's models already computed.

        ``colbert_vectors[i]`` is ``(n_i, dim)``; ``dense_vectors`` (required exactly when
        the collection has a dense vector) is ``(n, dense_dim)``; BM25 vectors come from
        ``texts``. Used to benchmark the engine and by :meth:`add_index`.
        """
        docs = check_documents(texts, ids, metadata)
        rec = self._open()
        if len(colbert_vectors) != len(docs):
            msg = f"got {len(docs)} documents but {len(colbert_vectors)} colbert_vectors"
            raise ValueError(msg)
        if (dense_vectors is None) != (rec[lay.DENSE] is None):
            msg = (
                "dense_vectors given, but the collection has no dense vector"
                if dense_vectors is not None
                else "dense_vectors are required: the collection has a dense vector"
            )
            raise ValueError(msg)
        check_shapes(colbert_vectors, (None, rec[lay.COLBERT]["dim"]), "colbert_vectors", len(docs))
        if dense_vectors is not None:
            check_shapes(dense_vectors, (rec[lay.DENSE]["dim"],), "dense_vectors", len(docs))
        where = {doc_id: j for j, (doc_id, _, _) in enumerate(docs)}

        def given(chunk: list[Document]) -> list[tuple[Any, Any]]:
            rows = [where[d] for d, _, _ in chunk]
            return [
                (colbert_vectors[j], None if dense_vectors is None else dense_vectors[j])
                for j in rows
            ]

        return upload(self, docs, given, show_progress, "uploading")

    def add_index(
        self, index: Any, *, dense_index: Any = None, show_progress: bool | None = None
    ) -> list[str]:
        """Copy an in-process :class:`~lfm_retrievers.ColBERTIndex` into the collection.

        Its stored ColBERT vectors are uploaded as they are: no document is encoded again (the
        index must have been built with this collection's ColBERT model). A dense vector, when
        the collection has one, comes from ``dense_index`` (a ``DenseIndex`` of the same
        documents) or is encoded from the texts. Returns the ids copied.
        """
        return copy_index(self, index, dense_index, show_progress)

    def sync(
        self,
        texts: Sequence[str],
        ids: Sequence[str],
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        show_progress: bool | None = None,
    ) -> tuple[int, int]:
        """Make the collection hold exactly this corpus; returns ``(uploaded, deleted)``.

        Only new or changed documents (text or metadata) are encoded; ids no longer in the
        corpus are deleted.
        """
        return sync(self, texts, ids, metadata, show_progress)

    def bm25_weights(self, text: str) -> dict[int, float]:
        """The BM25 sparse vector stored for a document ``text``: ``{term index: weight}``.

        Empty when the collection has no BM25 vector or its ``avgdl`` is not fixed yet.
        """
        check_str(text, "text")
        bm = self._open()[lay.BM25]
        if bm is None or bm["avgdl"] is None:
            return {}
        assert self._analyzer is not None
        return lay.bm25_document_weights(
            self._analyzer(text), k1=bm["k1"], b=bm["b"], avgdl=bm["avgdl"]
        )

    def delete(self, ids: str | Iterable[str], *, missing_ok: bool = False) -> None:
        """Remove documents by id (a single str is one id).

        Unknown ids raise ``KeyError`` and nothing is deleted, unless ``missing_ok``.
        """
        wanted = lay.unique_ids(
            check_id(v, i) for i, v in enumerate([ids] if isinstance(ids, str) else ids)
        )
        if not wanted:
            return
        self._open()
        if not missing_ok:
            unknown = [i for i in wanted if i not in self.get_many(wanted)]
            if unknown:
                msg = f"unknown ids, nothing deleted: {lay.show(unknown)}"
                raise KeyError(msg)
        selector = lay.models().PointIdsList(points=[lay.point_id(i) for i in wanted])
        self.client.delete(self.collection_name, points_selector=selector, wait=True)

    def drop(self) -> None:
        """Delete the whole collection (irreversible); the next use creates it again."""
        with self._lock:
            self.client.delete_collection(self.collection_name)
            self._record = None

    # ------------------------------------------------------------------ reading
    def get_many(self, ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """``{id: (text, metadata)}`` of the stored documents among ``ids``."""
        wanted = lay.unique_ids(check_id(v, i) for i, v in enumerate(ids))
        self._open()
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        for start in range(0, len(wanted), 256):
            points = self.client.retrieve(
                self.collection_name,
                ids=[lay.point_id(i) for i in wanted[start : start + 256]],
                with_payload=True,
            )
            for p in points:
                doc_id, text, meta = unpack(p)
                out[doc_id] = (text, meta)
        return out

    def get(self, doc_id: str) -> tuple[str, dict[str, Any]]:
        """``(text, metadata)`` of one document; ``KeyError`` if it is not stored."""
        found = self.get_many([check_str(doc_id, "doc_id")])
        if doc_id not in found:
            msg = f"unknown id: {doc_id!r}"
            raise KeyError(msg)
        return found[doc_id]

    def __contains__(self, doc_id: object) -> bool:
        """Whether a document id is stored."""
        return isinstance(doc_id, str) and doc_id in self.get_many([doc_id])

    def count(self, filter: object = None) -> int:
        """Number of stored documents (passing ``filter``), counted exactly."""
        flt = to_filter(filter)
        self._open()
        return int(self.client.count(self.collection_name, count_filter=flt, exact=True).count)

    def __len__(self) -> int:
        """Number of stored documents."""
        return self.count()

    def documents(self, filter: object = None, *, batch_size: int = 256) -> Iterator[Document]:
        """Every stored ``(id, text, metadata)`` passing ``filter``, scrolled in batches."""
        flt = to_filter(filter)
        check_positive_int(batch_size, "batch_size")
        self._open()
        offset = None
        while True:
            points, offset = self.client.scroll(
                self.collection_name,
                scroll_filter=flt,
                limit=batch_size,
                offset=offset,
                with_payload=True,
            )
            yield from (unpack(p) for p in points)
            if offset is None:
                return

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str | None = None,
        candidates: int = 100,
        filter: object = None,
        score: str = "raw",
    ) -> list[SearchHit]:
        """The ``k`` best documents for ``query``, best first.

        Args:
            query: The query text.
            k: Number of hits.
            mode: One of ``SEARCH_MODES`` (default: :attr:`default_mode`).
            candidates: Points each prefetch (dense, BM25) hands to the MaxSim rerank.
            filter: ``{"ids": [...], "metadata": {...}}`` (every operator, see :mod:`.filters`)
                or a ``qdrant_client`` ``Filter``.
            score: ``"raw"`` MaxSim sum or ``"mean"`` (÷ query vectors), for the modes that
                end in ColBERT; ``"dense"`` returns cosines and ``"bm25"`` BM25 scores.
        """
        check_str(query, "query")
        mode, parts = self._check_search(mode, k, candidates, score)
        colbert_q = dense_q = None
        if lay.COLBERT in parts:
            colbert_q = self._colbert.encode_queries([query], show_progress=False)[0]
        if lay.DENSE in parts:
            dense_q = self._dense.encode_queries([query], show_progress=False)[0]
        text = query if lay.BM25 in parts else None
        return self._run(mode, k, candidates, filter, score, colbert_q, dense_q, text)

    def search_vectors(
        self,
        query_vectors: np.ndarray | None,
        k: int = 10,
        *,
        dense_vector: np.ndarray | None = None,
        text: str | None = None,
        mode: str | None = None,
        candidates: int = 100,
        filter: object = None,
        score: str = "raw",
    ) -> list[SearchHit]:
        """Like :meth:`search`, for a query already encoded.

        ``query_vectors`` ``(q, dim)`` serve the ColBERT part, ``dense_vector`` the dense part
        and the query ``text`` the BM25 part; each is required only by the modes using it.
        """
        mode, parts = self._check_search(mode, k, candidates, score)
        check_encoded(mode, parts, self._open(), query_vectors, dense_vector, text)
        return self._run(mode, k, candidates, filter, score, query_vectors, dense_vector, text)

    def _run(
        self,
        mode: str,
        k: int,
        candidates: int,
        filter: object,
        score: str,
        colbert: Any,
        dense: Any,
        text: str | None,
    ) -> list[SearchHit]:
        return run_query(
            self.client,
            self.collection_name,
            mode=mode,
            k=k,
            candidates=candidates,
            flt=to_filter(filter),
            score=score,
            colbert=colbert,
            dense=dense,
            text=text,
            analyzer=self._analyzer,
        )

    def _check_search(
        self, mode: object, k: object, candidates: object, score: object
    ) -> tuple[str, set[str]]:
        return lay.check_search(
            self.default_mode if mode is None else mode,
            k,
            candidates,
            score,
            self._open(),
            self.collection_name,
        )
