"""Speed of the BM25 first stage and of BM25 -> ColBERT end to end (a benchmark, not a test).

``bm25_bench()`` measures on BEIR SciFact (5,183 documents, 300 queries):

* BM25 index build time (default analyzer, rank-bm25 BM25Plus) and per-query search latency
  (top 100, every query once: p50 / p95);
* :class:`~lfm_retrievers.pipeline.BM25ColBERT` per-query latency with a **cold** embedding
  cache (cleared before each query, so all ``candidates`` documents are encoded) and a
  **warm** one (the same query right after: only the query is encoded).

The ColBERT model defaults to the tiny test checkpoint, which measures the pipeline's own
overhead (BM25, cache lookups, MaxSim). Pass ``model=`` (a checkpoint folder, e.g. one from
:func:`lfm_retrievers.benchmark.build_random_checkpoint`) for full-size encoder costs.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from lfm_retrievers.cache import EmbeddingCache
from lfm_retrievers.evaluation import document_text, load_beir
from lfm_retrievers.indexes.bm25 import BM25Index
from lfm_retrievers.models.encoders import ColBERTEncoder
from lfm_retrievers.models.registry import load
from lfm_retrievers.pipeline import BM25ColBERT

from .machine import Timing, machine_info, shared_data_dir

logger = logging.getLogger(__name__)

__all__ = ["bm25_bench"]


def _summary(samples: list[float]) -> dict[str, float | int]:
    return Timing(tuple(samples)).summary()


def bm25_bench(
    data_dir: str | Path | None = None,
    *,
    model: str | Path | None = None,
    analyzer: str = "default",
    depth: int = 100,
    candidates: int = 100,
    pipeline_queries: int = 30,
    builds: int = 3,
) -> dict[str, Any]:
    """Run the benchmark and return a JSON-ready dict (times in ms, build in s).

    ``data_dir`` is a BEIR SciFact folder (default: ``../shared/data/scifact`` beside the
    source checkout). ``pipeline_queries`` bounds the end-to-end part (cold and warm each).
    """
    if data_dir is None:
        shared = shared_data_dir()
        if shared is None:
            msg = "no SciFact folder given and ../shared/data not found; pass data_dir="
            raise FileNotFoundError(msg)
        data_dir = shared / "scifact"
    corpus, queries, _ = load_beir(data_dir)
    ids = list(corpus)
    texts = [document_text(corpus[i]) for i in ids]
    query_texts = list(queries.values())

    build_s = []
    index = BM25Index()
    for _ in range(max(1, builds)):
        t0 = time.perf_counter()
        index = BM25Index(texts, ids, analyzer=analyzer)
        index.search("warm up", 1)  # the rank-bm25 object is built lazily on first search
        build_s.append(time.perf_counter() - t0)
    search_s = []
    for q in query_texts:
        t0 = time.perf_counter()
        index.search(q, depth)
        search_s.append(time.perf_counter() - t0)
    n_tokens = index._n_tokens

    with tempfile.TemporaryDirectory() as tmp:
        if model is None:
            from lfm_retrievers.testing import build_tiny_checkpoint

            model_path: str | Path = build_tiny_checkpoint("colbert", Path(tmp) / "colbert")
            model_label = "tiny test checkpoint (hidden 64, 4 layers)"
        else:
            model_path, model_label = model, str(model)
        enc = load(model_path, expect="colbert")
        assert isinstance(enc, ColBERTEncoder)
        cache = EmbeddingCache()
        pipe = BM25ColBERT(
            enc,
            texts,
            ids,
            candidates=candidates,
            cache=cache,
            analyzer=analyzer,
            show_progress=False,
        )
        chosen = query_texts[: max(1, pipeline_queries)]
        pipe.search(chosen[0], k=10)  # first-call overheads (threads, allocator) out of the way
        cold, warm = [], []
        for q in chosen:
            cache.clear()  # cold: every candidate is encoded
            t0 = time.perf_counter()
            pipe.search(q, k=10)
            cold.append(time.perf_counter() - t0)
            cache.reset_stats()
            t0 = time.perf_counter()  # warm: the same candidates again, all cached
            pipe.search(q, k=10)
            warm.append(time.perf_counter() - t0)
            assert cache.misses == 0
        stats = cache.stats()
        device = enc.device

    return {
        "dataset": {
            "path": str(data_dir),
            "documents": len(texts),
            "queries": len(query_texts),
            "tokens": n_tokens,
        },
        "bm25": {
            "library": "rank-bm25",
            "analyzer": analyzer,
            **index.params,
            "build_s": round(float(np.median(build_s)), 3),
            "build_samples_s": [round(s, 3) for s in build_s],
            f"search_top{depth}": _summary(search_s),
        },
        "bm25_colbert": {
            "model": model_label,
            "candidates": candidates,
            "k": 10,
            "queries": len(chosen),
            "cold_cache": _summary(cold),
            "warm_cache": _summary(warm),
            "warm_cache_stats": stats,
        },
        "machine": machine_info(device),
    }
