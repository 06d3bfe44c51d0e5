"""Indexes: where documents live between searches.

In process, exact: :class:`DenseIndex` (cosine) and :class:`ColBERTIndex` (MaxSim), each a
document table plus packed vectors, saved as JSON + ``.npy``. Lexical: :class:`BM25Index` on
rank-bm25 with the analyzers of :mod:`.analyzers`.
"""

from __future__ import annotations

from .bm25 import BM25Index
from .colbert import ColBERTIndex
from .dense import DenseIndex
from .format import IndexInfo

__all__ = ["BM25Index", "ColBERTIndex", "DenseIndex", "IndexInfo"]
