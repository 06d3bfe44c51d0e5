"""LlamaIndex ColBERT retrievers for LiquidAI LFM2.5-ColBERT.

Install with ``pip install 'lfm-retrievers[llama-index]'``.
"""

from llama_index.retrievers.lfm.base import (
    DEFAULT_COLBERT_MODEL,
    LFMBM25ColBERTRetriever,
    LFMColBERTRetriever,
)

__all__ = ["DEFAULT_COLBERT_MODEL", "LFMBM25ColBERTRetriever", "LFMColBERTRetriever"]
