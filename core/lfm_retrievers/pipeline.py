"""BM25 -> ColBERT in one object: ColBERT reranking of BM25 candidates, with no index build.

``BM25ColBERT`` keeps texts, ids and metadata in a :class:`~lfm_retrievers.bm25.BM25Index`.
For each query, BM25 picks the ``candidates`` best documents. The ColBERT encoder then scores
them with MaxSim. Document vectors come from an :class:`~lfm_retrievers.cache.EmbeddingCache`,
so a document is encoded once, however many queries it is a candidate for.

Each hit carries the ColBERT score and the BM25 score and rank. ``score`` is what the hits are
sorted by:

* ``fusion=None`` (default): the ColBERT score (raw MaxSim sum, or ``score="mean"``).
* ``fusion="rrf"``: reciprocal rank fusion, ``1 / (rrf_k + colbert_rank) + 1 / (rrf_k +
  bm25_rank)``, where ranks are 1-based within the candidate pool and ``rrf_k`` is 60 by default.
* ``fusion="weighted"``: ``weight * colbert + (1 - weight) * bm25``, each min-max normalised
  over the candidate pool to [0, 1] (a pool where all scores are equal normalises to 1).
  ``weight`` is 0.5 by default.

Ties are broken by BM25 rank. When the query shares no term with any document, BM25 gives no
candidates and ``search`` returns ``[]``. A query of only punctuation or whitespace is such a
query. We chose ``[]`` over reranking an arbitrary slice of the corpus, because that slice
would depend on insertion order.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._validation import check_batch_size, check_positive_int
from .cache import EmbeddingCache, encode_documents_cached
from .indexes.analyzers import Analyzer
from .indexes.bm25 import BM25Index
from .models.encoders import ColBERTEncoder
from .models.registry import get_encoder
from .rerank import rerank_vectors
from .scoring import check_score_mode

__all__ = ["FUSIONS", "BM25ColBERT", "PipelineHit"]

Fusion = Literal["rrf", "weighted"]
FUSIONS: tuple[str | None, ...] = (None, "rrf", "weighted")
DEFAULT_RRF_K = 60.0
DEFAULT_WEIGHT = 0.5


@dataclass(frozen=True)
class PipelineHit:
    """One BM25 -> ColBERT result.

    ``score`` orders the results: the ColBERT score, or the fused score when fusion is on.
    ``bm25_rank``, ``colbert_rank`` and ``rank`` are 1-based. ``metadata`` is a copy.
    """

    id: str
    text: str
    metadata: dict[str, Any]
    score: float
    colbert_score: float
    bm25_score: float
    bm25_rank: int
    rank: int
    colbert_rank: int


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 0.0:
        return np.ones_like(x)
    return (x - lo) / (hi - lo)


class BM25ColBERT:
    """ColBERT reranking of BM25 candidates over a list of texts, with no index build.

    >>> pipe = BM25ColBERT(encoder, texts, ids=ids, candidates=100)  # doctest: +SKIP
    >>> hit = pipe.search("what causes tides?", k=5)[0]              # doctest: +SKIP
    >>> hit.id, hit.colbert_score, hit.bm25_score, hit.bm25_rank     # doctest: +SKIP

    ``encoder`` is a loaded :class:`ColBERTEncoder`, or a name or path that is loaded (shared
    via ``get_encoder``) on the first search. ``candidates`` is the BM25 pool size; a search for
    ``k`` > ``candidates`` widens the pool to ``k``. ``analyzer`` and the ``bm25_*`` options
    configure the BM25 stage (see :mod:`lfm_retrievers.bm25`); ``analyzer="model"`` uses the
    encoder's tokenizer, so it loads the encoder here. ``cache`` defaults to a private
    ``EmbeddingCache()``; pass one to share it or bound its size. ``batch_size`` and
    ``show_progress`` apply to encoding candidates. ``add`` and ``delete`` take effect on the
    next search. Thread-safe.
    """

    def __init__(
        self,
        encoder: ColBERTEncoder | str | os.PathLike[str],
        texts: Iterable[str] = (),
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        candidates: int = 100,
        fusion: Fusion | None = None,
        weight: float | None = None,
        rrf_k: float | None = None,
        score: str = "raw",
        cache: EmbeddingCache | None = None,
        analyzer: str | Analyzer = "default",
        bm25_variant: str = "plus",
        k1: float = 1.5,
        b: float = 0.75,
        batch_size: int = 32,
        show_progress: bool = False,
    ) -> None:
        self._configure(
            encoder, candidates, fusion, weight, rrf_k, score, cache, batch_size, show_progress
        )
        tokenizer = None
        if isinstance(analyzer, str) and analyzer.lower() == "model":
            tokenizer = self.encoder
        self.bm25 = BM25Index(
            texts,
            ids,
            metadata,
            analyzer=analyzer,
            tokenizer=tokenizer,
            variant=bm25_variant,
            k1=k1,
            b=b,
        )

    @classmethod
    def from_bm25(
        cls,
        encoder: ColBERTEncoder | str | os.PathLike[str],
        index: BM25Index,
        *,
        candidates: int = 100,
        fusion: Fusion | None = None,
        weight: float | None = None,
        rrf_k: float | None = None,
        score: str = "raw",
        cache: EmbeddingCache | None = None,
        batch_size: int = 32,
        show_progress: bool = False,
    ) -> BM25ColBERT:
        """Wrap an existing (e.g. loaded) :class:`BM25Index`; it is used, not copied."""
        if not isinstance(index, BM25Index):
            msg = f"index must be a BM25Index, got {type(index).__name__}"
            raise TypeError(msg)
        self = cls.__new__(cls)
        self._configure(
            encoder, candidates, fusion, weight, rrf_k, score, cache, batch_size, show_progress
        )
        self.bm25 = index
        return self

    def _configure(
        self,
        encoder: object,
        candidates: object,
        fusion: object,
        weight: object,
        rrf_k: object,
        score: object,
        cache: object,
        batch_size: object,
        show_progress: object,
    ) -> None:
        if isinstance(encoder, str | os.PathLike):
            self._encoder: ColBERTEncoder | None = None
            self._encoder_name: str | os.PathLike[str] | None = encoder
        elif getattr(encoder, "kind", None) == "colbert":
            self._encoder = encoder  # type: ignore[assignment]
            self._encoder_name = None
        else:
            kind = getattr(encoder, "kind", None)
            msg = (
                "encoder must be a ColBERTEncoder or a model name/path, got "
                f"{type(encoder).__name__}" + (f" (a {kind} encoder)" if kind else "")
            )
            raise TypeError(msg)
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates <= 0:
            msg = f"candidates must be a positive int, got {candidates!r}"
            raise ValueError(msg)
        if fusion not in FUSIONS:
            msg = f"unknown fusion {fusion!r}; choose one of {list(FUSIONS)}"
            raise ValueError(msg)
        if weight is not None and fusion != "weighted":
            msg = f"weight is only used by fusion='weighted', not fusion={fusion!r}"
            raise ValueError(msg)
        if rrf_k is not None and fusion != "rrf":
            msg = f"rrf_k is only used by fusion='rrf', not fusion={fusion!r}"
            raise ValueError(msg)
        w = DEFAULT_WEIGHT if weight is None else weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0.0 <= w <= 1.0:
            msg = f"weight must be a number in [0, 1], got {weight!r}"
            raise ValueError(msg)
        rk = DEFAULT_RRF_K if rrf_k is None else rrf_k
        if isinstance(rk, bool) or not isinstance(rk, int | float) or not 0.0 <= rk < float("inf"):
            msg = f"rrf_k must be a number >= 0, got {rrf_k!r}"
            raise ValueError(msg)
        check_score_mode(score)
        if not isinstance(show_progress, bool):
            msg = f"show_progress must be True or False, got {show_progress!r}"
            raise TypeError(msg)
        if cache is not None and not isinstance(cache, EmbeddingCache):
            msg = f"cache must be an EmbeddingCache or None, got {type(cache).__name__}"
            raise TypeError(msg)
        self.candidates: int = candidates
        self.fusion: str | None = fusion  # type: ignore[assignment]
        self.weight = float(w)
        self.rrf_k = float(rk)
        self.score: str = score  # type: ignore[assignment]
        self.cache: EmbeddingCache = cache if cache is not None else EmbeddingCache()
        self.batch_size = check_batch_size(batch_size)
        self.show_progress = show_progress
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ corpus
    @property
    def encoder(self) -> ColBERTEncoder:
        """The ColBERT encoder (loaded on first use when a name or path was given)."""
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    assert self._encoder_name is not None
                    enc = get_encoder(self._encoder_name, expect="colbert")
                    self._encoder = enc  # type: ignore[assignment]
        assert self._encoder is not None
        return self._encoder

    def __len__(self) -> int:
        return len(self.bm25)

    def __repr__(self) -> str:
        name = self._encoder.name if self._encoder is not None else self._encoder_name
        return (
            f"BM25ColBERT(encoder={name!r}, n_docs={len(self)}, candidates={self.candidates}, "
            f"fusion={self.fusion!r}, analyzer={self.bm25.analyzer_name!r})"
        )

    @property
    def ids(self) -> list[str]:
        """Document ids in insertion order (a copy)."""
        return self.bm25.ids

    def get(self, doc_id: str) -> tuple[str, dict[str, Any]]:
        """``(text, metadata)`` of one document; KeyError if unknown."""
        return self.bm25.get(doc_id)

    def add(
        self,
        texts: Iterable[str],
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Add documents (nothing is encoded until they are candidates); returns their ids."""
        with self._lock:
            return self.bm25.add(texts, ids, metadata)

    def delete(self, ids: str | Iterable[str]) -> None:
        """Remove documents by id; unknown ids raise KeyError and nothing is removed."""
        with self._lock:
            self.bm25.delete(ids)

    # ------------------------------------------------------------------ search
    def search(self, query: str, k: int = 10) -> list[PipelineHit]:
        """The ``k`` best documents for ``query``: BM25 candidates, reranked (or fused)."""
        k = check_positive_int(k, "k")
        if not isinstance(query, str):
            msg = f"query must be str, got {type(query).__name__}"
            raise TypeError(msg)
        with self._lock:  # a consistent snapshot of the candidates
            hits = self.bm25.search(query, max(self.candidates, k))
            texts = [self.bm25.text_at(h.index) for h in hits]
            metas = [self.bm25.metadata_at(h.index) for h in hits]
        if not hits:
            return []
        enc = self.encoder
        doc_vectors = encode_documents_cached(
            enc, texts, self.cache, batch_size=self.batch_size, show_progress=self.show_progress
        )
        query_vectors = enc.encode_queries([query], show_progress=False)[0]
        ranked = rerank_vectors(query_vectors, doc_vectors, score=self.score)

        n = len(hits)
        colbert = np.empty(n)
        colbert_rank = np.empty(n, dtype=np.int64)
        for r, res in enumerate(ranked, 1):
            colbert[res.index] = res.score
            colbert_rank[res.index] = r
        bm25 = np.array([h.score for h in hits])
        bm25_rank = np.array([h.rank for h in hits], dtype=np.int64)
        if self.fusion is None:
            final = colbert
        elif self.fusion == "rrf":
            final = 1.0 / (self.rrf_k + colbert_rank) + 1.0 / (self.rrf_k + bm25_rank)
        else:
            final = self.weight * _minmax(colbert) + (1.0 - self.weight) * _minmax(bm25)
        order = np.lexsort((bm25_rank, -final))[:k]
        return [
            PipelineHit(
                id=hits[i].id,
                text=texts[i],
                metadata=metas[i],
                score=float(final[i]),
                colbert_score=float(colbert[i]),
                bm25_score=float(bm25[i]),
                bm25_rank=int(bm25_rank[i]),
                rank=r,
                colbert_rank=int(colbert_rank[i]),
            )
            for r, i in enumerate(order.tolist(), 1)
        ]
