"""Qdrant as the engine: the same ColBERT retrieval in a collection that can span a cluster.

:class:`QdrantIndex` (in :mod:`.index`) writes and searches a collection whose layout,
stable term hash and point ids are described in :mod:`.layout`; :mod:`.filters` maps the
package's filter language onto Qdrant conditions. ``qdrant-client`` is imported
when an index is first created (``pip install 'lfm-retrievers[qdrant]'``), never by
``import lfm_retrievers``.
"""

from __future__ import annotations

from lfm_retrievers.indexes.qdrant.index import QdrantIndex
from lfm_retrievers.indexes.qdrant.layout import (
    POINT_NAMESPACE,
    SEARCH_MODES,
    STORAGES,
    TERM_HASH,
    QdrantWriteError,
    bm25_document_weights,
    bm25_query_weights,
    is_transient,
    payload_key,
    point_id,
    term_index,
)

__all__ = [
    "POINT_NAMESPACE",
    "SEARCH_MODES",
    "STORAGES",
    "TERM_HASH",
    "QdrantIndex",
    "QdrantWriteError",
    "bm25_document_weights",
    "bm25_query_weights",
    "is_transient",
    "payload_key",
    "point_id",
    "term_index",
]
