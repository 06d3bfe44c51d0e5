"""``LFMColBERTRetriever``: exact ColBERT (MaxSim) retrieval from an ``LFMColBERTDocumentStore``."""

from __future__ import annotations

import logging
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.document_stores.types import FilterPolicy, apply_filter_policy
from haystack_integrations.common.lfm.utils import (
    check_choice,
    check_query,
    check_top_k,
)
from haystack_integrations.document_stores.lfm.document_store import LFMColBERTDocumentStore
from haystack_integrations.document_stores.lfm.filters import validate_filters

from lfm_retrievers.seam import SCORE_MODES, run_in_worker

logger = logging.getLogger(__name__)


@component
class LFMColBERTRetriever:
    """Retrieves the best Documents for a query by exact MaxSim over a persistent ColBERT index.

    Scores (``Document.score``) follow ``score_mode``: ``"raw"`` is the MaxSim sum over the
    query vectors (32 for LFM2.5-ColBERT, so in [-32, 32]); ``"mean"`` divides it by the
    number of query vectors (in [-1, 1]). The order is the same.

    ``filters`` use Haystack's filter syntax (comparisons ``==``, ``!=``, ``>``, ``>=``,
    ``<``, ``<=``, ``in``, ``not in`` on ``meta.*`` fields, combined with ``AND``, ``OR``,
    ``NOT``); anything else raises a ``ValueError`` (also a Haystack ``FilterError``).

    Usage example:

    ```python
    from haystack_integrations.components.retrievers.lfm import (
        LFMColBERTDocumentStore,
        LFMColBERTRetriever,
    )

    store = LFMColBERTDocumentStore(index_path="faq-index")  # filled by a DocumentWriter
    retriever = LFMColBERTRetriever(document_store=store, top_k=5)
    retriever.run(
        query="how long does delivery take?",
        filters={"operator": "OR", "conditions": [
            {"field": "meta.lang", "operator": "==", "value": "en"},
            {"field": "meta.lang", "operator": "==", "value": "de"},
        ]},
    )
    ```
    """

    def __init__(
        self,
        document_store: LFMColBERTDocumentStore,
        *,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        score_mode: str = "raw",
        filter_policy: FilterPolicy = FilterPolicy.REPLACE,
    ) -> None:
        """Bind the retriever to a store; nothing is loaded until warm-up or the first run.

        :param document_store: The ``LFMColBERTDocumentStore`` to search.
        :param filters: Default filters (Haystack syntax).
        :param top_k: Default number of documents returned.
        :param score_mode: ``"raw"`` (MaxSim sum) or ``"mean"`` (÷ query vectors, in [-1, 1]).
        :param filter_policy: ``REPLACE`` (runtime filters replace the init filters) or
            ``MERGE`` (both apply).
        """
        if not isinstance(document_store, LFMColBERTDocumentStore):
            msg = (
                "document_store must be an LFMColBERTDocumentStore, "
                f"got {type(document_store).__name__}"
            )
            raise TypeError(msg)
        validate_filters(filters)
        check_choice(score_mode, "score_mode", SCORE_MODES)
        self.document_store = document_store
        self.filters = filters
        self.top_k = check_top_k(top_k)
        self.score_mode = score_mode
        self.filter_policy = (
            filter_policy
            if isinstance(filter_policy, FilterPolicy)
            else FilterPolicy.from_str(filter_policy)
        )

    def _get_telemetry_data(self) -> dict[str, Any]:
        return {"document_store": type(self.document_store).__name__}

    def to_dict(self) -> dict[str, Any]:
        """Serialize; the nested store carries the model and the index location."""
        return default_to_dict(
            self,
            document_store=self.document_store.to_dict(),
            filters=self.filters,
            top_k=self.top_k,
            score_mode=self.score_mode,
            filter_policy=self.filter_policy.value,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LFMColBERTRetriever:
        """Rebuild from ``to_dict`` output (the store reopens its index on first use)."""
        init = dict(data.get("init_parameters", {}))
        if "filter_policy" in init:
            init["filter_policy"] = FilterPolicy.from_str(init["filter_policy"])
        if isinstance(init.get("document_store"), dict):
            init["document_store"] = LFMColBERTDocumentStore.from_dict(init["document_store"])
        return default_from_dict(cls, {**data, "init_parameters": init})

    def warm_up(self) -> None:
        """Load the shared encoder and open the index now; idempotent."""
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
        check_query(query, "LFMColBERTRetriever")
        k = self.top_k if top_k is None else check_top_k(top_k)
        validate_filters(filters)
        merged = apply_filter_policy(self.filter_policy, self.filters, filters)
        docs = self.document_store.search(
            query, top_k=k, filters=merged, score_mode=self.score_mode
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
