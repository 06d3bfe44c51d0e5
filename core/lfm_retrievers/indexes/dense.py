"""``DenseIndex``: exact cosine search over one float32 vector per document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lfm_retrievers._validation import check_positive_int, check_vectors
from lfm_retrievers.results import SearchHit

from .base import VectorIndex


class DenseIndex(VectorIndex):
    """Exact cosine search over dense document vectors (float32), persisted as JSON + .npy.

    Top-k by the dot product of unit vectors, computed ``chunk_tokens`` documents at a time.

    >>> index = DenseIndex(load("LiquidAI/LFM2.5-Embedding-350M"))  # doctest: +SKIP
    >>> index.add(["Mars is red.", "Venus is hot."], ids=["mars", "venus"])  # doctest: +SKIP
    >>> index.search("red planet", k=1)[0].id  # doctest: +SKIP
    'mars'
    """

    kind = "dense"
    storage_dtype = np.float32

    def _encode_documents(self, texts: list[str], batch_size: int) -> list[np.ndarray]:
        vectors = self.encoder.encode_documents(texts, batch_size=batch_size, show_progress=False)
        return [np.asarray(v)[None, :] for v in vectors]

    def _encode_query(self, query: str) -> np.ndarray:
        return np.asarray(self.encoder.encode_queries([query], show_progress=False)[0], np.float32)

    def _score_block(
        self, query: np.ndarray, vectors: np.ndarray, offsets: np.ndarray
    ) -> np.ndarray:
        out = np.empty(len(vectors), dtype=np.float32)
        step = max(1, self.chunk_tokens)
        for a in range(0, len(vectors), step):
            np.matmul(vectors[a : a + step], query, out=out[a : a + step])
        return out

    def search(
        self, query: str, k: int = 10, filter: Mapping[str, Any] | None = None
    ) -> list[SearchHit]:
        """The ``k`` documents most similar to ``query`` (cosine), best first."""
        k = check_positive_int(k, "k")
        query = self._check_query(query)
        flt = self._check_filter(filter)
        if not len(self):
            return []
        return self.search_vectors(self._encode_query(query), k, flt)

    def search_vectors(
        self, query_vector: np.ndarray, k: int = 10, filter: Mapping[str, Any] | None = None
    ) -> list[SearchHit]:
        """Like :meth:`search`, for an already encoded (unit) query vector ``(dim,)``."""
        k = check_positive_int(k, "k")
        flt = self._check_filter(filter)
        q = check_vectors(query_vector, "query_vector", 1, self.dim)
        return self._hits(self._search_vectors(q, k, flt))
