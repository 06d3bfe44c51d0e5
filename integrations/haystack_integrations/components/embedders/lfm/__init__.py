"""LFM2.5-Embedding for Haystack: a text (query) embedder and a document embedder."""

from lfm_retrievers.seam import require_extra as require

require("haystack", "haystack", "haystack_integrations.components.embedders.lfm")

from .document_embedder import LFMDocumentEmbedder  # noqa: E402
from .text_embedder import LFMTextEmbedder  # noqa: E402

__all__ = ["LFMDocumentEmbedder", "LFMTextEmbedder"]
