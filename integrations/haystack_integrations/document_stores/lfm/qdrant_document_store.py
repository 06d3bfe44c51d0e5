"""``LFMQdrantDocumentStore``: a Haystack DocumentStore in a Qdrant collection.

A thin shell over :class:`lfm_retrievers.QdrantIndex`, which owns the collection's layout
(ColBERT multivectors, optional dense and BM25 vectors; see its module). qdrant-haystack's
``QdrantDocumentStore`` cannot hold multivectors, so this store writes through the core.
Filters in Haystack's syntax are translated for the engine (``qdrant_filters.py``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from haystack import Document, default_from_dict, default_to_dict
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.utils import ComponentDevice, Secret, deserialize_secrets_inplace
from haystack_integrations.common.lfm.utils import (
    BACKEND_CHOICES,
    DTYPE_CHOICES,
    QUANTIZE_CHOICES,
    check_batch_size,
    check_choice,
    check_device,
    check_query,
    check_top_k,
    device_to_dict,
    device_to_str,
    model_to_str,
    split_missing_content,
)

from lfm_retrievers import QdrantIndex
from lfm_retrievers.seam import SCORE_MODES, SEARCH_MODES, EncoderSpec, run_in_worker

from .qdrant_filters import to_qdrant_filter

logger = logging.getLogger(__name__)


class LFMQdrantDocumentStore:
    """Documents in a Qdrant collection, searched by ColBERT MaxSim on the server.

    Give at most one of ``location`` (``":memory:"``, a URL or a folder), ``url`` or ``path``;
    with none, the store lives in memory (local mode, for tests and trials). The collection
    (``index``) is created on first use, or validated when it exists: a collection built with
    another model or layout is refused before anything is written.

    Stored per document: ``id``, ``content`` and ``meta`` (JSON). ``embedding``,
    ``sparse_embedding`` and ``blob`` are not kept: the store computes its own vectors from
    ``content``. Documents without ``content`` are skipped with a warning.

    Usage example:

    ```python
    from haystack import Document
    from haystack.utils import Secret
    from haystack_integrations.document_stores.lfm import LFMQdrantDocumentStore

    store = LFMQdrantDocumentStore(
        url="http://localhost:6333", api_key=Secret.from_env_var("QDRANT_API_KEY"), index="faq"
    )
    store.write_documents([Document(content="Returns are free within 30 days.")])
    store.search("can I send it back?", top_k=3)
    ```
    """

    def __init__(
        self,
        *,
        location: str | None = None,
        url: str | None = None,
        path: str | os.PathLike[str] | None = None,
        api_key: Secret | None = None,
        index: str = "Document",
        model: str | os.PathLike[str] | None = None,
        dense_model: str | os.PathLike[str] | None = None,
        bm25: bool | None = None,
        language: str | None = None,
        storage: str | None = None,
        on_disk: bool = False,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        device: ComponentDevice | None = None,
        dtype: str = "auto",
        quantize: str | None = None,
        backend: str = "torch",
        batch_size: int = 32,
        timeout: int | None = None,
    ) -> None:
        """Store the configuration; nothing connects or loads until first use.

        :param location: ``":memory:"``, an ``http(s)://`` URL or a local folder.
        :param url: A Qdrant server URL.
        :param path: A local folder (local mode, persisted; one client at a time).
        :param api_key: The server's API key, as a ``Secret`` (serialized by reference only).
        :param index: The collection name.
        :param model: ColBERT model (hub id or folder); ``None``: the collection's, else the
            package default.
        :param dense_model: Dense model for dense and hybrid search; ``None``: the
            collection's, else none.
        :param bm25: Keep a BM25 sparse vector; ``None``: the collection's, else ``True``.
        :param language: BM25 vector stemming, an ISO 639-1 code or ``"auto"``; ``None``: the
            collection's.
        :param storage: ``"float16"`` or ``"float32"`` ColBERT vectors (``None``: recorded, else
            float16).
        :param on_disk: Keep ColBERT vectors on disk on the server.
        :param shard_number: Shards of a new collection.
        :param replication_factor: Replicas of a new collection.
        :param device: A single ``ComponentDevice``; ``None`` picks cuda > mps > xpu > cpu.
        :param dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        :param quantize: ``None`` or ``"int8"`` (dynamic quantization, CPU float32 only).
        :param backend: ``"torch"``, or ``"onnx"`` (ONNX Runtime; the model is exported once
            and cached).
        :param batch_size: Documents per forward pass when writing.
        :param timeout: Request timeout in seconds (server only).
        """
        given = [
            n for n, v in (("location", location), ("url", url), ("path", path)) if v is not None
        ]
        if len(given) > 1:
            msg = f"give at most one of location, url and path, got {given}"
            raise ValueError(msg)
        for name, value in (("location", location), ("url", url)):
            if value is not None and (not isinstance(value, str) or not value):
                msg = f"{name} must be a non-empty str or None, got {value!r}"
                raise TypeError(msg)
        if path is not None and not isinstance(path, str | os.PathLike):
            msg = f"path must be a folder path or None, got {type(path).__name__}"
            raise TypeError(msg)
        if api_key is not None and not isinstance(api_key, Secret):
            msg = (
                "api_key must be a haystack Secret (e.g. Secret.from_env_var('QDRANT_API_KEY')) "
                f"or None, got {type(api_key).__name__}"
            )
            raise TypeError(msg)
        if not isinstance(index, str) or not index:
            msg = f"index (the collection name) must be a non-empty str, got {index!r}"
            raise ValueError(msg)
        check_choice(dtype, "dtype", DTYPE_CHOICES)
        check_choice(quantize, "quantize", QUANTIZE_CHOICES)
        check_choice(backend, "backend", BACKEND_CHOICES)
        for option, number in (
            ("shard_number", shard_number),
            ("replication_factor", replication_factor),
            ("timeout", timeout),
        ):
            if number is not None:
                check_top_k(number, option)
        if language is not None and not isinstance(language, str):
            msg = (
                f"language must be an ISO 639-1 code, 'auto' or None, got {type(language).__name__}"
            )
            raise TypeError(msg)
        if storage is not None:
            check_choice(storage, "storage", ("float16", "float32"))
        self.location = location
        self.url = url
        self.path = None if path is None else os.fspath(path)
        self.api_key = api_key
        self.index = index
        self.model = None if model is None else model_to_str(model)
        self.dense_model = None if dense_model is None else model_to_str(dense_model)
        self.bm25 = bm25
        self.language = language
        self.storage = storage
        self.on_disk = bool(on_disk)
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        self.device = check_device(device)
        self.dtype = dtype
        self.quantize = quantize
        self.backend = backend
        self.batch_size = check_batch_size(batch_size)
        self.timeout = timeout
        self._qdrant: QdrantIndex | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        """Serialize the configuration; the API key only as a reference (never its value)."""
        return default_to_dict(
            self,
            location=self.location,
            url=self.url,
            path=self.path,
            api_key=None if self.api_key is None else self.api_key.to_dict(),
            index=self.index,
            model=self.model,
            dense_model=self.dense_model,
            bm25=self.bm25,
            language=self.language,
            storage=self.storage,
            on_disk=self.on_disk,
            shard_number=self.shard_number,
            replication_factor=self.replication_factor,
            device=device_to_dict(self.device),
            dtype=self.dtype,
            quantize=self.quantize,
            backend=self.backend,
            batch_size=self.batch_size,
            timeout=self.timeout,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LFMQdrantDocumentStore:
        """Rebuild from ``to_dict`` output."""
        data = {**data, "init_parameters": dict(data.get("init_parameters", {}))}
        deserialize_secrets_inplace(data["init_parameters"], keys=["api_key"])
        return default_from_dict(cls, data)

    # ------------------------------------------------------------------ the collection
    def _spec(self, model: str | None) -> EncoderSpec | None:
        if model is None:
            return None
        device = device_to_str(self.device)
        return EncoderSpec(model, device, self.dtype, self.quantize, self.backend)

    @property
    def qdrant_index(self) -> QdrantIndex:
        """The underlying ``lfm_retrievers.QdrantIndex`` (connects on first search or write)."""
        if self._qdrant is None:
            with self._lock:
                if self._qdrant is None:
                    where = self.location or self.url or self.path or ":memory:"
                    self._qdrant = QdrantIndex(
                        where,
                        self.index,
                        colbert=self._spec(self.model),
                        dense=self._spec(self.dense_model),
                        bm25=self.bm25,
                        language=self.language,
                        storage=self.storage,  # type: ignore[arg-type]
                        on_disk=self.on_disk,
                        shard_number=self.shard_number,
                        replication_factor=self.replication_factor,
                        api_key=None if self.api_key is None else self.api_key.resolve_value(),
                        batch_size=self.batch_size,
                        timeout=self.timeout,
                    )
        return self._qdrant

    def warm_up(self) -> None:
        """Connect, load the models and open (or create) the collection now; idempotent."""
        _ = self.qdrant_index.record

    # ------------------------------------------------------------------ DocumentStore protocol
    def count_documents(self) -> int:
        """Number of stored documents."""
        return len(self.qdrant_index)

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """Stored documents matching ``filters`` (Haystack syntax, evaluated by Qdrant)."""
        flt = to_qdrant_filter(filters, QdrantIndex.payload_key)
        return [
            Document(id=doc_id, content=text, meta=meta)
            for doc_id, text, meta in self.qdrant_index.documents(flt)
        ]

    def write_documents(
        self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE
    ) -> int:
        """Encode and upload ``documents``; returns how many were written.

        ``DuplicatePolicy.NONE`` behaves as ``FAIL``: an id already stored (or repeated in
        ``documents``) raises ``DuplicateDocumentError`` and nothing is written. ``SKIP``
        keeps the stored document; ``OVERWRITE`` replaces it (the last duplicate wins).
        """
        if not isinstance(documents, list | tuple) or not all(
            isinstance(d, Document) for d in documents
        ):
            msg = f"write_documents expects a list of haystack.Document, got {documents!r:.80}"
            raise ValueError(msg)
        if not isinstance(policy, DuplicatePolicy):
            msg = f"policy must be a DuplicatePolicy, got {policy!r}"
            raise ValueError(msg)
        if policy == DuplicatePolicy.NONE:
            policy = DuplicatePolicy.FAIL
        keep, _ = split_missing_content(documents, logger, "LFMQdrantDocumentStore")
        docs = [documents[i] for i in keep]
        with self._lock:
            index = self.qdrant_index
            stored = set(index.get_many([d.id for d in docs])) if docs else set()
            batch: dict[str, Document] = {}
            for doc in docs:
                seen = doc.id in batch or doc.id in stored
                if seen and policy == DuplicatePolicy.FAIL:
                    msg = (
                        f"ID '{doc.id}' already exists in the document store "
                        f"(policy {policy.name}); nothing written"
                    )
                    raise DuplicateDocumentError(msg)
                if seen and policy == DuplicatePolicy.SKIP:
                    continue
                batch.pop(doc.id, None)
                batch[doc.id] = doc
            if not batch:
                return 0
            chosen = list(batch.values())
            index.add(
                [d.content or "" for d in chosen],
                ids=[d.id for d in chosen],
                metadata=[d.meta for d in chosen],
            )
        return len(chosen)

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete documents by id; ids that are not stored are ignored."""
        if isinstance(document_ids, str) or not isinstance(document_ids, Iterable):
            msg = f"document_ids must be a list of ids, got {document_ids!r}"
            raise TypeError(msg)
        self.qdrant_index.delete(list(document_ids), missing_ok=True)

    async def count_documents_async(self) -> int:
        """``count_documents`` on a worker thread."""
        return await run_in_worker(self.count_documents)

    async def filter_documents_async(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """``filter_documents`` on a worker thread."""
        return await run_in_worker(self.filter_documents, filters)

    async def write_documents_async(
        self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE
    ) -> int:
        """``write_documents`` on a worker thread (encoding never blocks the event loop)."""
        return await run_in_worker(self.write_documents, documents, policy)

    async def delete_documents_async(self, document_ids: list[str]) -> None:
        """``delete_documents`` on a worker thread."""
        await run_in_worker(self.delete_documents, document_ids)

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: str,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        *,
        mode: str | None = None,
        candidates: int = 100,
        score_mode: str = "raw",
    ) -> list[Document]:
        """The ``top_k`` best documents for ``query`` (``Document.score`` set), best first.

        ``mode`` is one of ``lfm_retrievers.QdrantIndex``'s search modes (default: hybrid with
        a dense model, else bm25+colbert); ``filters`` use Haystack's syntax.
        """
        check_query(query, "LFMQdrantDocumentStore.search")
        top_k = check_top_k(top_k)
        check_choice(score_mode, "score_mode", SCORE_MODES)
        if mode is not None:
            check_choice(mode, "mode", SEARCH_MODES)
        flt = to_qdrant_filter(filters, QdrantIndex.payload_key)
        hits = self.qdrant_index.search(
            query, k=top_k, mode=mode, candidates=candidates, filter=flt, score=score_mode
        )
        return [Document(id=h.id, content=h.text, meta=h.metadata, score=h.score) for h in hits]
