"""LangChain integration of Liquid AI's LFM2.5 retrieval models.

* ``LFMEmbeddings``: dense LFM2.5-Embedding (query/document prompts applied); use it in any
  LangChain vector store for dense retrieval.
* ``LFMColBERTRetriever``: ColBERT MaxSim search over a persistent index.
* ``LFMBM25ColBERTRetriever``: BM25 candidates reranked by ColBERT, no index build.
* ``LFMColBERTReranker``: a ``BaseDocumentCompressor`` for ``ContextualCompressionRetriever``.

All of them load their model lazily and share one encoder per (model, device, dtype, quantize).
"""

from __future__ import annotations

from lfm_retrievers.seam import require_extra as require

require("langchain", "langchain_core", "langchain_lfm")

from .embeddings import LFMEmbeddings  # noqa: E402
from .qdrant import LFMQdrantRetriever  # noqa: E402
from .rerankers import LFMColBERTReranker  # noqa: E402
from .retrievers import LFMBM25ColBERTRetriever, LFMColBERTRetriever  # noqa: E402

__all__ = [
    "LFMBM25ColBERTRetriever",
    "LFMColBERTReranker",
    "LFMColBERTRetriever",
    "LFMEmbeddings",
    "LFMQdrantRetriever",
]
