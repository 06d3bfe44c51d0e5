"""LangChain retriever over a Qdrant collection: ``LFMQdrantRetriever``.

A thin shell over :class:`lfm_retrievers.QdrantIndex`: the same ColBERT MaxSim (and optional
dense and BM25 prefetch) search as the in-process retrievers, on a Qdrant server or cluster.
LangChain's own ``QdrantVectorStore`` cannot hold ColBERT multivectors, so this retriever
writes and reads the collection through the core, which owns its layout.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from lfm_retrievers import EncoderSpec, QdrantIndex
from lfm_retrievers.seam import SEARCH_MODES, check_positive_int, run_in_worker

from ._common import (
    AutoStr,
    Backend,
    ScoreMode,
    check_documents,
    check_query,
    document_ids,
    path_to_str,
    texts_to_documents,
)
from .retrievers import index_filter


class LFMQdrantRetriever(BaseRetriever):
    """ColBERT search in a Qdrant collection (optionally with dense and BM25 prefetch).

    The collection is created on first use with the layout of ``lfm_retrievers.QdrantIndex``
    (or validated, when it exists: another model is refused). ``mode`` is one of
    ``"colbert"``, ``"dense"``, ``"bm25"``, ``"dense+colbert"``, ``"bm25+colbert"``,
    ``"hybrid"`` (default: hybrid with a dense model, else bm25+colbert). Results are new
    ``Document`` objects with their ids and ``metadata["relevance_score"]``.

    ``filter`` (field, or per call) is a metadata filter in the package's filter language, such
    as ``{"lang": "de"}`` or ``{"price": {"$lte": 20}, "$or": [...]}``, the same with ids
    (``{"ids": [...], "metadata": {...}}``), or a ``qdrant_client.models.Filter``.

    Example:
        .. code-block:: python

            from qdrant_client import QdrantClient
            from langchain_lfm import LFMQdrantRetriever

            retriever = LFMQdrantRetriever.from_documents(
                docs, client=QdrantClient(url="http://localhost:6333"), collection_name="faq"
            )
            retriever.invoke("how do I return an item?", k=3, filter={"lang": "en"})
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), arbitrary_types_allowed=True)

    client: Any = Field(
        description="A qdrant_client.QdrantClient, or a URL, ':memory:' or a local folder."
    )
    collection_name: str = Field(description="The Qdrant collection (created when missing).")
    model: str | None = Field(
        default=None,
        description="ColBERT model (hub id or folder); None: the collection's, else the default.",
    )
    dense_model: str | None = Field(
        default=None,
        description="Dense model for dense/hybrid prefetch; None: the collection's, else none.",
    )
    device: AutoStr = Field(default="auto", description="'auto' or a torch device string.")
    dtype: AutoStr = Field(default="auto", description="'auto', 'float32', 'bfloat16', 'float16'.")
    quantize: str | None = Field(
        default=None, description="None, or 'int8' (dynamic quantization, CPU float32 only)."
    )
    backend: Backend = Field(
        default="torch",
        description="'torch', or 'onnx' (ONNX Runtime; exported once per model and cached).",
    )
    language: str | None = Field(
        default=None,
        description="BM25 vector stemming: an ISO 639-1 code or 'auto'; None: the collection's.",
    )
    mode: str | None = Field(default=None, description=f"Search mode, one of {list(SEARCH_MODES)}.")
    k: int = Field(default=4, gt=0, description="Number of documents to return.")
    candidates: int = Field(default=100, gt=0, description="Prefetch size per first stage.")
    filter: Any = Field(
        default=None,
        description="Default filter: {'lang': 'de'}, {'ids': [...], 'metadata': {...}} or a "
        "qdrant_client Filter; a filter passed to invoke replaces it.",
    )
    score: ScoreMode = Field(
        default="raw", description="relevance_score: 'raw' MaxSim sum or 'mean' per query vector."
    )
    batch_size: int = Field(default=32, gt=0, description="Documents per forward pass.")

    _index: QdrantIndex | None = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.RLock)

    @field_validator("model", "dense_model", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        return path_to_str(value)

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str | None) -> str | None:
        if value is not None and value not in SEARCH_MODES:
            msg = f"unknown mode {value!r}; choose one of {list(SEARCH_MODES)}"
            raise ValueError(msg)
        return value

    @property
    def index(self) -> QdrantIndex:
        """The underlying ``lfm_retrievers.QdrantIndex`` (connects on first search or add)."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = QdrantIndex(
                        os.fspath(self.client)
                        if isinstance(self.client, os.PathLike)
                        else self.client,
                        self.collection_name,
                        colbert=self._spec(self.model),
                        dense=self._spec(self.dense_model),
                        language=self.language,
                        batch_size=self.batch_size,
                    )
        return self._index

    def _spec(self, model: str | None) -> EncoderSpec | None:
        if model is None:
            return None
        return EncoderSpec(model, self.device, self.dtype, self.quantize, self.backend)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
        *,
        client: Any,
        collection_name: str,
        **kwargs: Any,
    ) -> LFMQdrantRetriever:
        """Upload ``texts`` to the collection (encodes them now); kwargs are fields."""
        return cls.from_documents(
            texts_to_documents(texts, metadatas, ids),
            client=client,
            collection_name=collection_name,
            **kwargs,
        )

    @classmethod
    def from_documents(
        cls, documents: Sequence[Document], *, client: Any, collection_name: str, **kwargs: Any
    ) -> LFMQdrantRetriever:
        """Upload ``documents`` to the collection (encodes them now); kwargs are fields."""
        retriever = cls(client=client, collection_name=collection_name, **kwargs)
        retriever.add_documents(documents)
        return retriever

    def add_documents(self, documents: Sequence[Document]) -> list[str]:
        """Encode and upload documents; an id already stored is replaced. Returns the ids."""
        docs = check_documents(documents)
        if not docs:
            return []
        ids = document_ids(docs)
        self.index.add(
            [d.page_content for d in docs], ids=ids, metadata=[dict(d.metadata) for d in docs]
        )
        return ids

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Encode and upload texts; returns their ids."""
        return self.add_documents(texts_to_documents(texts, metadatas, ids))

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents by id (unknown ids raise KeyError; nothing is deleted)."""
        self.index.delete(list(ids))

    # ------------------------------------------------------------------ search
    def _search(self, query: str, k: int | None, filter: Any) -> list[Document]:
        query = check_query(query)
        n = self.k if k is None else check_positive_int(k, "k")
        flt = self.filter if filter is None else filter
        if isinstance(flt, dict):
            flt = index_filter(flt)
        hits = self.index.search(
            query, k=n, mode=self.mode, candidates=self.candidates, filter=flt, score=self.score
        )
        return [
            Document(
                page_content=h.text,
                metadata={**h.metadata, "relevance_score": float(h.score)},
                id=h.id,
            )
            for h in hits
        ]

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filter: Any = None,
    ) -> list[Document]:
        return self._search(query, k, filter)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filter: Any = None,
    ) -> list[Document]:
        check_query(query)
        if k is not None:
            check_positive_int(k, "k")
        return await run_in_worker(self._search, query, k, filter)
