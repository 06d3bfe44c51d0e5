"""``LFMColBERTDocumentStore``: a Haystack DocumentStore over a persistent ``ColBERTIndex``.

Why a DocumentStore and not a retriever that owns a corpus: it is the Haystack idiom. A
``DocumentWriter`` fills it in an ordinary indexing pipeline, ``filter_documents`` /
``count_documents`` / ``delete_documents`` work as for any other store, and the retriever's
``to_dict`` nests the store's, which carries the index location, so a saved pipeline reopens
the same index.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from haystack import Document, default_from_dict, default_to_dict
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.utils import ComponentDevice
from haystack.utils.filters import document_matches_filter
from haystack_integrations.common.lfm.utils import (
    BACKEND_CHOICES,
    DEFAULT_COLBERT_MODEL,
    DTYPE_CHOICES,
    QUANTIZE_CHOICES,
    check_batch_size,
    check_choice,
    check_device,
    check_query,
    check_top_k,
    colbert_encoder,
    device_to_dict,
    model_to_str,
    split_missing_content,
)

from lfm_retrievers import ColBERTIndex
from lfm_retrievers.seam import SCORE_MODES, check_id_list, check_str, run_in_worker

from .filters import to_core_filter, validate_filters

logger = logging.getLogger(__name__)

#: Where this class lived before it moved here (pipelines saved then name it in ``type``).
_OLD_TYPE = "haystack_integrations.components.retrievers.lfm.document_store.LFMColBERTDocumentStore"


class LFMColBERTDocumentStore:
    """Documents with their ColBERT token vectors, searched exactly by MaxSim.

    Backed by ``lfm_retrievers.ColBERTIndex``: documents are encoded once when written
    (the model's ``[D]`` marker and skiplist applied) and stored as float16 vectors. With
    ``index_path`` the index is opened from that folder on first use (when it holds a saved
    index) and, with ``autosave``, saved there atomically after every write or delete.

    Stored per document: ``id``, ``content`` and ``meta`` (which must be JSON-serializable).
    ``embedding``, ``sparse_embedding``, ``blob`` and ``score`` are not kept. Documents
    without ``content`` are skipped with a warning naming their ids.

    Filters use Haystack's syntax (see ``filters.py`` in this package).

    Usage example:

    ```python
    from haystack import Document
    from haystack_integrations.components.retrievers.lfm import LFMColBERTDocumentStore

    store = LFMColBERTDocumentStore(index_path="faq-index")
    store.write_documents(
        [Document(content="Returns are free within 30 days.", meta={"lang": "en"})]
    )
    store.search(
        "can I send it back?",
        top_k=3,
        filters={"field": "meta.lang", "operator": "==", "value": "en"},
    )
    ```
    """

    def __init__(
        self,
        index_path: str | os.PathLike[str] | None = None,
        *,
        model: str | os.PathLike[str] = DEFAULT_COLBERT_MODEL,
        device: ComponentDevice | None = None,
        dtype: str = "auto",
        quantize: str | None = None,
        backend: str = "torch",
        batch_size: int = 32,
        autosave: bool = True,
    ) -> None:
        """Store the configuration; the model and the index open on first use.

        :param index_path: Folder of the persisted index; ``None`` keeps it in memory only.
        :param model: Hugging Face hub id, known short name or local ColBERT checkpoint
            folder. A saved index must have been built with this model (checked on open).
        :param device: A single ``ComponentDevice``; ``None`` picks cuda > mps > xpu > cpu.
        :param dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        :param quantize: ``None`` or ``"int8"`` (dynamic quantization, CPU float32 only).
        :param backend: ``"torch"``, or ``"onnx"`` (ONNX Runtime; the model is exported
            once and cached; needs ``pip install 'lfm-retrievers[onnx]'``).
        :param batch_size: Documents per forward pass when writing.
        :param autosave: Save to ``index_path`` after every write and delete. Each save
            appends what changed (crash-safe, see ``ColBERTIndex.save``), so a write costs
            about its own size. With ``False``, call :meth:`save` yourself. One process
            writes a folder at a time: a second one gets ``ConcurrentWriteError``.
        """
        check_choice(dtype, "dtype", DTYPE_CHOICES)
        check_choice(quantize, "quantize", QUANTIZE_CHOICES)
        check_choice(backend, "backend", BACKEND_CHOICES)
        if index_path is not None and not isinstance(index_path, str | os.PathLike):
            msg = f"index_path must be a folder path or None, got {index_path!r}"
            raise TypeError(msg)
        self.index_path = None if index_path is None else os.fspath(index_path)
        self.model = model_to_str(model)
        self.device = check_device(device)
        self.dtype = dtype
        self.quantize = quantize
        self.backend = backend
        self.batch_size = check_batch_size(batch_size)
        self.autosave = bool(autosave)
        self._index: ColBERTIndex | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        """Serialize the configuration, including where the index lives (never the vectors)."""
        return default_to_dict(
            self,
            index_path=self.index_path,
            model=self.model,
            device=device_to_dict(self.device),
            dtype=self.dtype,
            quantize=self.quantize,
            backend=self.backend,
            batch_size=self.batch_size,
            autosave=self.autosave,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LFMColBERTDocumentStore:
        """Rebuild from ``to_dict`` output; the index reopens from ``index_path`` on first use.

        Pipelines saved before the store moved to ``document_stores.lfm`` name its old module;
        that type is accepted as this class.
        """
        if data.get("type") == _OLD_TYPE:
            data = {**data, "type": f"{cls.__module__}.{cls.__name__}"}
        return default_from_dict(cls, data)

    # ------------------------------------------------------------------ the index
    def warm_up(self) -> None:
        """Load the shared encoder and open (or create) the index now; idempotent."""
        _ = self.index

    @property
    def index(self) -> ColBERTIndex:
        """The underlying ``ColBERTIndex`` (opened or created on first access)."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    encoder = colbert_encoder(
                        self.model, self.device, self.dtype, self.quantize, self.backend
                    )
                    if self.index_path is None:
                        self._index = ColBERTIndex(encoder)
                    else:  # recovers an interrupted save; never mistakes missing for empty
                        self._index = ColBERTIndex.open(self.index_path, encoder)
                        logger.info(
                            "opened ColBERT index of %d documents at %s",
                            len(self._index),
                            self.index_path,
                        )
        return self._index

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Save the index atomically to ``path`` (default: ``index_path``)."""
        target = path if path is not None else self.index_path
        if target is None:
            msg = "no path to save to: pass save(path) or create the store with index_path"
            raise ValueError(msg)
        with self._lock:
            self.index.save(target)

    def _autosave(self) -> None:
        if self.autosave and self.index_path is not None:
            self.index.save(self.index_path)

    # ------------------------------------------------------------------ DocumentStore protocol
    def count_documents(self) -> int:
        """Number of stored documents."""
        return len(self.index)

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """Stored documents matching ``filters`` (Haystack syntax), in insertion order."""
        validate_filters(filters)
        index = self.index
        with self._lock:
            docs = []
            for doc_id in index.ids:
                text, meta = index.get(doc_id)
                docs.append(Document(id=doc_id, content=text, meta=meta))
        if filters:
            docs = [d for d in docs if document_matches_filter(filters, d)]
        return docs

    def write_documents(
        self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE
    ) -> int:
        """Encode and add ``documents``; returns how many were written.

        ``DuplicatePolicy.NONE`` behaves as ``FAIL``: an id already stored (or repeated in
        ``documents``) raises ``DuplicateDocumentError`` and nothing is written. ``SKIP``
        keeps the stored document; ``OVERWRITE`` replaces it (the last duplicate wins).
        """
        # Haystack's DocumentStore protocol (and its standard tests) want ValueError here.
        if not isinstance(documents, list | tuple) or not all(
            isinstance(d, Document) for d in documents
        ):
            msg = (
                "documents must be a list of haystack.Document, got "
                f"{type(documents).__name__}: {documents!r:.80}"
            )
            raise ValueError(msg)
        for i, doc in enumerate(documents):  # before anything is deleted or encoded
            if doc.content is not None:
                check_str(doc.content, f"documents[{i}].content (id {doc.id!r})")
            check_str(doc.id, f"documents[{i}].id")
        if not isinstance(policy, DuplicatePolicy):
            msg = f"policy must be a DuplicatePolicy, got {policy!r}"
            raise ValueError(msg)
        if policy == DuplicatePolicy.NONE:
            policy = DuplicatePolicy.FAIL
        keep, _ = split_missing_content(documents, logger, "LFMColBERTDocumentStore")
        with self._lock:
            index = self.index
            batch: dict[str, Document] = {}
            replaced: list[str] = []
            for i in keep:
                doc = documents[i]
                seen = doc.id in batch or doc.id in index
                if seen and policy == DuplicatePolicy.FAIL:
                    msg = (
                        f"ID '{doc.id}' already exists in the document store "
                        f"(policy {policy.name}); nothing written"
                    )
                    raise DuplicateDocumentError(msg)
                if seen and policy == DuplicatePolicy.SKIP:
                    continue
                if doc.id in index and doc.id not in replaced:
                    replaced.append(doc.id)
                batch.pop(doc.id, None)
                batch[doc.id] = doc
            if not batch:
                return 0
            docs = list(batch.values())
            texts = [d.content or "" for d in docs]
            metadata = [d.meta for d in docs]
            # Encoded first; the old versions go only when every new one is ready.
            index.add(
                texts,
                [d.id for d in docs],
                metadata,
                replace=bool(replaced),
                batch_size=self.batch_size,
            )
            self._autosave()
        return len(docs)

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete documents by id; ids that are not stored are ignored."""
        document_ids = check_id_list(document_ids, "document_ids")
        with self._lock:
            index = self.index
            known = [i for i in dict.fromkeys(document_ids) if i in index]
            if known:
                index.delete(known)
                self._autosave()

    async def count_documents_async(self) -> int:
        """``count_documents`` on a worker thread."""
        return await run_in_worker(self.count_documents)

    async def filter_documents_async(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """``filter_documents`` on a worker thread."""
        return await run_in_worker(self.filter_documents, filters)

    async def write_documents_async(
        self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE
    ) -> int:
        """``write_documents`` on a worker thread (encoding never blocks the event loop)."""
        return await run_in_worker(self.write_documents, documents, policy)

    async def delete_documents_async(self, document_ids: list[str]) -> None:
        """``delete_documents`` on a worker thread."""
        await run_in_worker(self.delete_documents, document_ids)

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: str,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        score_mode: str = "raw",
    ) -> list[Document]:
        """The ``top_k`` stored documents with the highest MaxSim for ``query``, best first.

        ``filters`` (Haystack syntax) restrict the search to the matching documents;
        ``score_mode`` is ``"raw"`` (MaxSim sum) or ``"mean"`` (÷ query vectors).
        """
        check_query(query, "LFMColBERTDocumentStore.search")
        top_k = check_top_k(top_k)
        check_choice(score_mode, "score_mode", SCORE_MODES)
        validate_filters(filters)
        flt: dict[str, Any] | None = None
        if filters:
            core = to_core_filter(filters)
            if core is not None:
                flt = {"metadata": core}
            else:
                ids = [d.id for d in self.filter_documents(filters)]
                if not ids:
                    return []
                flt = {"ids": ids}
        hits = self.index.search(query, k=top_k, filter=flt, score=score_mode)
        return [Document(id=h.id, content=h.text, meta=h.metadata, score=h.score) for h in hits]
