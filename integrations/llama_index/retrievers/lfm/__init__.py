"""LlamaIndex ColBERT retrievers for LiquidAI LFM2.5-ColBERT (in process, or on Qdrant).

Install with ``pip install 'lfm-retrievers[llama-index]'``.
"""

from llama_index.retrievers.lfm.base import (
    DEFAULT_COLBERT_MODEL,
    LFMBM25ColBERTRetriever,
    LFMColBERTRetriever,
)
from llama_index.retrievers.lfm.qdrant import LFMQdrantRetriever

__all__ = [
    "DEFAULT_COLBERT_MODEL",
    "LFMBM25ColBERTRetriever",
    "LFMColBERTRetriever",
    "LFMQdrantRetriever",
]
