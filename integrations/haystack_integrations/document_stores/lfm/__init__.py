"""Haystack document stores over LFM2.5-ColBERT: a persistent in-process ColBERT index."""

from lfm_retrievers.seam import require_extra as require

require("haystack", "haystack", "haystack_integrations.document_stores.lfm")

from .document_store import LFMColBERTDocumentStore  # noqa: E402
from .filters import UnsupportedFilterError  # noqa: E402

__all__ = ["LFMColBERTDocumentStore", "UnsupportedFilterError"]
