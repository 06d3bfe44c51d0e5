"""``ColBERTIndex``: exact MaxSim search over every document's token vectors, in process.

All documents' token vectors live in flat float16 matrices plus int64 offsets (about
``tokens x dim x 2`` bytes per document, no padding). A search scores every candidate document
chunk by chunk (:func:`~lfm_retrievers.scoring.maxsim_flat`), so its memory is bounded by
``chunk_tokens``, not by the corpus.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from lfm_retrievers._validation import check_positive_int, check_vectors
from lfm_retrievers.results import SearchHit
from lfm_retrievers.scoring import check_score_mode, maxsim_flat

from .base import VectorIndex


class ColBERTIndex(VectorIndex):
    """Exact MaxSim search over ColBERT token vectors, persisted as JSON + memory-mapped .npy.

    >>> index = ColBERTIndex(load("LiquidAI/LFM2.5-ColBERT-350M"))  # doctest: +SKIP
    >>> index.add(["Mars is red.", "Venus is hot."], ids=["mars", "venus"])  # doctest: +SKIP
    >>> index.search("red planet", k=1, filter={"ids": ["mars", "venus"]})[0].id  # doctest: +SKIP
    'mars'
    """

    kind = "colbert"
    storage_dtype = np.float16

    def _encode_documents(self, texts: list[str], batch_size: int) -> list[np.ndarray]:
        return list(
            self.encoder.encode_documents(texts, batch_size=batch_size, show_progress=False)
        )

    def _encode_query(self, query: str) -> np.ndarray:
        return np.asarray(self.encoder.encode_queries([query], show_progress=False)[0], np.float32)

    def _score_block(
        self, query: np.ndarray, vectors: np.ndarray, offsets: np.ndarray
    ) -> np.ndarray:
        device = getattr(self._encoder, "device", None)
        q = torch.from_numpy(query)
        if isinstance(device, torch.device) and device.type != "cpu":
            q = q.to(device)
        return maxsim_flat(q, vectors, offsets, chunk_tokens=self.chunk_tokens).cpu().numpy()

    def search(
        self,
        query: str,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        *,
        score: str = "raw",
    ) -> list[SearchHit]:
        """The ``k`` documents with the highest MaxSim for ``query``, best first.

        ``score``: ``"raw"`` (MaxSim sum) or ``"mean"`` (÷ query vectors), see
        :mod:`lfm_retrievers.scoring`.
        """
        k = check_positive_int(k, "k")
        query = self._check_query(query)
        check_score_mode(score)
        flt = self._check_filter(filter)
        if not len(self):
            return []
        return self.search_vectors(self._encode_query(query), k, flt, score=score)

    def search_vectors(
        self,
        query_vectors: np.ndarray,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        *,
        score: str = "raw",
    ) -> list[SearchHit]:
        """Like :meth:`search`, for already encoded query vectors ``(q, dim)``."""
        k = check_positive_int(k, "k")
        mode = check_score_mode(score)
        flt = self._check_filter(filter)
        q = np.ascontiguousarray(check_vectors(query_vectors, "query_vectors", 2, self.dim))
        return self._hits(self._search_vectors(q, k, flt), len(q) if mode == "mean" else 1)
