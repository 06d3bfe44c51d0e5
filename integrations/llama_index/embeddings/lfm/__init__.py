"""LlamaIndex embeddings for LiquidAI LFM2.5-Embedding.

Install with ``pip install 'lfm-retrievers[llama-index]'``.
"""

from llama_index.embeddings.lfm.base import DEFAULT_EMBEDDING_MODEL, LFMEmbedding

__all__ = ["DEFAULT_EMBEDDING_MODEL", "LFMEmbedding"]
