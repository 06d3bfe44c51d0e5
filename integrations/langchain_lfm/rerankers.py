"""``LFMColBERTReranker``: LFM2.5-ColBERT MaxSim reranking as a LangChain document compressor.

Compose it with ``langchain_classic.retrievers.ContextualCompressionRetriever`` over any base
retriever (BM25, a vector store, ...). It returns copies of the documents, best first, with
``metadata["relevance_score"]`` set, and never mutates the inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, PrivateAttr

from lfm_retrievers import ColBERTEncoder, EmbeddingCache, get_colbert_encoder, rerank
from lfm_retrievers.seam import run_in_worker

from ._common import (
    DEFAULT_COLBERT_MODEL,
    AutoStr,
    Backend,
    ModelPath,
    ScoreMode,
    check_documents,
    check_query,
    scored_copy,
)


class LFMColBERTReranker(BaseDocumentCompressor):
    """Rerank documents by ColBERT late interaction (MaxSim) against the query.

    ``relevance_score`` is the raw MaxSim sum by default (the vendor's score: the sum over the
    query vectors of their best cosine against the document's tokens; it grows with the query
    length, typically 3-25 for real models). ``score="mean"`` divides it by the number of query
    vectors, giving a value in [-1, 1]. Either way the order is the same.

    Example:
        .. code-block:: python

            from langchain_classic.retrievers import ContextualCompressionRetriever
            from langchain_lfm import LFMColBERTReranker

            retriever = ContextualCompressionRetriever(
                base_compressor=LFMColBERTReranker(top_n=5), base_retriever=any_retriever
            )
            docs = retriever.invoke("how do I reset my password?")
    """

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
    top_n: int | None = Field(
        default=3, gt=0, description="How many documents to return; None returns all, reordered."
    )
    score: ScoreMode = Field(
        default="raw", description="'raw' MaxSim sum, or 'mean' (raw / number of query vectors)."
    )
    batch_size: int = Field(default=32, gt=0, description="Documents per forward pass.")
    cache_max_bytes: int = Field(
        default=0,
        ge=0,
        description="Keep document vectors in an LRU cache of this many bytes, so documents "
        "reranked again (e.g. across queries) are not re-encoded; 0 disables it.",
    )

    _encoder: ColBERTEncoder | None = PrivateAttr(default=None)
    _cache: EmbeddingCache | None = PrivateAttr(default=None)

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

    def warm_up(self) -> None:
        """Load the weights now instead of on the first call."""
        _ = self.encoder

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Copies of the ``top_n`` best documents, best first, with ``relevance_score``."""
        query = check_query(query)
        docs = check_documents(documents)
        if not docs:
            return []
        if self._cache is None and self.cache_max_bytes > 0:
            self._cache = EmbeddingCache(max_bytes=self.cache_max_bytes)
        results = rerank(
            self.encoder,
            query,
            [d.page_content for d in docs],
            top_k=self.top_n,
            cache=self._cache,
            score=self.score,
            batch_size=self.batch_size,
        )
        return [scored_copy(docs[r.index], r.score) for r in results]

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """``compress_documents`` on a worker thread: the event loop is not blocked."""
        check_query(query)
        check_documents(documents)
        return await run_in_worker(self.compress_documents, documents, query, callbacks)
