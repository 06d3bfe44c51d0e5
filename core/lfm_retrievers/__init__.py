"""Liquid AI LFM2.5 retrieval models, loaded natively: dense embeddings and ColBERT.

>>> from lfm_retrievers import load
>>> encoder = load("LiquidAI/LFM2.5-ColBERT-350M")  # or a local checkpoint folder

Importing this package imports no retrieval framework; the LangChain, LlamaIndex and
Haystack adapters live in ``langchain_lfm``, ``llama_index.*.lfm*`` and
``haystack_integrations.components.*.lfm``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .cache import EmbeddingCache, encode_documents_cached
from .checkpoints import (
    CheckpointError,
    CheckpointNotFoundError,
    ColBERTSettings,
    ModelInfo,
    list_models,
)
from .devices import resolve_device, resolve_dtype
from .encoders import (
    ColBERTEncoder,
    DenseEncoder,
    PaddedVectors,
    Tokenized,
    clear_encoder_cache,
    get_colbert_encoder,
    get_dense_encoder,
    get_encoder,
    load,
)
from .explain import Explanation, TokenMatch
from .index import ColBERTIndex, DenseIndex, IndexFormatError, SearchHit
from .rerank import RerankResult, rerank_vectors
from .scoring import (
    SCORE_MODES,
    cosine_scores,
    maxsim,
    maxsim_flat,
    maxsim_padded,
    normalize_score,
)

try:
    __version__ = version("lfm-retrievers")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "SCORE_MODES",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ColBERTEncoder",
    "ColBERTIndex",
    "ColBERTSettings",
    "DenseEncoder",
    "DenseIndex",
    "EmbeddingCache",
    "Explanation",
    "IndexFormatError",
    "ModelInfo",
    "PaddedVectors",
    "RerankResult",
    "SearchHit",
    "TokenMatch",
    "Tokenized",
    "__version__",
    "clear_encoder_cache",
    "cosine_scores",
    "encode_documents_cached",
    "get_colbert_encoder",
    "get_dense_encoder",
    "get_encoder",
    "list_models",
    "load",
    "maxsim",
    "maxsim_flat",
    "maxsim_padded",
    "normalize_score",
    "rerank_vectors",
    "resolve_device",
    "resolve_dtype",
]
