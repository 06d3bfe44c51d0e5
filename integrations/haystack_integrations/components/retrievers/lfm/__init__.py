"""LFM2.5-ColBERT retrieval for Haystack: a DocumentStore over a persistent ColBERT index and
its retriever.

For ColBERT over BM25 candidates with no index build, use ``InMemoryBM25Retriever`` followed by
``haystack_integrations.components.rankers.lfm.LFMColBERTRanker``.
"""

from lfm_retrievers._optional import require

require("haystack", "haystack", "haystack_integrations.components.retrievers.lfm")

from .document_store import LFMColBERTDocumentStore  # noqa: E402
from .filters import UnsupportedFilterError  # noqa: E402
from .retriever import LFMColBERTRetriever  # noqa: E402

__all__ = ["LFMColBERTDocumentStore", "LFMColBERTRetriever", "UnsupportedFilterError"]
