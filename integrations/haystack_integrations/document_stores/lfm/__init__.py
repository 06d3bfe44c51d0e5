"""Haystack document stores over LFM2.5-ColBERT.

A persistent in-process ColBERT index, and a Qdrant collection
(``pip install 'lfm-retrievers[haystack,qdrant]'``).
"""

from lfm_retrievers.seam import require_extra as require

require("haystack", "haystack", "haystack_integrations.document_stores.lfm")

from .document_store import LFMColBERTDocumentStore  # noqa: E402
from .filters import UnsupportedFilterError  # noqa: E402
from .qdrant_document_store import LFMQdrantDocumentStore  # noqa: E402

__all__ = ["LFMColBERTDocumentStore", "LFMQdrantDocumentStore", "UnsupportedFilterError"]
