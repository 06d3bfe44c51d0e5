"""``LFMEmbeddings``: LFM2.5-Embedding as a LangChain ``Embeddings``.

Queries get the checkpoint's query prompt and documents its document prompt, on every path
(sync and async). The stock ``HuggingFaceEmbeddings`` wrapper calls plain ``encode()`` and
silently drops both prompts for this model. A dense retriever is this class inside any
LangChain vector store (e.g. ``InMemoryVectorStore``); this package does not duplicate one.
"""

from __future__ import annotations

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from lfm_retrievers import DenseEncoder, get_dense_encoder
from lfm_retrievers.seam import check_texts, run_in_worker

from ._common import (
    DEFAULT_EMBEDDING_MODEL,
    AutoStr,
    Backend,
    ModelPath,
    check_query,
)


class LFMEmbeddings(BaseModel, Embeddings):
    """Dense LFM2.5 embeddings (L2-normalised, cosine = dot product) with the model's prompts.

    The weights are loaded on first use (or ``warm_up()``) through
    ``lfm_retrievers.get_encoder``: every adapter in the process with the same
    (model, device, dtype, quantize) shares one copy.

    Example:
        .. code-block:: python

            from langchain_core.vectorstores import InMemoryVectorStore
            from langchain_lfm import LFMEmbeddings

            embeddings = LFMEmbeddings()  # or LFMEmbeddings(model="./local/checkpoint")
            store = InMemoryVectorStore.from_texts(["..."], embedding=embeddings)
            retriever = store.as_retriever(search_kwargs={"k": 4})
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: ModelPath = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        description="Hugging Face hub id, known short name or local checkpoint folder.",
    )
    device: AutoStr = Field(
        default="auto", description="'auto' (cuda > mps > xpu > cpu) or a torch device string."
    )
    dtype: AutoStr = Field(
        default="auto", description="'auto', 'float32', 'bfloat16' or 'float16'."
    )
    quantize: str | None = Field(
        default=None, description="None, or 'int8' (dynamic quantization, CPU float32 only)."
    )
    backend: Backend = Field(
        default="torch",
        description="'torch', or 'onnx' (ONNX Runtime; exported once per model and cached).",
    )
    batch_size: int = Field(default=32, gt=0, description="Texts per forward pass.")
    show_progress: bool | None = Field(
        default=None, description="Progress bar: None shows one only for long encodes."
    )
    query_prompt: str | None = Field(
        default=None,
        description="Prefix for queries; None uses the checkpoint's ('query: ' for LFM2.5).",
    )
    document_prompt: str | None = Field(
        default=None,
        description="Prefix for documents; None uses the checkpoint's ('document: ').",
    )

    _encoder: DenseEncoder | None = PrivateAttr(default=None)

    @property
    def encoder(self) -> DenseEncoder:
        """The shared dense encoder (loaded on first access)."""
        if self._encoder is None:
            self._encoder = get_dense_encoder(
                self.model,
                device=self.device,
                dtype=self.dtype,
                quantize=self.quantize,
                backend=self.backend,
            )
        return self._encoder

    def warm_up(self) -> None:
        """Load the weights now instead of on the first call."""
        _ = self.encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Document vectors (document prompt applied), as lists of Python floats."""
        texts = check_texts(texts)
        if not texts:
            return []
        vectors = self.encoder.encode_documents(
            texts,
            prompt=self.document_prompt,
            batch_size=self.batch_size,
            show_progress=self.show_progress,
        )
        return vectors.tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        """The query vector (query prompt applied), as a list of Python floats."""
        text = check_query(text)
        vectors = self.encoder.encode_queries(
            [text], prompt=self.query_prompt, batch_size=self.batch_size, show_progress=False
        )
        return vectors[0].tolist()  # type: ignore[no-any-return]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """``embed_documents`` on a worker thread: the event loop is not blocked."""
        check_texts(texts)
        return await run_in_worker(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """``embed_query`` on a worker thread: the event loop is not blocked."""
        check_query(text)
        return await run_in_worker(self.embed_query, text)
