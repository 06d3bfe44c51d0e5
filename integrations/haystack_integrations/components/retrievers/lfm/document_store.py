"""Old import path of :class:`LFMColBERTDocumentStore`, kept so saved pipelines still load.

The store moved to ``haystack_integrations.document_stores.lfm`` (where Haystack keeps every
document store). Pipelines serialized before the move name this module in their ``type``
field; importing it gives the same class.
"""

from haystack_integrations.document_stores.lfm.document_store import LFMColBERTDocumentStore

__all__ = ["LFMColBERTDocumentStore"]
