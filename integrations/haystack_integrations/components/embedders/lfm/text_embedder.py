"""``LFMTextEmbedder``: one query string to an LFM2.5-Embedding vector (query prompt applied)."""

from __future__ import annotations

import logging
import os
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.utils import ComponentDevice
from haystack_integrations.common.lfm.utils import (
    BACKEND_CHOICES,
    DEFAULT_EMBEDDING_MODEL,
    DTYPE_CHOICES,
    QUANTIZE_CHOICES,
    check_choice,
    check_device,
    dense_encoder,
    device_to_dict,
    model_to_str,
)

from lfm_retrievers import DenseEncoder
from lfm_retrievers.seam import run_in_worker

logger = logging.getLogger(__name__)


@component
class LFMTextEmbedder:
    """Embeds a query with LFM2.5-Embedding, using the model's query prompt (``"query: "``).

    Pair it with :class:`LFMDocumentEmbedder`, which applies the document prompt; the two
    prompts are what make the model asymmetric, and stock embedders drop them.

    Usage example:

    ```python
    from haystack_integrations.components.embedders.lfm import LFMTextEmbedder

    embedder = LFMTextEmbedder()  # or LFMTextEmbedder(model="./LFM2.5-Embedding-350M")
    vector = embedder.run(text="how do I reset my password?")["embedding"]
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
        query_prompt: str | None = None,
    ) -> None:
        """Store the configuration; the weights load in ``warm_up`` (or on the first run).

        :param model: Hugging Face hub id, known short name or local checkpoint folder.
        :param device: A single ``ComponentDevice``; ``None`` picks cuda > mps > xpu > cpu
            when the model loads (not at construction, so serialized pipelines stay portable).
        :param dtype: ``"auto"`` (float32 on CPU, bfloat16 on capable GPUs), ``"float32"``,
            ``"bfloat16"`` or ``"float16"``.
        :param quantize: ``None`` or ``"int8"`` (dynamic quantization, CPU float32 only).
        :param backend: ``"torch"``, or ``"onnx"`` (ONNX Runtime; the model is exported
            once and cached; needs ``pip install 'lfm-retrievers[onnx]'``).
        :param query_prompt: Prefix for the text; ``None`` uses the checkpoint's query prompt
            (``"query: "`` for LFM2.5), ``""`` sends the text as is.
        """
        check_choice(dtype, "dtype", DTYPE_CHOICES)
        check_choice(quantize, "quantize", QUANTIZE_CHOICES)
        check_choice(backend, "backend", BACKEND_CHOICES)
        if query_prompt is not None and not isinstance(query_prompt, str):
            msg = f"query_prompt must be a str or None, got {query_prompt!r}"
            raise TypeError(msg)
        self.model = model_to_str(model)
        self.device = check_device(device)
        self.dtype = dtype
        self.quantize = quantize
        self.backend = backend
        self.query_prompt = query_prompt
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
            query_prompt=self.query_prompt,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LFMTextEmbedder:
        """Rebuild from ``to_dict`` output (``device`` is restored as a ``ComponentDevice``)."""
        return default_from_dict(cls, data)

    def warm_up(self) -> None:
        """Load (or reuse) the shared encoder; calling it again does nothing."""
        if self._encoder is None:
            self._encoder = dense_encoder(
                self.model, self.device, self.dtype, self.quantize, self.backend
            )

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, list[float]]:
        """Embed one query string.

        :param text: The query. A list raises ``TypeError``: use ``LFMDocumentEmbedder``.
        :returns: ``{"embedding": [...]}``, an L2-normalised vector of Python floats.
        """
        if not isinstance(text, str):
            msg = (
                f"LFMTextEmbedder expects a single str, got {type(text).__name__}. "
                "To embed a list of documents, use LFMDocumentEmbedder."
            )
            raise TypeError(msg)
        self.warm_up()
        assert self._encoder is not None
        vector = self._encoder.encode_queries([text], prompt=self.query_prompt)[0]
        return {"embedding": vector.tolist()}

    @component.output_types(embedding=list[float])
    async def run_async(self, text: str) -> dict[str, list[float]]:
        """``run`` on a bounded worker thread, so the event loop is never blocked."""
        return await run_in_worker(self.run, text)
