"""``LFMDocumentEmbedder``: Haystack Documents to LFM2.5-Embedding vectors (document prompt)."""

from __future__ import annotations

import logging
import os
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import ComponentDevice
from haystack_integrations.common.lfm.utils import (
    BACKEND_CHOICES,
    DEFAULT_EMBEDDING_MODEL,
    DTYPE_CHOICES,
    QUANTIZE_CHOICES,
    check_batch_size,
    check_choice,
    check_device,
    check_documents,
    check_meta_fields,
    copy_with,
    dense_encoder,
    device_to_dict,
    model_to_str,
    split_missing_content,
    text_to_encode,
)

from lfm_retrievers import DenseEncoder
from lfm_retrievers.seam import run_in_worker

logger = logging.getLogger(__name__)


@component
class LFMDocumentEmbedder:
    """Embeds Documents with LFM2.5-Embedding, using the model's document prompt.

    Returns copies of the input Documents with ``embedding`` set; the inputs are never
    changed. Documents whose ``content`` is ``None`` are passed through without an embedding
    (a warning names their ids).

    Usage example:

    ```python
    from haystack import Document, Pipeline
    from haystack.components.writers import DocumentWriter
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack_integrations.components.embedders.lfm import LFMDocumentEmbedder

    store = InMemoryDocumentStore()
    indexing = Pipeline()
    indexing.add_component("embedder", LFMDocumentEmbedder(meta_fields_to_embed=["title"]))
    indexing.add_component("writer", DocumentWriter(document_store=store))
    indexing.connect("embedder.documents", "writer.documents")
    indexing.run({"embedder": {"documents": [Document(content="...", meta={"title": "..."})]}})
    ```
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = DEFAULT_EMBEDDING_MODEL,
        *,
        device: ComponentDevice | None = None,
        dtype: str = "auto",
        quantize: str | None = None,
        backend: str = "torch",
        document_prompt: str | None = None,
        batch_size: int = 32,
        progress_bar: bool = True,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
    ) -> None:
        """Store the configuration; the weights load in ``warm_up`` (or on the first run).

        :param model: Hugging Face hub id, known short name or local checkpoint folder.
        :param device: A single ``ComponentDevice``; ``None`` picks cuda > mps > xpu > cpu
            when the model loads.
        :param dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        :param quantize: ``None`` or ``"int8"`` (dynamic quantization, CPU float32 only).
        :param backend: ``"torch"``, or ``"onnx"`` (ONNX Runtime; the model is exported
            once and cached; needs ``pip install 'lfm-retrievers[onnx]'``).
        :param document_prompt: Prefix for every text; ``None`` uses the checkpoint's
            document prompt (``"document: "`` for LFM2.5), ``""`` sends the text as is.
        :param batch_size: Texts per forward pass.
        :param progress_bar: Show a progress bar on long encodes (``False``: never).
        :param meta_fields_to_embed: Meta keys whose values are embedded before the content.
        :param embedding_separator: Joins those meta values and the content.
        """
        check_choice(dtype, "dtype", DTYPE_CHOICES)
        check_choice(quantize, "quantize", QUANTIZE_CHOICES)
        check_choice(backend, "backend", BACKEND_CHOICES)
        if document_prompt is not None and not isinstance(document_prompt, str):
            msg = f"document_prompt must be a str or None, got {document_prompt!r}"
            raise TypeError(msg)
        if not isinstance(embedding_separator, str):
            msg = f"embedding_separator must be a str, got {embedding_separator!r}"
            raise TypeError(msg)
        self.model = model_to_str(model)
        self.device = check_device(device)
        self.dtype = dtype
        self.quantize = quantize
        self.backend = backend
        self.document_prompt = document_prompt
        self.batch_size = check_batch_size(batch_size)
        self.progress_bar = bool(progress_bar)
        self.meta_fields_to_embed = check_meta_fields(meta_fields_to_embed)
        self.embedding_separator = embedding_separator
        self._encoder: DenseEncoder | None = None

    def _get_telemetry_data(self) -> dict[str, Any]:
        return {"model": self.model}

    def to_dict(self) -> dict[str, Any]:
        """Serialize the configuration (never the weights)."""
        return default_to_dict(
            self,
            model=self.model,
            device=device_to_dict(self.device),
            dtype=self.dtype,
            quantize=self.quantize,
            backend=self.backend,
            document_prompt=self.document_prompt,
            batch_size=self.batch_size,
            progress_bar=self.progress_bar,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LFMDocumentEmbedder:
        """Rebuild from ``to_dict`` output (``device`` is restored as a ``ComponentDevice``)."""
        return default_from_dict(cls, data)

    def warm_up(self) -> None:
        """Load (or reuse) the shared encoder; calling it again does nothing."""
        if self._encoder is None:
            self._encoder = dense_encoder(
                self.model, self.device, self.dtype, self.quantize, self.backend
            )

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Embed the documents' text (selected meta values first, then the content).

        :param documents: The Documents to embed; anything else raises ``TypeError``.
        :returns: ``{"documents": [...]}``: copies, in input order, with ``embedding`` set.
        """
        docs = check_documents(documents, "LFMDocumentEmbedder")
        if not docs:
            return {"documents": []}
        keep, _ = split_missing_content(docs, logger, "LFMDocumentEmbedder")
        texts = [
            text_to_encode(docs[i], self.meta_fields_to_embed, self.embedding_separator)
            for i in keep
        ]
        out = [copy_with(doc) for doc in docs]
        if texts:
            self.warm_up()
            assert self._encoder is not None
            vectors = self._encoder.encode_documents(
                texts,
                prompt=self.document_prompt,
                batch_size=self.batch_size,
                show_progress=None if self.progress_bar else False,
            )
            for i, vector in zip(keep, vectors.tolist(), strict=True):
                out[i] = copy_with(docs[i], embedding=vector)
        return {"documents": out}

    @component.output_types(documents=list[Document])
    async def run_async(self, documents: list[Document]) -> dict[str, list[Document]]:
        """``run`` on a bounded worker thread, so the event loop is never blocked."""
        return await run_in_worker(self.run, documents)
