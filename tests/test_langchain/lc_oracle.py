"""Independent MaxSim oracle for the LangChain tests (plain numpy, no lfm_retrievers.scoring)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lfm_retrievers import ColBERTEncoder


def maxsim_scores(
    encoder: ColBERTEncoder, query: str, texts: Sequence[str], *, stored: type = np.float32
) -> np.ndarray:
    """Raw MaxSim: for each query vector its best dot product with the document's tokens, summed.

    ``stored=np.float16`` rounds the document vectors as ``ColBERTIndex`` stores them.
    """
    q = encoder.encode_queries([query])[0].astype(np.float64)
    docs = [d.astype(stored).astype(np.float64) for d in encoder.encode_documents(list(texts))]
    return np.array([(q @ d.T).max(axis=1).sum() for d in docs])


def ranking(scores: np.ndarray) -> list[int]:
    """Indices by score, best first, ties in input order."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))
