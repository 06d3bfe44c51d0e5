"""LFM2.5-ColBERT retrieval for Haystack.

A DocumentStore over a persistent ColBERT index, and its retriever; ``LFMQdrantRetriever`` for
an ``LFMQdrantDocumentStore`` (a Qdrant collection).

For ColBERT over BM25 candidates with no index build, use ``InMemoryBM25Retriever`` followed by
``haystack_integrations.components.rankers.lfm.LFMColBERTRanker``.
"""

from lfm_retrievers.seam import require_extra as require

require("haystack", "haystack", "haystack_integrations.components.retrievers.lfm")

from haystack_integrations.document_stores.lfm import (  # noqa: E402
    LFMColBERTDocumentStore,
    UnsupportedFilterError,
)

from .qdrant_retriever import LFMQdrantRetriever  # noqa: E402
from .retriever import LFMColBERTRetriever  # noqa: E402

__all__ = [
    "LFMColBERTDocumentStore",
    "LFMColBERTRetriever",
    "LFMQdrantRetriever",
    "UnsupportedFilterError",
]
