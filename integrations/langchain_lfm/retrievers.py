"""LangChain retrievers over LFM2.5-ColBERT.

* ``LFMColBERTRetriever``: exact MaxSim search over a persistent ``ColBERTIndex`` (build it with
  ``from_texts`` / ``from_documents``, grow it with ``add_documents``, ``save`` / ``load`` it).
* ``LFMBM25ColBERTRetriever``: no index build. BM25 picks candidates from the given documents
  and ColBERT reranks them; both scores are kept on the returned copies.

Both take ``k`` as a field and as an ``invoke`` / ``ainvoke`` keyword, and return new
``Document`` objects with ``metadata["relevance_score"]``. A dense retriever is
``LFMEmbeddings`` inside any LangChain vector store and is not duplicated here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from lfm_retrievers import ColBERTEncoder, ColBERTIndex, EncoderSpec, get_colbert_encoder
from lfm_retrievers.seam import check_id_list, check_positive_int, run_in_worker

from ._common import (
    DEFAULT_COLBERT_MODEL,
    AutoStr,
    Backend,
    ModelPath,
    ScoreMode,
    check_documents,
    check_query,
    document_ids,
    path_to_str,
    scored_copy,
    texts_to_documents,
)

if TYPE_CHECKING:
    from lfm_retrievers import BM25ColBERT

Fusion = Literal["rrf", "weighted"]


class _ColBERTModelFields(BaseRetriever):
    """Model configuration shared by the two retrievers (one shared encoder per key)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: ModelPath = Field(
        default=DEFAULT_COLBERT_MODEL,
        description="Hugging Face hub id, known short name or local ColBERT checkpoint folder.",
    )
    device: AutoStr = Field(
        default="auto", description="'auto' (cuda > mps > xpu > cpu) or a torch device string."
    )
    dtype: AutoStr = Field(
        default="auto", description="'auto', 'float32', 'bfloat16' or 'float16'."
    )
    quantize: str | None = Field(
        default=None, description="None, or 'int8' (dynamic quantization, CPU float32 only)."
    )
    backend: Backend = Field(
        default="torch",
        description="'torch', or 'onnx' (ONNX Runtime; exported once per model and cached).",
    )
    k: int = Field(default=4, gt=0, description="Number of documents to return.")
    score: ScoreMode = Field(
        default="raw",
        description="relevance_score: 'raw' MaxSim sum, or 'mean' (raw / query vectors).",
    )

    _encoder: ColBERTEncoder | None = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.RLock)

    @property
    def encoder(self) -> ColBERTEncoder:
        """The shared ColBERT encoder (loaded on first access)."""
        if self._encoder is None:
            self._encoder = get_colbert_encoder(
                self.model,
                device=self.device,
                dtype=self.dtype,
                quantize=self.quantize,
                backend=self.backend,
            )
        return self._encoder

    def _k(self, k: int | None) -> int:
        return self.k if k is None else check_positive_int(k, "k")


class LFMColBERTRetriever(_ColBERTModelFields):
    """Exact ColBERT (MaxSim) search over a persistent ``lfm_retrievers.ColBERTIndex``.

    ``relevance_score`` is the raw MaxSim sum by default; ``score="mean"`` divides it by the
    number of query vectors (a value in [-1, 1]); the order is the same.

    The index is built by ``from_texts`` / ``from_documents`` (this encodes the documents),
    or loaded lazily from ``index_path`` (a folder written by ``save``) on first use; without
    an explicit ``model`` a loaded index uses the model it was built with. Constructing the
    retriever never loads the model. Documents without ids get stable ids derived from their
    content and metadata; adding an id that is already indexed raises ``ValueError``.

    ``filter`` (field, or per call) is a metadata filter in LangChain's operator vocabulary
    (``{"lang": "en"}``, ``{"n": {"$gte": 2}}``, ``{"$or": [...]}``: ``$eq $ne $gt $gte $lt
    $lte $in $nin $and $or $not``), or ``{"ids": [...], "metadata": {...}}`` to restrict to ids
    as well (combined with AND). Any other operator raises ``ValueError``.

    Example:
        .. code-block:: python

            from langchain_lfm import LFMColBERTRetriever

            retriever = LFMColBERTRetriever.from_documents(docs, k=5)
            retriever.invoke("how do I reset my password?")
            retriever.invoke("passwort", k=2, filter={"lang": {"$in": ["de", "at"]}})
            retriever.save("faq-index")
            same = LFMColBERTRetriever.load("faq-index")
    """

    index_path: str | None = Field(
        default=None,
        description="Folder of a saved index, loaded on first use when no index is in memory.",
    )
    filter: dict[str, Any] | None = Field(
        default=None,
        description="Default filter for every search: a metadata filter ({'lang': 'en'}, "
        "{'n': {'$gt': 1}}) or {'ids': [...], 'metadata': {...}}; a filter passed to invoke "
        "replaces it.",
    )
    batch_size: int = Field(default=32, gt=0, description="Documents per forward pass.")

    _index: ColBERTIndex | None = PrivateAttr(default=None)

    @field_validator("index_path", mode="before")
    @classmethod
    def _index_path(cls, value: Any) -> Any:
        return path_to_str(value)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> LFMColBERTRetriever:
        """Build an in-memory index over ``texts`` (encodes them now); kwargs are fields."""
        return cls.from_documents(texts_to_documents(texts, metadatas, ids), **kwargs)

    @classmethod
    def from_documents(cls, documents: Sequence[Document], **kwargs: Any) -> LFMColBERTRetriever:
        """Build an in-memory index over ``documents`` (encodes them now); kwargs are fields."""
        retriever = cls(**kwargs)
        retriever.add_documents(documents)
        return retriever

    @classmethod
    def load(cls, path: str | os.PathLike[str], **kwargs: Any) -> LFMColBERTRetriever:
        """Open an index folder written by ``save``; kwargs are fields (e.g. ``k``, ``model``)."""
        retriever = cls(index_path=os.fspath(path), **kwargs)
        _ = retriever.index
        return retriever

    @property
    def index(self) -> ColBERTIndex:
        """The underlying ``ColBERTIndex`` (created empty, or loaded from ``index_path``)."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = self._open_index()
        return self._index

    @property
    def encoder(self) -> ColBERTEncoder:
        """The shared ColBERT encoder: with ``index_path`` and no ``model``, the index's own."""
        if self._encoder is None and self.index_path is not None and not self._model_given():
            self._encoder = self.index.encoder
        return super().encoder

    def _model_given(self) -> bool:
        return "model" in self.model_fields_set

    def _open_index(self) -> ColBERTIndex:
        spec = EncoderSpec(self.model, self.device, self.dtype, self.quantize, self.backend)
        if self.index_path is None:
            return ColBERTIndex(get_colbert_encoder(spec))
        folder = Path(self.index_path)
        if not ColBERTIndex.exists(folder):
            msg = (
                f"index_path {self.index_path!r} holds no saved index; build one with "
                "from_documents(...) and save() it first"
            )
            raise FileNotFoundError(msg)
        if self._model_given():
            return ColBERTIndex.load(folder, model=spec)
        # No model given: the one the index was built with, run with this retriever's settings.
        self.model = ColBERTIndex.info(folder).model
        return ColBERTIndex.load(
            folder,
            device=self.device,
            dtype=self.dtype,
            quantize=self.quantize,
            backend=self.backend,
        )

    def add_documents(self, documents: Sequence[Document]) -> list[str]:
        """Encode and add documents; returns their ids (generated when a document has none)."""
        docs = check_documents(documents)
        if not docs:
            return []
        ids = document_ids(docs)
        with self._lock:
            self.index.add(
                [d.page_content for d in docs],
                ids=ids,
                metadata=[dict(d.metadata) for d in docs],
                batch_size=self.batch_size,
            )
        return ids

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Encode and add texts; returns their ids."""
        return self.add_documents(texts_to_documents(texts, metadatas, ids))

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents by id (a list; a bare str is a TypeError, not a list of letters)."""
        wanted = check_id_list(ids, "ids")
        with self._lock:
            self.index.delete(wanted)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` (atomically; JSON + arrays, no pickle)."""
        with self._lock:
            self.index.save(path)

    # ------------------------------------------------------------------ search
    def _search(self, query: str, k: int | None, filter: dict[str, Any] | None) -> list[Document]:
        query = check_query(query)
        n = self._k(k)
        flt = index_filter(self.filter if filter is None else filter)
        hits = self.index.search(query, k=n, filter=flt, score=self.score)
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
        filter: dict[str, Any] | None = None,
    ) -> list[Document]:
        return self._search(query, k, filter)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filter: dict[str, Any] | None = None,
    ) -> list[Document]:
        check_query(query)
        self._k(k)
        return await run_in_worker(self._search, query, k, filter)


def index_filter(filter: dict[str, Any] | None) -> dict[str, Any] | None:
    """Translate a retriever filter into ``ColBERTIndex.search``'s filter.

    A plain metadata filter in the operator vocabulary of LangChain vector stores
    (``{"lang": "en"}``, ``{"n": {"$gt": 1}}``, ``{"$or": [...]}``; see
    :mod:`lfm_retrievers.indexes.filters`) restricts by metadata; a dict with only the keys
    ``"ids"`` and/or ``"metadata"`` is passed on as is. Unknown operators raise ValueError.
    """
    if filter is None:
        return None
    if not isinstance(filter, dict):
        msg = (
            f"filter must be a dict such as {{'lang': 'en'}} or "
            f"{{'ids': [...], 'metadata': {{...}}}}, got {type(filter).__name__}"
        )
        raise TypeError(msg)
    special = [key for key in filter if key in _INDEX_FILTER_KEYS]
    if not special:
        return {"metadata": dict(filter)}
    if len(special) != len(filter):
        plain = sorted(set(filter) - set(special))
        msg = (
            f"filter mixes {special} with metadata keys {plain}; write "
            f"{{'ids': [...], 'metadata': {{...}}}} (a metadata key named 'ids' or 'metadata' "
            f"goes inside 'metadata')"
        )
        raise ValueError(msg)
    return dict(filter)


_INDEX_FILTER_KEYS = ("ids", "metadata")


class LFMBM25ColBERTRetriever(_ColBERTModelFields):
    """BM25 candidates from ``documents``, reranked by ColBERT MaxSim; no index build.

    Returns copies of the documents with ``metadata["relevance_score"]`` (what the results are
    sorted by: the raw MaxSim sum by default, the fused score with ``fusion``),
    ``metadata["colbert_score"]``, ``metadata["bm25_score"]`` and, with ``dense_model``,
    ``metadata["dense_score"]`` (None where that stage did not return the document). ``k``
    documents come back whenever there are ``k``: when fewer than ``candidates`` documents
    share a term with the query, zero-score documents fill the pool (as rank-bm25's
    ``get_top_n`` does) and ColBERT ranks them; ``require_match=True`` returns only documents
    sharing a term (so a query matching nothing returns ``[]``). ``dense_model`` adds the
    dense model's top ``dense_candidates`` to the pool (every document is encoded once, on the
    first query), which reaches documents in another language. Documents are encoded
    the first time they are candidates and cached. The BM25 stage is built on first use,
    from ``documents`` as they are then.

    Example:
        .. code-block:: python

            from langchain_lfm import LFMBM25ColBERTRetriever

            retriever = LFMBM25ColBERTRetriever(documents=docs, k=4, candidates=50)
            retriever.invoke("how long does delivery take?")
    """

    documents: list[Document] = Field(
        default_factory=list, description="The documents to search (not copied or mutated)."
    )
    candidates: int = Field(default=100, gt=0, description="BM25 candidates reranked per query.")
    fusion: Fusion | None = Field(
        default=None,
        description="None: rank by ColBERT; 'rrf': reciprocal rank fusion of both rankings; "
        "'weighted': weight * colbert + (1 - weight) * bm25 after min-max normalisation.",
    )
    weight: float | None = Field(
        default=None, ge=0.0, le=1.0, description="ColBERT weight for fusion='weighted' (0.5)."
    )
    rrf_k: float | None = Field(
        default=None, ge=0.0, description="RRF constant for fusion='rrf' (60)."
    )
    analyzer: str = Field(
        default="default",
        description="BM25 analyzer: 'default' (Unicode words, CJK bigrams; alias 'cjk'), "
        "'english' (stopwords + Porter stemmer) or 'model' (the checkpoint's subword tokens).",
    )
    language: str | None = Field(
        default=None,
        description="BM25 stemming for the default analyzer: None, an ISO 639-1 code such as "
        "'de' (its Snowball stemmer) or 'auto' (each text's detected language).",
    )
    require_match: bool = Field(
        default=False,
        description="Return only documents sharing a term with the query (no zero-score fill).",
    )
    dense_model: ModelPath | None = Field(
        default=None,
        description="Optional dense model (hub id, short name or folder) whose top "
        "dense_candidates join BM25's candidates; every document is encoded once.",
    )
    dense_candidates: int = Field(default=100, gt=0, description="Dense candidates per query.")

    _pipeline: BM25ColBERT | None = PrivateAttr(default=None)
    _docs_by_id: dict[str, Document] = PrivateAttr(default_factory=dict)

    @field_validator("analyzer")
    @classmethod
    def _known_analyzer(cls, value: str) -> str:
        from lfm_retrievers.seam import ANALYZERS

        choices = (*ANALYZERS, "cjk")
        if value.lower() not in choices:
            msg = f"analyzer must be one of {list(choices)}, got {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str | None) -> str | None:
        from lfm_retrievers.seam import check_language

        return check_language(value)

    @model_validator(mode="after")
    def _fusion_options(self) -> LFMBM25ColBERTRetriever:
        # Never accept an option that would then be ignored.
        if self.weight is not None and self.fusion != "weighted":
            msg = f"weight is only used by fusion='weighted', not fusion={self.fusion!r}"
            raise ValueError(msg)
        if self.rrf_k is not None and self.fusion != "rrf":
            msg = f"rrf_k is only used by fusion='rrf', not fusion={self.fusion!r}"
            raise ValueError(msg)
        return self

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> LFMBM25ColBERTRetriever:
        """A retriever over ``texts`` (nothing is encoded until the first query)."""
        return cls(documents=texts_to_documents(texts, metadatas, ids), **kwargs)

    @classmethod
    def from_documents(
        cls, documents: Sequence[Document], **kwargs: Any
    ) -> LFMBM25ColBERTRetriever:
        """A retriever over ``documents`` (nothing is encoded until the first query)."""
        return cls(documents=check_documents(documents), **kwargs)

    @property
    def pipeline(self) -> BM25ColBERT:
        """The underlying ``lfm_retrievers.BM25ColBERT`` (built on first access)."""
        if self._pipeline is None:
            with self._lock:
                if self._pipeline is None:
                    self._pipeline = self._build()
        return self._pipeline

    def _build(self) -> BM25ColBERT:
        from lfm_retrievers import BM25ColBERT

        docs = check_documents(self.documents)
        ids = document_ids(docs)
        self._docs_by_id = dict(zip(ids, docs, strict=True))
        return BM25ColBERT(
            self.encoder,
            [d.page_content for d in docs],
            ids=ids,
            candidates=self.candidates,
            fusion=self.fusion,
            weight=self.weight,
            rrf_k=self.rrf_k,
            score=self.score,
            analyzer=self.analyzer,
            language=self.language,
            require_match=self.require_match,
            dense=None
            if self.dense_model is None
            else EncoderSpec(
                self.dense_model,
                device=self.device,
                dtype=self.dtype,
                quantize=self.quantize,
                backend=self.backend,
            ),
            dense_candidates=self.dense_candidates,
        )

    def _search(self, query: str, k: int | None) -> list[Document]:
        query = check_query(query)
        n = self._k(k)
        if not self.documents:
            return []
        hits = self.pipeline.search(query, k=n)
        return [
            scored_copy(
                self._docs_by_id[h.id],
                h.score,
                doc_id=h.id,
                colbert_score=h.colbert_score,
                bm25_score=h.bm25_score,
                **({} if self.dense_model is None else {"dense_score": h.dense_score}),
            )
            for h in hits
        ]

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        return self._search(query, k)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        check_query(query)
        self._k(k)
        return await run_in_worker(self._search, query, k)
