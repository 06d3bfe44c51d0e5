"""The one result type of every search in the package: :class:`SearchHit`.

An in-process index, a BM25 index, the BM25 → ColBERT pipeline and the Qdrant engine all return
``SearchHit`` objects. ``score`` orders the hits; the stage fields keep what each stage said
(``None`` where a stage did not run or did not see the document), so a caller can show or fuse
them. :class:`~lfm_retrievers.rerank.RerankResult` is the other result type: positions in a
list the caller passed, for index-free reranking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One document found by a search.

    Attributes:
        id: The document's id.
        score: The score that orders the results (MaxSim, cosine, BM25 or a fused score).
        text: The document's text.
        metadata: A copy of the document's metadata.
        rank: 1-based position in the results.
        bm25_score: BM25 score, when a BM25 stage ran and the document was its candidate.
        bm25_rank: 1-based rank in the BM25 stage.
        dense_score: Cosine score of a dense stage.
        dense_rank: 1-based rank in the dense stage.
        colbert_score: MaxSim score of a ColBERT stage (in the requested score mode).
        colbert_rank: 1-based rank by the ColBERT score alone.
    """

    id: str
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    rank: int = 1
    bm25_score: float | None = None
    bm25_rank: int | None = None
    dense_score: float | None = None
    dense_rank: int | None = None
    colbert_score: float | None = None
    colbert_rank: int | None = None


__all__ = ["SearchHit"]
