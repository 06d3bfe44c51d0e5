"""The one place that uses rank-bm25 beyond its public constructor and ``get_scores``.

rank-bm25's classes count a tokenized corpus in ``__init__``. :class:`~.bm25.BM25Index` keeps
per-document term counts itself (``add`` and ``delete`` update them in place), so re-counting
the corpus on every change would cost O(tokens). :func:`rank_bm25_scores` instead fills in the
attributes ``BM25.__init__`` would compute, calls rank-bm25's own ``_calc_idf`` and
``get_scores`` (so the formulas stay rank-bm25's), and removes ``BM25Plus``'s per-query
constant. ``tests/core/test_bm25.py`` pins this to the installed rank-bm25: a model built here
must have exactly the attributes, idf and scores of one built by rank-bm25's constructor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import rank_bm25

__all__ = [
    "DEFAULT_DELTA",
    "VARIANTS",
    "VARIANT_ALIASES",
    "VARIANT_CLASSES",
    "build_model",
    "rank_bm25_scores",
]

#: BM25Index variant name -> rank-bm25 class.
VARIANT_CLASSES: dict[str, type[rank_bm25.BM25]] = {
    "plus": rank_bm25.BM25Plus,
    "okapi": rank_bm25.BM25Okapi,
    "l": rank_bm25.BM25L,
}
VARIANTS = tuple(VARIANT_CLASSES)
#: Accepted spellings of each variant.
VARIANT_ALIASES = {
    "plus": "plus",
    "bm25plus": "plus",
    "bm25+": "plus",
    "okapi": "okapi",
    "bm25okapi": "okapi",
    "l": "l",
    "bm25l": "l",
}
#: rank-bm25's default ``delta`` of the variants that have one.
DEFAULT_DELTA = {"plus": 1.0, "l": 0.5}


def build_model(
    variant: str,
    *,
    k1: float,
    b: float,
    param: float,
    doc_freqs: Sequence[Mapping[str, int]],
    doc_len: Sequence[int],
    df: Mapping[str, int],
) -> rank_bm25.BM25:
    """A rank-bm25 model over already counted documents (no re-tokenizing, no re-counting).

    Args:
        variant: ``"plus"``, ``"okapi"`` or ``"l"``.
        k1: Term-frequency saturation.
        b: Length normalization.
        param: ``delta`` (plus, l) or ``epsilon`` (okapi).
        doc_freqs: Per document, term -> count (used, not copied).
        doc_len: Per document, its number of terms.
        df: Term -> number of documents that contain it (must not be empty).
    """
    model = object.__new__(VARIANT_CLASSES[variant])
    model.k1, model.b = k1, b
    if variant == "okapi":
        model.epsilon = param
    else:
        model.delta = param
    model.tokenizer = None
    model.corpus_size = len(doc_len)
    model.avgdl = sum(doc_len) / len(doc_len)
    model.doc_freqs = doc_freqs
    model.doc_len = np.asarray(doc_len, dtype=np.float64)
    model.idf = {}
    model._calc_idf(dict(df))
    return model


def rank_bm25_scores(model: rank_bm25.BM25, terms: Sequence[str]) -> np.ndarray:
    """rank-bm25's scores of every document for query ``terms`` (float64, index order).

    ``BM25Plus`` adds ``delta * idf(t)`` for every query term to every document, matching or
    not; that constant does not change the ranking, and is subtracted here (summed in the same
    order), so a document with no query term scores exactly 0.
    """
    scores = np.asarray(model.get_scores(list(terms)), dtype=np.float64)
    if isinstance(model, rank_bm25.BM25Plus):
        offset = 0.0
        for t in terms:
            offset += model.idf[t] * model.delta
        scores -= offset
    return scores
