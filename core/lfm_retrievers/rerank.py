"""Index-free rerank: score first-stage candidates with MaxSim, no index build.

This is the "rerank candidates" mode of the LFM2.5-ColBERT model card: take the documents a
first stage returned (BM25, a vector store, a web search), encode them (or take their vectors
from an :class:`~lfm_retrievers.cache.EmbeddingCache`) and sort them by MaxSim.
:func:`rerank_vectors` is the pure part, over precomputed vectors;
``ColBERTEncoder.rerank(query, documents)`` encodes and calls it.

>>> import numpy as np
>>> query = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
>>> docs = [np.array([[0.0, 1.0]], np.float32), np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)]
>>> rerank_vectors(query, docs)
[RerankResult(index=1, score=2.0), RerankResult(index=0, score=1.0)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._validation import check_positive_int, check_str, check_texts, type_error
from .cache import EmbeddingCache, encode_documents_cached
from .protocols import TextEncoder
from .scoring import LIST_CHUNK_TOKENS, check_score_mode, maxsim, normalize_score

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, slots=True)
class RerankResult:
    """One reranked candidate: its position in the input list and its score."""

    index: int
    score: float


def rank_scores(scores: np.ndarray, top_k: int | None = None) -> list[RerankResult]:
    """Results sorted by score, highest first; equal scores keep their input order."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    if top_k is not None:
        order = order[:top_k]
    return [RerankResult(int(i), float(scores[i])) for i in order]


def rerank_vectors(
    query_vectors: np.ndarray | torch.Tensor,
    document_vectors: Sequence[np.ndarray | torch.Tensor],
    top_k: int | None = None,
    score: str = "raw",
    *,
    chunk_tokens: int = LIST_CHUNK_TOKENS,
) -> list[RerankResult]:
    """Rank documents by MaxSim against one query, from precomputed token vectors.

    ``query_vectors`` is ``(q, d)``; ``document_vectors[i]`` is ``(n_i, d)``. Returns at most
    ``top_k`` results (all when None), highest score first, ties broken by input order;
    ``score`` is ``"raw"`` or ``"mean"`` (see :mod:`lfm_retrievers.scoring`).
    """
    if isinstance(document_vectors, str | bytes | Mapping) or not isinstance(
        document_vectors, Sequence | Iterable
    ):
        what = "document_vectors"
        raise type_error(what, "a list of (n_i, d) arrays", document_vectors)
    if top_k is not None:
        top_k = check_positive_int(top_k, "top_k")
    mode = check_score_mode(score)
    raw = maxsim(query_vectors, document_vectors, chunk_tokens=chunk_tokens)
    return rank_scores(normalize_score(raw, int(query_vectors.shape[0]), mode), top_k)


def rerank(
    encoder: TextEncoder,
    query: str,
    documents: Sequence[str],
    *,
    top_k: int | None = None,
    cache: EmbeddingCache | None = None,
    score: str = "raw",
    batch_size: int = 32,
    show_progress: bool | None = None,
) -> list[RerankResult]:
    """Encode ``query`` and ``documents`` with ``encoder`` and rank the documents by MaxSim.

    With a ``cache``, documents seen before are not encoded again. Arguments are checked
    before anything is encoded.
    """
    query = check_str(query, "query")
    texts = check_texts(documents, "documents")
    if top_k is not None:
        top_k = check_positive_int(top_k, "top_k")
    check_score_mode(score)
    if not texts:
        return []
    doc_vectors = encode_documents_cached(
        encoder, texts, cache, batch_size=batch_size, show_progress=show_progress
    )
    query_vectors = encoder.encode_queries([query], show_progress=False)[0]
    return rerank_vectors(query_vectors, doc_vectors, top_k=top_k, score=score)


__all__ = ["RerankResult", "rank_scores", "rerank", "rerank_vectors"]
