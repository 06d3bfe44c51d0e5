"""Liquid AI LFM2.5 retrieval models, loaded natively: dense embeddings and ColBERT.

>>> from lfm_retrievers import load
>>> encoder = load("LiquidAI/LFM2.5-ColBERT-350M")  # doctest: +SKIP

(Any local checkpoint folder loads the same way.) Importing this package imports no retrieval
framework and no optional engine; the LangChain, LlamaIndex and Haystack adapters live in
``langchain_lfm``, ``llama_index.*.lfm*`` and ``haystack_integrations.*.lfm``.
"""

from __future__ import annotations

from ._version import __version__
from .cache import EmbeddingCache, encode_documents_cached
from .errors import (
    CheckpointError,
    CheckpointNotFoundError,
    ConcurrentWriteError,
    CorpusError,
    IndexFormatError,
)
from .explain import Explanation, TokenMatch
from .indexes.bm25 import BM25Index
from .indexes.colbert import ColBERTIndex
from .indexes.dense import DenseIndex
from .indexes.format import IndexInfo
from .indexes.qdrant import QdrantIndex, QdrantWriteError
from .indexes.sync import SyncResult, sync_index
from .models.backends.onnx_export import export_onnx
from .models.checkpoints import (
    DEFAULT_COLBERT_MODEL,
    DEFAULT_DENSE_MODEL,
    ColBERTSettings,
    ModelInfo,
    list_models,
)
from .models.devices import resolve_device, resolve_dtype
from .models.encoders import ColBERTEncoder, DenseEncoder, PaddedVectors
from .models.registry import (
    EncoderSpec,
    clear_encoder_cache,
    get_colbert_encoder,
    get_dense_encoder,
    get_encoder,
    load,
)
from .pipeline import BM25ColBERT
from .protocols import Tokenized
from .rerank import RerankResult, rerank, rerank_vectors
from .results import SearchHit
from .scoring import (
    SCORE_MODES,
    cosine_scores,
    maxsim,
    maxsim_flat,
    maxsim_padded,
    normalize_score,
)

__all__ = [
    "DEFAULT_COLBERT_MODEL",
    "DEFAULT_DENSE_MODEL",
    "SCORE_MODES",
    "BM25ColBERT",
    "BM25Index",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ColBERTEncoder",
    "ColBERTIndex",
    "ColBERTSettings",
    "ConcurrentWriteError",
    "CorpusError",
    "DenseEncoder",
    "DenseIndex",
    "EmbeddingCache",
    "EncoderSpec",
    "Explanation",
    "IndexFormatError",
    "IndexInfo",
    "ModelInfo",
    "PaddedVectors",
    "QdrantIndex",
    "QdrantWriteError",
    "RerankResult",
    "SearchHit",
    "SyncResult",
    "TokenMatch",
    "Tokenized",
    "__version__",
    "clear_encoder_cache",
    "cosine_scores",
    "encode_documents_cached",
    "export_onnx",
    "get_colbert_encoder",
    "get_dense_encoder",
    "get_encoder",
    "list_models",
    "load",
    "maxsim",
    "maxsim_flat",
    "maxsim_padded",
    "normalize_score",
    "rerank",
    "rerank_vectors",
    "resolve_device",
    "resolve_dtype",
    "sync_index",
]
