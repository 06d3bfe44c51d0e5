"""BM25 (+ dense) candidates -> ColBERT in one object, with no ColBERT index to build.

``BM25ColBERT`` keeps texts, ids and metadata in a :class:`~lfm_retrievers.indexes.BM25Index`.
For each query it gathers candidates and the ColBERT encoder scores them with MaxSim. Document
vectors come from an :class:`~lfm_retrievers.cache.EmbeddingCache`, so a document is encoded
once, however many queries it is a candidate for.

**Candidates, k results always.** BM25's top ``candidates`` documents, taken the way
rank-bm25's ``get_top_n`` takes them: when fewer documents share a term with the query,
documents with BM25 score 0 fill the set in corpus order. So a search for ``k`` returns ``k``
hits whenever the corpus holds ``k`` documents, even for a query that shares no word with any
document, and a corpus no larger than ``candidates`` is ranked by ColBERT alone (which lets a
small multilingual FAQ answer a question asked in another language). ``require_match=True``
keeps only documents that share a term with the query (a query that matches nothing then
returns ``[]``).

**Hybrid candidates.** With ``dense=`` (a :class:`~lfm_retrievers.models.DenseEncoder`, an
``EncoderSpec``, or a model name or path) the candidates are the union of BM25's matches (top
``candidates``) and the dense model's top ``dense_candidates`` by exact cosine, which reaches
documents that share no term with the query, for example in another language. The dense pass
is an index build: every document is encoded once, on the first search (with a progress bar
when it takes a while), kept in a :class:`~lfm_retrievers.indexes.DenseIndex`, and only new
documents are encoded after ``add``. The BM25 side does not pad with zero-score documents
then; the dense side always has ``dense_candidates`` documents (or the whole corpus).

Every hit is a :class:`~lfm_retrievers.results.SearchHit` that keeps each stage's word:
``bm25_score`` / ``bm25_rank`` (None if it was not a BM25 candidate; 0.0 for a zero-score
filler), ``dense_score`` / ``dense_rank`` (None if it was not a dense candidate or there is no
dense stage), and ``colbert_score`` / ``colbert_rank``. ``score`` orders the hits:

* ``fusion=None`` (default): the ColBERT score (raw MaxSim sum, or ``score="mean"``).
* ``fusion="rrf"``: reciprocal rank fusion, ``1 / (rrf_k + colbert_rank)`` plus
  ``1 / (rrf_k + bm25_rank)`` for a document that matched BM25 (score not 0) plus
  ``1 / (rrf_k + dense_rank)`` for a dense candidate; ``rrf_k`` is 60 by default.
* ``fusion="weighted"``: ``weight * colbert + (1 - weight) * bm25``, each min-max normalised
  over the candidate pool to [0, 1] (a pool where all scores are equal normalises to 1; a
  document that BM25 did not return counts as BM25 score 0). ``weight`` is 0.5 by default.

Ties are broken by BM25 rank, then dense rank.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ._validation import (
    check_batch_size,
    check_bool,
    check_choice,
    check_float,
    check_positive_int,
    check_str,
)
from .cache import EmbeddingCache, encode_documents_cached
from .indexes.analyzers import Analyzer
from .indexes.bm25 import BM25Index
from .indexes.dense import DenseIndex
from .models.encoders import ColBERTEncoder, DenseEncoder
from .models.registry import EncoderSpec, get_encoder
from .rerank import rerank_vectors
from .results import SearchHit
from .scoring import check_score_mode

__all__ = ["FUSIONS", "BM25ColBERT"]

Fusion = Literal["rrf", "weighted"]
FUSIONS: tuple[str | None, ...] = (None, "rrf", "weighted")
DEFAULT_RRF_K = 60.0
DEFAULT_WEIGHT = 0.5
_NO_RANK = np.iinfo(np.int64).max


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 0.0:
        return np.ones_like(x)
    return (x - lo) / (hi - lo)


class BM25ColBERT:
    """ColBERT reranking of BM25 (and optionally dense) candidates, with no ColBERT index build.

    >>> pipe = BM25ColBERT(encoder, texts, ids=ids, candidates=100)  # doctest: +SKIP
    >>> hit = pipe.search("what causes tides?", k=5)[0]              # doctest: +SKIP
    >>> hit.id, hit.colbert_score, hit.bm25_score, hit.bm25_rank     # doctest: +SKIP

    Args:
        encoder: A loaded :class:`ColBERTEncoder`, an ``EncoderSpec``, or a model name or path
            (loaded, shared via ``get_encoder``, on the first search).
        texts: The documents.
        ids: Their ids (default ``"0"``, ``"1"``, ...).
        metadata: One dict (or None) per document.
        candidates: BM25 pool size; a search for ``k`` > ``candidates`` widens it to ``k``.
        require_match: Only documents sharing a term with the query are BM25 candidates
            (no zero-score fillers).
        dense: An optional dense first stage (``DenseEncoder``, ``EncoderSpec``, name or path);
            see the module docstring: every document is encoded once, on the first search.
        dense_candidates: Dense pool size (widened to ``k`` like ``candidates``).
        fusion: ``None``, ``"rrf"`` or ``"weighted"`` (module docstring).
        weight: ColBERT weight of ``fusion="weighted"`` (0.5).
        rrf_k: Constant of ``fusion="rrf"`` (60).
        score: ColBERT score mode, ``"raw"`` or ``"mean"``.
        cache: Embedding cache of the ColBERT document vectors (a private one by default).
        analyzer: BM25 analyzer (see :mod:`lfm_retrievers.indexes.analyzers`); ``"model"``
            uses the ColBERT encoder's tokenizer, so it loads the encoder here.
        language: BM25 language: ``None``, an ISO 639-1 code (that language's Snowball
            stemmer) or ``"auto"`` (each text's detected language).
        bm25_variant: rank-bm25 variant (``"plus"``, ``"okapi"``, ``"l"``).
        k1: BM25 ``k1``.
        b: BM25 ``b``.
        batch_size: Encoding batch size.
        show_progress: Progress bars: ``None`` (default) only for long encodes such as the
            dense build, ``True`` always, ``False`` never.

    ``add`` and ``delete`` take effect on the next search. Thread-safe.
    """

    def __init__(
        self,
        encoder: ColBERTEncoder | EncoderSpec | str | os.PathLike[str],
        texts: Iterable[str] = (),
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        candidates: int = 100,
        require_match: bool = False,
        dense: DenseEncoder | EncoderSpec | str | os.PathLike[str] | None = None,
        dense_candidates: int = 100,
        fusion: Fusion | None = None,
        weight: float | None = None,
        rrf_k: float | None = None,
        score: str = "raw",
        cache: EmbeddingCache | None = None,
        analyzer: str | Analyzer = "default",
        language: str | None = None,
        bm25_variant: str = "plus",
        k1: float = 1.5,
        b: float = 0.75,
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> None:
        self._configure(
            encoder,
            candidates,
            require_match,
            dense,
            dense_candidates,
            fusion,
            weight,
            rrf_k,
            score,
            cache,
            batch_size,
            show_progress,
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
            language=language,
            variant=bm25_variant,
            k1=k1,
            b=b,
        )

    @classmethod
    def from_bm25(
        cls,
        encoder: ColBERTEncoder | EncoderSpec | str | os.PathLike[str],
        index: BM25Index,
        *,
        candidates: int = 100,
        require_match: bool = False,
        dense: DenseEncoder | EncoderSpec | str | os.PathLike[str] | None = None,
        dense_candidates: int = 100,
        fusion: Fusion | None = None,
        weight: float | None = None,
        rrf_k: float | None = None,
        score: str = "raw",
        cache: EmbeddingCache | None = None,
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> BM25ColBERT:
        """Wrap an existing (e.g. loaded) :class:`BM25Index`; it is used, not copied.

        Change its documents through this object's ``add`` / ``delete`` so that a dense stage
        follows them.
        """
        if not isinstance(index, BM25Index):
            msg = f"index must be a BM25Index, got {type(index).__name__}"
            raise TypeError(msg)
        self = cls.__new__(cls)
        self._configure(
            encoder,
            candidates,
            require_match,
            dense,
            dense_candidates,
            fusion,
            weight,
            rrf_k,
            score,
            cache,
            batch_size,
            show_progress,
        )
        self.bm25 = index
        return self

    def _configure(
        self,
        encoder: object,
        candidates: object,
        require_match: object,
        dense: object,
        dense_candidates: object,
        fusion: object,
        weight: object,
        rrf_k: object,
        score: object,
        cache: object,
        batch_size: object,
        show_progress: object,
    ) -> None:
        if isinstance(encoder, str | os.PathLike):
            encoder = EncoderSpec(os.fspath(encoder))
        if isinstance(encoder, EncoderSpec):
            self._encoder: ColBERTEncoder | None = None
            self._encoder_spec: EncoderSpec | None = encoder
        elif getattr(encoder, "kind", None) == "colbert":
            self._encoder = encoder  # type: ignore[assignment]
            self._encoder_spec = None
        else:
            kind = getattr(encoder, "kind", None)
            msg = (
                "encoder must be a ColBERTEncoder, an EncoderSpec or a model name/path, got "
                f"{type(encoder).__name__}" + (f" (a {kind} encoder)" if kind else "")
            )
            raise TypeError(msg)
        self.candidates: int = check_positive_int(candidates, "candidates")
        self.dense_candidates: int = check_positive_int(dense_candidates, "dense_candidates")
        if not isinstance(require_match, bool):
            msg = f"require_match must be True or False, got {require_match!r}"
            raise TypeError(msg)
        if dense is not None and not (
            isinstance(dense, EncoderSpec | str | os.PathLike)
            or getattr(dense, "kind", None) == "dense"
        ):
            kind = getattr(dense, "kind", None)
            msg = (
                "dense must be None, a DenseEncoder, an EncoderSpec or a model name/path, got "
                f"{type(dense).__name__}" + (f" (a {kind} encoder)" if kind else "")
            )
            raise TypeError(msg)
        check_choice(fusion, "fusion", FUSIONS)
        if weight is not None and fusion != "weighted":
            msg = f"weight is only used by fusion='weighted', not fusion={fusion!r}"
            raise ValueError(msg)
        if rrf_k is not None and fusion != "rrf":
            msg = f"rrf_k is only used by fusion='rrf', not fusion={fusion!r}"
            raise ValueError(msg)
        w = check_float(DEFAULT_WEIGHT if weight is None else weight, "weight", 0.0, 1.0)
        rk = check_float(DEFAULT_RRF_K if rrf_k is None else rrf_k, "rrf_k", 0.0)
        check_score_mode(score)
        progress = None if show_progress is None else check_bool(show_progress, "show_progress")
        if cache is not None and not isinstance(cache, EmbeddingCache):
            msg = f"cache must be an EmbeddingCache or None, got {type(cache).__name__}"
            raise TypeError(msg)
        self.require_match = require_match
        self.fusion: str | None = fusion  # type: ignore[assignment]
        self.weight = float(w)
        self.rrf_k = float(rk)
        self.score: str = score  # type: ignore[assignment]
        self.cache: EmbeddingCache = cache if cache is not None else EmbeddingCache()
        self.batch_size = check_batch_size(batch_size)
        self.show_progress: bool | None = progress
        self._lock = threading.RLock()
        self._dense_index: DenseIndex | None = None if dense is None else DenseIndex(dense)
        self._dense_stale = True

    # ------------------------------------------------------------------ corpus
    @property
    def encoder(self) -> ColBERTEncoder:
        """The ColBERT encoder (loaded on first use when a name, path or spec was given)."""
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    assert self._encoder_spec is not None
                    enc = get_encoder(self._encoder_spec, expect="colbert")
                    self._encoder = enc  # type: ignore[assignment]
        assert self._encoder is not None
        return self._encoder

    @property
    def dense_index(self) -> DenseIndex | None:
        """The dense stage's index (``None`` without ``dense=``); filled on the first search."""
        return self._dense_index

    def __len__(self) -> int:
        return len(self.bm25)

    def __repr__(self) -> str:
        name = self._encoder.name if self._encoder is not None else self._encoder_spec
        dense = ", dense=True" if self._dense_index is not None else ""
        return (
            f"BM25ColBERT(encoder={name!r}, n_docs={len(self)}, candidates={self.candidates}, "
            f"fusion={self.fusion!r}, analyzer={self.bm25.analyzer_name!r}{dense})"
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
        """Add documents (nothing is encoded until the next search); returns their ids."""
        with self._lock:
            self._dense_stale = True
            return self.bm25.add(texts, ids, metadata)

    def delete(self, ids: str | Iterable[str]) -> None:
        """Remove documents by id; unknown ids raise KeyError and nothing is removed."""
        with self._lock:
            self._dense_stale = True
            self.bm25.delete(ids)

    def _sync_dense(self, dense: DenseIndex) -> None:
        """Encode documents the dense index lacks, drop those BM25 no longer has."""
        current = set(self.bm25.ids)
        gone = [i for i in dense.ids if i not in current]
        if gone:
            dense.delete(gone)
        have = set(dense.ids)
        new = [i for i in self.bm25.ids if i not in have]
        if new:
            texts = [self.bm25.get(i)[0] for i in new]
            dense.add(texts, ids=new, batch_size=self.batch_size, show_progress=self.show_progress)
        self._dense_stale = False

    # ------------------------------------------------------------------ search
    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        """The ``k`` best documents for ``query``: candidates, reranked by ColBERT (or fused)."""
        k = check_positive_int(k, "k")
        query = check_str(query, "query")
        dense = self._dense_index
        with self._lock:  # a consistent snapshot of the candidates
            if dense is not None and self._dense_stale:
                self._sync_dense(dense)
            bm25_hits = self.bm25.search(
                query,
                max(self.candidates, k),
                require_match=self.require_match or dense is not None,
            )
            dense_hits = (
                dense.search(query, max(self.dense_candidates, k))
                if dense is not None and len(dense)
                else []
            )
        pool: dict[str, dict[str, Any]] = {}
        for h in bm25_hits:
            pool[h.id] = {"hit": h, "bm25": h}
        for h in dense_hits:
            pool.setdefault(h.id, {"hit": h})["dense"] = h
        if not pool:
            return []
        entries = list(pool.values())
        texts = [e["hit"].text for e in entries]
        if dense_hits:  # a dense hit's metadata is not stored there: read it from BM25
            for e in entries:
                if "bm25" not in e:
                    e["metadata"] = self.bm25.get(e["hit"].id)[1]
        enc = self.encoder
        doc_vectors = encode_documents_cached(
            enc, texts, self.cache, batch_size=self.batch_size, show_progress=self.show_progress
        )
        query_vectors = enc.encode_queries([query], show_progress=False)[0]
        ranked = rerank_vectors(query_vectors, doc_vectors, score=self.score)
        return self._finish(entries, ranked, k)

    def _finish(self, entries: list[dict[str, Any]], ranked: Any, k: int) -> list[SearchHit]:
        n = len(entries)
        colbert = np.empty(n)
        colbert_rank = np.empty(n, dtype=np.int64)
        for r, res in enumerate(ranked, 1):
            colbert[res.index] = res.score
            colbert_rank[res.index] = r
        bm25 = np.array([e["bm25"].score if "bm25" in e else 0.0 for e in entries])
        bm25_rank = np.array([e["bm25"].rank if "bm25" in e else _NO_RANK for e in entries])
        dense_rank = np.array([e["dense"].rank if "dense" in e else _NO_RANK for e in entries])
        final: np.ndarray
        if self.fusion is None:
            final = colbert
        elif self.fusion == "rrf":
            final = 1.0 / (self.rrf_k + colbert_rank)
            matched = bm25 != 0.0
            final[matched] += 1.0 / (self.rrf_k + bm25_rank[matched])
            has_dense = dense_rank != _NO_RANK
            final[has_dense] += 1.0 / (self.rrf_k + dense_rank[has_dense])
        else:
            final = self.weight * _minmax(colbert) + (1.0 - self.weight) * _minmax(bm25)
        order = np.lexsort((dense_rank, bm25_rank, -final))[:k]
        out = []
        for r, i in enumerate(order.tolist(), 1):
            e = entries[i]
            b, d = e.get("bm25"), e.get("dense")
            out.append(
                SearchHit(
                    id=e["hit"].id,
                    score=float(final[i]),
                    text=e["hit"].text,
                    metadata=e["metadata"] if "metadata" in e else e["hit"].metadata,
                    rank=r,
                    bm25_score=None if b is None else b.score,
                    bm25_rank=None if b is None else b.rank,
                    dense_score=None if d is None else d.score,
                    dense_rank=None if d is None else d.rank,
                    colbert_score=float(colbert[i]),
                    colbert_rank=int(colbert_rank[i]),
                )
            )
        return out
