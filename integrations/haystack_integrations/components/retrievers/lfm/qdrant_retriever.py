"""``LFMQdrantRetriever``: ColBERT retrieval from an ``LFMQdrantDocumentStore`` (Qdrant)."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.document_stores.types import FilterPolicy, apply_filter_policy
from haystack_integrations.common.lfm.utils import check_choice, check_query, check_top_k
from haystack_integrations.document_stores.lfm.qdrant_document_store import (
    LFMQdrantDocumentStore,
)
from haystack_integrations.document_stores.lfm.qdrant_filters import to_qdrant_filter

from lfm_retrievers import QdrantIndex
from lfm_retrievers.seam import SCORE_MODES, SEARCH_MODES, run_in_worker


@component
class LFMQdrantRetriever:
    """Retrieves Documents from a Qdrant collection by ColBERT MaxSim, computed on the server.

    ``mode`` picks the first stage: ``"colbert"`` (exact MaxSim over the collection),
    ``"dense"``, ``"bm25"``, or ``"dense+colbert"`` / ``"bm25+colbert"`` / ``"hybrid"``
    (``candidates`` prefetched by dense and/or BM25, reranked by MaxSim in the same request).
    ``None`` uses hybrid when the store has a dense model, else bm25+colbert. ``filters`` use
    Haystack's syntax and are evaluated by Qdrant.

    Usage example:

    ```python
    from haystack_integrations.components.retrievers.lfm import LFMQdrantRetriever
    from haystack_integrations.document_stores.lfm import LFMQdrantDocumentStore

    store = LFMQdrantDocumentStore(url="http://localhost:6333", index="faq")
    retriever = LFMQdrantRetriever(document_store=store, top_k=5, mode="hybrid")
    retriever.run(query="how long does delivery take?")
    ```
    """

    def __init__(
        self,
        document_store: LFMQdrantDocumentStore,
        *,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        mode: str | None = None,
        candidates: int = 100,
        score_mode: str = "raw",
        filter_policy: FilterPolicy = FilterPolicy.REPLACE,
    ) -> None:
        """Bind the retriever to a store; nothing connects until warm-up or the first run.

        :param document_store: The ``LFMQdrantDocumentStore`` to search.
        :param filters: Default filters (Haystack syntax).
        :param top_k: Default number of documents returned.
        :param mode: Search mode (see the class docstring); ``None``: the store's default.
        :param candidates: Points each prefetch hands to the MaxSim rerank.
        :param score_mode: ``"raw"`` (MaxSim sum) or ``"mean"`` (÷ query vectors).
        :param filter_policy: ``REPLACE`` (runtime filters replace the init filters) or
            ``MERGE`` (both apply).
        """
        if not isinstance(document_store, LFMQdrantDocumentStore):
            msg = (
                "document_store must be an LFMQdrantDocumentStore, "
                f"got {type(document_store).__name__}"
            )
            raise TypeError(msg)
        to_qdrant_filter(filters, QdrantIndex.payload_key)  # validates
        check_choice(score_mode, "score_mode", SCORE_MODES)
        if mode is not None:
            check_choice(mode, "mode", SEARCH_MODES)
        self.document_store = document_store
        self.filters = filters
        self.top_k = check_top_k(top_k)
        self.mode = mode
        self.candidates = check_top_k(candidates, "candidates")
        self.score_mode = score_mode
        self.filter_policy = (
            filter_policy
            if isinstance(filter_policy, FilterPolicy)
            else FilterPolicy.from_str(filter_policy)
        )

    def _get_telemetry_data(self) -> dict[str, Any]:
        return {"document_store": type(self.document_store).__name__}

    def to_dict(self) -> dict[str, Any]:
        """Serialize; the nested store carries the location, the collection and the models."""
        return default_to_dict(
            self,
            document_store=self.document_store.to_dict(),
            filters=self.filters,
            top_k=self.top_k,
            mode=self.mode,
            candidates=self.candidates,
            score_mode=self.score_mode,
            filter_policy=self.filter_policy.value,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LFMQdrantRetriever:
        """Rebuild from ``to_dict`` output."""
        init = dict(data.get("init_parameters", {}))
        if "filter_policy" in init:
            init["filter_policy"] = FilterPolicy.from_str(init["filter_policy"])
        if isinstance(init.get("document_store"), dict):
            init["document_store"] = LFMQdrantDocumentStore.from_dict(init["document_store"])
        return default_from_dict(cls, {**data, "init_parameters": init})

    def warm_up(self) -> None:
        """Connect, load the models and open the collection now; idempotent."""
        self.document_store.warm_up()

    @component.output_types(documents=list[Document])
    def run(
        self,
        query: str,
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
    ) -> dict[str, list[Document]]:
        """Search the store.

        :param query: The query text.
        :param filters: Filters for this run, combined with the init filters per
            ``filter_policy``.
        :param top_k: Maximum number of documents; ``None`` uses the init value.
        :returns: ``{"documents": [...]}`` with ``score`` set, best first.
        """
        check_query(query, "LFMQdrantRetriever")
        k = self.top_k if top_k is None else check_top_k(top_k)
        merged = apply_filter_policy(self.filter_policy, self.filters, filters)
        docs = self.document_store.search(
            query,
            top_k=k,
            filters=merged,
            mode=self.mode,
            candidates=self.candidates,
            score_mode=self.score_mode,
        )
        return {"documents": docs}

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        query: str,
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
    ) -> dict[str, list[Document]]:
        """``run`` on a bounded worker thread, so the event loop is never blocked."""
        return await run_in_worker(self.run, query, filters=filters, top_k=top_k)
