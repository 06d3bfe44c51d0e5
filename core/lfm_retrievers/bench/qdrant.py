"""``lfm-retrievers bench qdrant``: the Qdrant engine under :class:`~lfm_retrievers.QdrantIndex`.

The documents and queries are encoded once, before any timing, so the figures measure the
engine, not the models:

* ingest: documents per second of :meth:`QdrantIndex.add_vectors` (upload with ``wait=True``,
  BM25 vectors computed on the client);
* query latency p50 / p95 per search mode, from :meth:`QdrantIndex.search_vectors`;
* bytes per document: the vectors and payload each document stores (float16 ColBERT tokens,
  float32 dense vector, sparse BM25 entries, JSON payload), at this model's widths and at
  LFM2.5's (128-d ColBERT, 1024-d dense); the engine's own index overhead is not included;
* recall@10 of each prefetch mode against exact ``"colbert"`` search (how many of the exact
  top 10 the prefetch keeps), which says what ``candidates`` costs in quality.

Without ``url`` the engine is qdrant-client's local mode (pure numpy, every query scans every
point): its latencies say nothing about a server's, where ``"colbert"`` also scans while the
prefetch modes use the HNSW and sparse indexes. The other figures hold for both.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lfm_retrievers.indexes.qdrant import SEARCH_MODES, QdrantIndex

REAL_COLBERT_DIM = 128
REAL_DENSE_DIM = 1024


class Widened:
    """An encoder whose vectors are embedded isometrically in a wider space.

    ``v -> v @ Q.T`` with ``Q`` (``width x dim``) of orthonormal columns keeps every dot
    product, so MaxSim and cosine scores (and every ranking) are unchanged, while the engine
    stores and scans vectors of the real models' widths. Lets the tiny test checkpoints stand
    in for LFM2.5 (128-d ColBERT, 1024-d dense) in an engine benchmark.
    """

    def __init__(self, encoder: Any, width: int, seed: int = 0) -> None:
        """Wrap ``encoder`` (dim <= ``width``)."""
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((width, encoder.dim)))
        self.encoder, self.kind, self.dim = encoder, encoder.kind, width
        self.name = f"{encoder.name} (widened to {width})"
        self.fingerprint = f"{encoder.fingerprint}-w{width}"
        self._q = q.astype(np.float32)

    def _widen(self, vectors: Any) -> Any:
        if isinstance(vectors, np.ndarray) and vectors.ndim == 2 and self.kind == "dense":
            return vectors @ self._q.T
        return [np.asarray(v, np.float32) @ self._q.T for v in vectors]

    def encode_documents(self, texts: Sequence[str], **kwargs: Any) -> Any:
        """The wrapped encoder's document vectors, widened."""
        return self._widen(self.encoder.encode_documents(texts, **kwargs))

    def encode_queries(self, texts: Sequence[str], **kwargs: Any) -> Any:
        """The wrapped encoder's query vectors, widened."""
        return self._widen(self.encoder.encode_queries(texts, **kwargs))


def _percentiles(samples: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "n": len(samples),
    }


def qdrant_bench(
    texts: Sequence[str],
    queries: Sequence[str],
    *,
    colbert: Any,
    dense: Any = None,
    url: str | None = None,
    api_key: str | None = None,
    k: int = 10,
    candidates: int = 100,
    storage: str = "float16",
    upload_batch_size: int = 64,
    keep: bool = False,
    widen: bool = True,
) -> dict[str, Any]:
    """Run the benchmark on ``texts`` and ``queries``; returns a JSON-ready dict.

    ``colbert`` / ``dense`` are loaded encoders (or names); narrower than LFM2.5's they are
    :class:`Widened` to its widths unless ``widen=False``. A temporary collection is created
    (and dropped unless ``keep``) on the server at ``url``, or in local mode.
    """
    from qdrant_client import QdrantClient

    from lfm_retrievers.models.registry import resolve_encoder

    col = resolve_encoder(colbert, "colbert")
    den = resolve_encoder(dense, "dense") if dense is not None else None
    if widen:
        col = Widened(col, REAL_COLBERT_DIM) if col.dim < REAL_COLBERT_DIM else col
        if den is not None and den.dim < REAL_DENSE_DIM:
            den = Widened(den, REAL_DENSE_DIM)
    client = QdrantClient(url=url, api_key=api_key) if url else QdrantClient(":memory:")
    name = f"lfm-bench-{uuid.uuid4().hex[:8]}"
    index = QdrantIndex(
        client,
        name,
        colbert=col,
        dense=den if den is not None else False,
        storage=storage,
        upload_batch_size=upload_batch_size,
    )
    ids = [f"doc-{i}" for i in range(len(texts))]
    t0 = time.perf_counter()
    doc_vectors = col.encode_documents(list(texts), show_progress=False)
    dense_vectors = den.encode_documents(list(texts), show_progress=False) if den else None
    query_vectors = col.encode_queries(list(queries), show_progress=False)
    dense_queries = den.encode_queries(list(queries), show_progress=False) if den else None
    encode_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        index.add_vectors(
            doc_vectors, ids, list(texts), dense_vectors=dense_vectors, show_progress=False
        )
        ingest_s = time.perf_counter() - t0
        modes = [m for m in SEARCH_MODES if den is not None or ("dense" not in m and m != "hybrid")]
        latency: dict[str, Any] = {}
        results: dict[str, list[list[str]]] = {}
        for mode in modes:
            samples, found = [], []
            for j, query in enumerate(queries):
                t0 = time.perf_counter()
                hits = index.search_vectors(
                    query_vectors[j],
                    k=k,
                    dense_vector=None if dense_queries is None else dense_queries[j],
                    text=query,
                    mode=mode,
                    candidates=candidates,
                )
                samples.append(time.perf_counter() - t0)
                found.append([h.id for h in hits])
            latency[mode] = _percentiles(samples)
            results[mode] = found
        recall = {}
        for mode in modes:
            if mode == "colbert":
                continue
            overlaps = [
                len(set(got) & set(exact)) / max(1, len(exact))
                for got, exact in zip(results[mode], results["colbert"], strict=True)
            ]
            recall[mode] = round(float(np.mean(overlaps)), 4)
        tokens = np.array([len(v) for v in doc_vectors], dtype=np.float64)
        payload = np.mean(
            [
                len(json.dumps({"text": t, "metadata": {}, "doc_id": i}).encode())
                for t, i in zip(texts, ids, strict=True)
            ]
        )
        bm25_entries = (
            float(np.mean([len(index.bm25_weights(t)) for t in texts])) if index.has_bm25 else 0.0
        )
        width = 2 if storage == "float16" else 4

        def per_doc(colbert_dim: int, dense_dim: int | None) -> float:
            return float(
                tokens.mean() * colbert_dim * width
                + (dense_dim * 4 if dense_dim else 0)
                + bm25_entries * 8
                + payload
            )

        return {
            "engine": url or "local mode (qdrant-client, :memory:)",
            "documents": len(texts),
            "queries": len(queries),
            "colbert_model": str(col.name),
            "dense_model": None if den is None else str(den.name),
            "dims": {"colbert": int(col.dim), "dense": None if den is None else int(den.dim)},
            "storage": storage,
            "k": k,
            "candidates": candidates,
            "encode_s_not_timed": round(encode_s, 2),
            "ingest": {
                "seconds": round(ingest_s, 3),
                "docs_per_s": round(len(texts) / ingest_s, 1),
                "upload_batch_size": upload_batch_size,
            },
            "latency": latency,
            "recall_at_k_vs_colbert": recall,
            "bytes_per_document": {
                "tokens_mean": round(float(tokens.mean()), 1),
                "lfm2.5_dims": round(per_doc(REAL_COLBERT_DIM, REAL_DENSE_DIM if den else None)),
                "payload_mean": round(float(payload)),
                "bm25_entries_mean": round(bm25_entries, 1),
            },
        }
    finally:
        if not keep:
            client.delete_collection(name)


def qdrant_corpus(
    data: Path | None, n_docs: int, n_queries: int, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Documents and queries for :func:`qdrant_bench`.

    The first ``n_docs`` documents (title + text) and ``n_queries`` queries of a BEIR folder,
    or synthetic texts without one.
    """
    if data is not None:
        from lfm_retrievers.evaluation import load_beir

        corpus, queries, _ = load_beir(data)
        texts = [f"{d['title']} {d['text']}".strip() for d in list(corpus.values())[:n_docs]]
        return texts, list(queries.values())[:n_queries]
    from lfm_retrievers.bench.machine import _WORDS

    rng = random.Random(seed)
    texts = [" ".join(rng.choices(_WORDS, k=rng.randint(20, 200))) for _ in range(n_docs)]
    return texts, [" ".join(rng.choices(_WORDS, k=8)) for _ in range(n_queries)]
