"""``LFMColBERTRanker``: ColBERT MaxSim reranking of candidate Documents, with no index build."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import ComponentDevice
from haystack_integrations.common.lfm.utils import (
    BACKEND_CHOICES,
    DEFAULT_COLBERT_MODEL,
    DTYPE_CHOICES,
    QUANTIZE_CHOICES,
    check_batch_size,
    check_choice,
    check_device,
    check_documents,
    check_meta_fields,
    check_query,
    check_threshold,
    check_top_k,
    colbert_encoder,
    copy_with,
    deduplicate_by_id,
    device_to_dict,
    model_to_str,
    split_missing_content,
    text_to_encode,
)

from lfm_retrievers import ColBERTEncoder, EmbeddingCache, rerank
from lfm_retrievers.seam import SCORE_MODES, run_in_worker

logger = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024


@component
class LFMColBERTRanker:
    """Reranks Documents by ColBERT late interaction (MaxSim) with LFM2.5-ColBERT.

    The query and the documents are encoded with the checkpoint's own ``[Q]``/``[D]``
    markers, 32-token query expansion and punctuation skiplist, so the scores are the model's
    real MaxSim. Document vectors are kept in an embedding cache (bounded in bytes), so a
    candidate that comes back for another query is not encoded again.

    **Scores** (``Document.score``), set by ``score_mode``:

    - ``"raw"`` (default): the MaxSim sum over the query vectors, as the model's authors
      compute it. Its scale is the number of query vectors (32 with query expansion for
      LFM2.5-ColBERT, so it lies in [-32, 32]); compare it only between documents of one query.
    - ``"mean"``: the raw score divided by the number of query vectors, in [-1, 1];
      easier to threshold across queries.

    ``score_threshold`` applies to the score in the chosen mode. Duplicated ids are scored
    once (the highest-scored duplicate is kept). Documents without ``content`` are skipped
    with a warning naming their ids. The output holds copies; inputs are never changed.

    No-index-build retrieval: put it after ``InMemoryBM25Retriever``:

    ```python
    from haystack import Pipeline
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
    from haystack_integrations.components.rankers.lfm import LFMColBERTRanker

    pipe = Pipeline()
    pipe.add_component("bm25", InMemoryBM25Retriever(document_store=store, top_k=100))
    pipe.add_component("ranker", LFMColBERTRanker(top_k=10))
    pipe.connect("bm25.documents", "ranker.documents")
    pipe.run({"bm25": {"query": q}, "ranker": {"query": q}})
    ```
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = DEFAULT_COLBERT_MODEL,
        *,
        device: ComponentDevice | None = None,
        dtype: str = "auto",
        quantize: str | None = None,
        backend: str = "torch",
        top_k: int = 10,
        score_threshold: float | None = None,
        score_mode: str = "raw",
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        batch_size: int = 32,
        cache_max_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        """Store the configuration; the weights load in ``warm_up`` (or on the first run).

        :param model: Hugging Face hub id, known short name or local ColBERT checkpoint folder.
        :param device: A single ``ComponentDevice``; ``None`` picks cuda > mps > xpu > cpu
            when the model loads.
        :param dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        :param quantize: ``None`` or ``"int8"`` (dynamic quantization, CPU float32 only).
        :param backend: ``"torch"``, or ``"onnx"`` (ONNX Runtime; the model is exported
            once and cached; needs ``pip install 'lfm-retrievers[onnx]'``).
        :param top_k: Default number of documents returned (``run`` can override it).
        :param score_threshold: Drop documents scoring below this (in ``score_mode`` units).
        :param score_mode: ``"raw"`` (MaxSim sum) or ``"mean"`` (÷ query vectors, in [-1, 1]).
        :param meta_fields_to_embed: Meta keys whose values are encoded before the content.
        :param embedding_separator: Joins those meta values and the content.
        :param batch_size: Documents per forward pass.
        :param cache_max_bytes: Size bound of the document-vector cache (LRU); 0 disables it.
        """
        check_choice(dtype, "dtype", DTYPE_CHOICES)
        check_choice(quantize, "quantize", QUANTIZE_CHOICES)
        check_choice(backend, "backend", BACKEND_CHOICES)
        check_choice(score_mode, "score_mode", SCORE_MODES)
        if not isinstance(embedding_separator, str):
            msg = f"embedding_separator must be a str, got {embedding_separator!r}"
            raise TypeError(msg)
        if (
            isinstance(cache_max_bytes, bool)
            or not isinstance(cache_max_bytes, int)
            or cache_max_bytes < 0
        ):
            msg = f"cache_max_bytes must be an int >= 0, got {cache_max_bytes!r}"
            raise ValueError(msg)
        self.model = model_to_str(model)
        self.device = check_device(device)
        self.dtype = dtype
        self.quantize = quantize
        self.backend = backend
        self.top_k = check_top_k(top_k)
        self.score_threshold = check_threshold(score_threshold)
        self.score_mode = score_mode
        self.meta_fields_to_embed = check_meta_fields(meta_fields_to_embed)
        self.embedding_separator = embedding_separator
        self.batch_size = check_batch_size(batch_size)
        self.cache_max_bytes = cache_max_bytes
        self._encoder: ColBERTEncoder | None = None
        self._cache: EmbeddingCache | None = None
        self._lock = threading.Lock()

    def _get_telemetry_data(self) -> dict[str, Any]:
        return {"model": self.model}

    def to_dict(self) -> dict[str, Any]:
        """Serialize the configuration (never the weights or the cache)."""
        return default_to_dict(
            self,
            model=self.model,
            device=device_to_dict(self.device),
            dtype=self.dtype,
            quantize=self.quantize,
            backend=self.backend,
            top_k=self.top_k,
            score_threshold=self.score_threshold,
            score_mode=self.score_mode,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
            batch_size=self.batch_size,
            cache_max_bytes=self.cache_max_bytes,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LFMColBERTRanker:
        """Rebuild from ``to_dict`` output (``device`` is restored as a ``ComponentDevice``)."""
        return default_from_dict(cls, data)

    def warm_up(self) -> None:
        """Load (or reuse) the shared encoder and create the cache; idempotent."""
        with self._lock:
            if self._encoder is None:
                self._encoder = colbert_encoder(
                    self.model, self.device, self.dtype, self.quantize, self.backend
                )
            if self._cache is None and self.cache_max_bytes > 0:
                self._cache = EmbeddingCache(max_bytes=self.cache_max_bytes)

    @property
    def cache(self) -> EmbeddingCache | None:
        """The document-vector cache (``None`` before warm-up or when disabled); see ``stats()``."""
        return self._cache

    @component.output_types(documents=list[Document])
    def run(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> dict[str, list[Document]]:
        """Score ``documents`` against ``query`` and return the best, sorted by score.

        :param query: The query text.
        :param documents: Candidate Documents (e.g. from a BM25 retriever).
        :param top_k: Maximum number of documents returned; ``None`` uses the init value.
        :param score_threshold: Minimum score; ``None`` uses the init value.
        :returns: ``{"documents": [...]}``: copies with ``score`` set, best first.
        """
        check_query(query, "LFMColBERTRanker")
        docs = check_documents(documents, "LFMColBERTRanker")
        k = self.top_k if top_k is None else check_top_k(top_k)
        threshold = (
            self.score_threshold if score_threshold is None else check_threshold(score_threshold)
        )
        docs = deduplicate_by_id(docs)
        keep, _ = split_missing_content(docs, logger, "LFMColBERTRanker")
        if not keep:
            return {"documents": []}
        candidates = [docs[i] for i in keep]
        texts = [
            text_to_encode(d, self.meta_fields_to_embed, self.embedding_separator)
            for d in candidates
        ]
        self.warm_up()
        encoder = self._encoder
        assert encoder is not None
        ranked = rerank(
            encoder,
            query,
            texts,
            top_k=k,
            cache=self._cache,
            score=self.score_mode,
            batch_size=self.batch_size,
            show_progress=False,
        )
        out = [
            copy_with(candidates[r.index], score=float(r.score))
            for r in ranked
            if threshold is None or r.score >= threshold
        ]
        return {"documents": out}

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> dict[str, list[Document]]:
        """``run`` on a bounded worker thread, so the event loop is never blocked."""
        return await run_in_worker(
            self.run, query, documents, top_k=top_k, score_threshold=score_threshold
        )
