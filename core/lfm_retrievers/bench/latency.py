"""``lfm-retrievers bench`` (latency): the model cards' four regimes, p50/p95/p99."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from lfm_retrievers.models.encoders import ColBERTEncoder, DenseEncoder

from .machine import (
    DOCUMENT_TOKENS,
    QUERY_TOKENS,
    device_sync,
    load_average,
    machine_info,
    measure,
    model_label,
    parameter_count,
    text_of_length,
)

logger = logging.getLogger(__name__)


def latency_benchmark(
    *,
    dense: DenseEncoder,
    colbert: ColBERTEncoder,
    random_weights: bool,
    n_docs: int = 1,
    iterations: int = 50,
    warmup: int = 3,
    max_seconds: float | None = 60.0,
    query_tokens: int = QUERY_TOKENS,
    document_tokens: int = DOCUMENT_TOKENS,
    load_before: float | None = None,
) -> dict[str, Any]:
    """p50/p95/p99 of the cards' four regimes, one query at a time (batch size 1).

    1. dense query embedding; 2. ColBERT query embedding; 3. ColBERT query embedding + MaxSim
    over ``n_docs`` cached document embeddings; 4. ColBERT query + ``n_docs`` document embeddings
    + MaxSim (nothing cached). Queries are ``query_tokens`` long (dense: BOS + prompt + text),
    documents ``document_tokens`` (ColBERT: BOS + [D] + text).
    """
    from lfm_retrievers.scoring import maxsim_padded

    if load_before is None:
        load_before = load_average()
    if n_docs < 1:
        msg = f"n_docs must be >= 1, got {n_docs}"
        raise ValueError(msg)
    device = colbert.device
    sync = device_sync(device)

    def dense_len(t: str) -> int:
        return len(dense.tokenize([t], is_query=True)[0].ids)

    def doc_len(t: str) -> int:
        return len(colbert.tokenize([t], is_query=False)[0].ids)

    query = text_of_length(dense_len, query_tokens, seed=1)
    documents = [text_of_length(doc_len, document_tokens, seed=10 + i) for i in range(n_docs)]
    q_len = len(colbert.tokenize([query], is_query=True)[0].ids)
    d_lens = [doc_len(d) for d in documents]

    cached = colbert.encode_documents_padded(documents, show_progress=False)
    cached_vectors = cached.vectors.to(device)
    cached_mask = cached.mask.to(device)

    def dense_query() -> object:
        return dense.encode_queries([query], show_progress=False)

    def colbert_query() -> object:
        return colbert.encode_queries_padded([query], show_progress=False)

    def colbert_cached() -> object:
        q = colbert.encode_queries_padded([query], show_progress=False)
        return maxsim_padded(q.vectors[0].to(device), cached_vectors, cached_mask).cpu()

    def colbert_uncached() -> object:
        q = colbert.encode_queries_padded([query], show_progress=False)
        d = colbert.encode_documents_padded(documents, show_progress=False)
        return maxsim_padded(q.vectors[0].to(device), d.vectors.to(device), d.mask.to(device)).cpu()

    regimes: list[tuple[DenseEncoder | ColBERTEncoder, str, str, Callable[[], object]]] = [
        (dense, "Query embedding", "yes", dense_query),
        (colbert, "Query embedding", "yes", colbert_query),
        (colbert, "Query embedding + MaxSim", "yes", colbert_cached),
        (colbert, "Query + doc embedding + MaxSim", "no", colbert_uncached),
    ]
    rows = []
    for enc, stage, docs_cached, fn in regimes:
        logger.info("timing %s / %s", enc.kind, stage)
        timing = measure(
            fn, iterations=iterations, warmup=warmup, max_seconds=max_seconds, sync=sync
        )
        rows.append(
            {
                "model": model_label(enc, random_weights),
                "stage": stage,
                "docs_cached": docs_cached,
                **timing.summary(),
            }
        )
    return {
        "benchmark": "latency",
        "rows": rows,
        "settings": {
            "query_tokens": {
                "dense": dense_len(query),
                "colbert": q_len,
            },
            "document_tokens": d_lens[0] if len(set(d_lens)) == 1 else d_lens,
            "documents_per_query": n_docs,
            "batch_size": 1,
            "iterations": iterations,
            "warmup": warmup,
            "max_seconds_per_regime": max_seconds,
            "device": str(device),
            "dtype": str(colbert.dtype).removeprefix("torch."),
            "quantize": colbert.quantize,
            "random_weights": random_weights,
            "models": {
                "dense": {"name": str(dense.name), "parameters": parameter_count(dense)},
                "colbert": {"name": str(colbert.name), "parameters": parameter_count(colbert)},
            },
            "maxsim": "lfm_retrievers.scoring.maxsim_padded",
        },
        "machine": machine_info(device, load_before),
        "note": "speed does not depend on weight values"
        if random_weights
        else "real checkpoint weights",
    }
