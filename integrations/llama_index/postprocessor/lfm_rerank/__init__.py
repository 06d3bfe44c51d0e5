"""LlamaIndex ColBERT reranker for LiquidAI LFM2.5-ColBERT.

Install with ``pip install 'lfm-retrievers[llama-index]'``.
"""

from llama_index.postprocessor.lfm_rerank.base import DEFAULT_COLBERT_MODEL, LFMColBERTRerank

__all__ = ["DEFAULT_COLBERT_MODEL", "LFMColBERTRerank"]
