"""``LFMEmbedding``: LFM2.5-Embedding as a LlamaIndex ``BaseEmbedding``.

Queries get the checkpoint's query prompt and texts/nodes its document prompt on every path
(sync, async, single, batched), which the stock HuggingFace wrapper loses for this model.
"""

from __future__ import annotations

import os
from typing import Any

from lfm_retrievers import get_dense_encoder
from lfm_retrievers.seam import check_str, check_texts, run_in_worker
from lfm_retrievers.seam import require_extra as require

require("llama-index", "llama_index.core", "llama_index.embeddings.lfm")

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding  # noqa: E402
from llama_index.core.bridge.pydantic import Field, PrivateAttr, field_validator  # noqa: E402

from lfm_retrievers import DenseEncoder  # noqa: E402

DEFAULT_EMBEDDING_MODEL = "LiquidAI/LFM2.5-Embedding-350M"


class LFMEmbedding(BaseEmbedding):
    """Dense LFM2.5 embeddings with the model's own query/document prompts.

    The weights are loaded on first use (or ``warm_up()``) through
    ``lfm_retrievers.get_encoder``, so every adapter in the process shares one copy.

    Example:
        >>> from llama_index.core import Settings
        >>> from llama_index.embeddings.lfm import LFMEmbedding
        >>> Settings.embed_model = LFMEmbedding()  # or LFMEmbedding(model_name="./local-folder")
    """

    model_name: str = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        description="Hugging Face hub id, known short name or local checkpoint folder.",
    )
    embed_batch_size: int = Field(default=32, gt=0, le=2048, description="Texts per forward pass.")
    device: str = Field(
        default="auto", description="'auto' (cuda > mps > xpu > cpu), or a torch device string."
    )
    dtype: str = Field(default="auto", description="'auto', 'float32', 'bfloat16' or 'float16'.")
    quantize: str | None = Field(
        default=None, description="None, or 'int8' (dynamic quantization, CPU float32 only)."
    )
    backend: str = Field(
        default="torch",
        description="'torch', or 'onnx' (ONNX Runtime; exported once per model and cached).",
    )
    query_prompt: str | None = Field(
        default=None,
        description="Prefix for queries; None uses the checkpoint's ('query: ' for LFM2.5).",
    )
    document_prompt: str | None = Field(
        default=None,
        description="Prefix for texts and nodes; None uses the checkpoint's ('document: ').",
    )

    _encoder: DenseEncoder | None = PrivateAttr(default=None)
    _encoder_key: tuple[Any, ...] | None = PrivateAttr(default=None)

    @field_validator("model_name", mode="before")
    @classmethod
    def _path_to_str(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("device", "dtype", mode="before")
    @classmethod
    def _none_is_auto(cls, value: Any) -> Any:
        return "auto" if value is None else value

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex records for this class when serializing it."""
        return "LFMEmbedding"

    @property
    def encoder(self) -> DenseEncoder:
        """The shared dense encoder (loaded on first access)."""
        key = (self.model_name, self.device, self.dtype, self.quantize, self.backend)
        if self._encoder is None or self._encoder_key != key:
            enc = get_dense_encoder(
                self.model_name,
                device=self.device,
                dtype=self.dtype,
                quantize=self.quantize,
                backend=self.backend,
            )
            self._encoder = enc
            self._encoder_key = key
        return self._encoder

    def warm_up(self) -> None:
        """Load the weights now instead of on the first embedding call."""
        _ = self.encoder

    def _queries(self, texts: list[str]) -> list[Embedding]:
        vectors = self.encoder.encode_queries(
            texts, prompt=self.query_prompt, batch_size=self.embed_batch_size
        )
        return vectors.tolist()  # type: ignore[no-any-return]

    def _documents(self, texts: list[str]) -> list[Embedding]:
        vectors = self.encoder.encode_documents(
            texts, prompt=self.document_prompt, batch_size=self.embed_batch_size
        )
        return vectors.tolist()  # type: ignore[no-any-return]

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        """Embed a list of texts; a bare str is a TypeError (not one embedding per letter)."""
        checked = check_texts(texts, "texts")
        return super().get_text_embedding_batch(checked, show_progress=show_progress, **kwargs)

    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        """Async :meth:`get_text_embedding_batch`, with the same checks."""
        checked = check_texts(texts, "texts")
        return await super().aget_text_embedding_batch(
            checked, show_progress=show_progress, **kwargs
        )

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._queries([check_str(query, "query")])[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._documents([check_str(text, "text")])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._documents(list(texts))

    # Async: the forward pass runs in a worker thread, so the event loop stays free.
    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await run_in_worker(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await run_in_worker(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await run_in_worker(self._get_text_embeddings, texts)
