"""One Query API request per search: a direct query, or prefetch (dense / BM25) -> MaxSim."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lfm_retrievers.indexes.qdrant import layout as lay
from lfm_retrievers.results import SearchHit


def unpack(point: Any) -> tuple[str, str, dict[str, Any]]:
    """``(id, text, metadata)`` of a stored point."""
    payload = point.payload or {}
    return (
        payload.get(lay.ID_FIELD, str(point.id)),
        payload.get(lay.TEXT_FIELD, ""),
        payload.get(lay.METADATA_FIELD) or {},
    )


def check_encoded(
    mode: str,
    parts: set[str],
    record: Mapping[str, Any],
    query_vectors: Any,
    dense_vector: Any,
    text: object,
) -> None:
    """Check the encoded query parts of :meth:`QdrantIndex.search_vectors` against a mode."""
    from lfm_retrievers._validation import check_str
    from lfm_retrievers.indexes.qdrant.writing import check_shapes

    given = {lay.COLBERT: query_vectors, lay.DENSE: dense_vector, lay.BM25: text}
    names = {lay.COLBERT: "query_vectors", lay.DENSE: "dense_vector", lay.BM25: "text"}
    for part in sorted(parts):
        if given[part] is None:
            msg = f"mode {mode!r} needs {names[part]}"
            raise ValueError(msg)
    if text is not None:
        check_str(text, "text")
    if query_vectors is not None:
        check_shapes([query_vectors], (None, record[lay.COLBERT]["dim"]), "query_vectors", 1)
    if dense_vector is not None and record[lay.DENSE] is not None:
        check_shapes([dense_vector], (record[lay.DENSE]["dim"],), "dense_vector", 1)


def run_query(
    client: Any,
    collection: str,
    *,
    mode: str,
    k: int,
    candidates: int,
    flt: Any,
    score: str,
    colbert: Any,
    dense: Any,
    text: str | None,
    analyzer: Callable[[str], list[str]] | None,
) -> list[SearchHit]:
    """Search ``collection`` in ``mode`` with the encoded query parts; hits best first.

    The filter applies to the final query and to every prefetch. Scores of the modes ending in
    ColBERT are the engine's MaxSim, divided by the number of query vectors for
    ``score="mean"``; each hit also carries the score under its stage's field.
    """
    m = lay.models()
    sparse = None
    if text is not None and analyzer is not None:
        weights = lay.bm25_query_weights(analyzer(text))
        if weights:
            sparse = m.SparseVector(indices=list(weights), values=list(weights.values()))
    col = None if colbert is None else np.asarray(colbert, np.float32).tolist()
    den = None if dense is None else np.asarray(dense, np.float32).tolist()
    prefetch = None
    using = mode
    query: Any = {lay.COLBERT: col, lay.DENSE: den, lay.BM25: sparse}.get(mode)
    if mode not in (lay.COLBERT, lay.DENSE, lay.BM25):
        limit = max(candidates, k)
        parts = lay.mode_parts(mode)
        prefetch = [
            m.Prefetch(query=q, using=name, limit=limit, filter=flt)
            for name, q in ((lay.DENSE, den), (lay.BM25, sparse))
            if name in parts and q is not None
        ]
        query, using = (col, lay.COLBERT) if prefetch else (None, lay.COLBERT)
    if query is None:
        return []  # a query without BM25 terms has no BM25 candidates
    response = client.query_points(
        collection,
        query=query,
        using=using,
        prefetch=prefetch,
        query_filter=flt,
        limit=k,
        with_payload=True,
    )
    divisor = len(col) if score == "mean" and col is not None else 1
    hits = []
    for rank, point in enumerate(response.points, 1):
        doc_id, doc_text, meta = unpack(point)
        value = float(point.score) / divisor
        stage: dict[str, Any] = {f"{using}_score": value, f"{using}_rank": rank}
        hits.append(SearchHit(doc_id, value, doc_text, meta, rank, **stage))
    return hits
