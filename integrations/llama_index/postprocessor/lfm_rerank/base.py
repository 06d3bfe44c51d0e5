"""``LFMColBERTRerank``: true ColBERT MaxSim reranking as a LlamaIndex node postprocessor.

Scores come from the core encoder: the checkpoint's projection head, its ``[Q]``/``[D]``
markers, query expansion and skiplist, and the summed MaxSim (``score="raw"``, the default)
or its mean over query vectors (``score="mean"``, in [-1, 1]).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Literal

from lfm_retrievers import get_colbert_encoder
from lfm_retrievers.seam import check_positive_int, check_str, run_in_worker
from lfm_retrievers.seam import require_extra as require

require("llama-index", "llama_index.core", "llama_index.postprocessor.lfm_rerank")

from llama_index.core.bridge.pydantic import (  # noqa: E402
    Field,
    PrivateAttr,
    field_validator,
)
from llama_index.core.callbacks import CBEventType, EventPayload  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.instrumentation.events.rerank import (  # noqa: E402
    ReRankEndEvent,
    ReRankStartEvent,
)
from llama_index.core.postprocessor.types import BaseNodePostprocessor  # noqa: E402
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle  # noqa: E402

from lfm_retrievers import (  # noqa: E402
    ColBERTEncoder,
    EmbeddingCache,
    rerank,
)

logger = logging.getLogger(__name__)
dispatcher = get_dispatcher(__name__)

DEFAULT_COLBERT_MODEL = "LiquidAI/LFM2.5-ColBERT-350M"
RETRIEVAL_SCORE_KEY = "retrieval_score"


class LFMColBERTRerank(BaseNodePostprocessor):
    """Rerank retrieved nodes by ColBERT MaxSim with LFM2.5-ColBERT (or LFM2-ColBERT).

    Returns copies of the ``top_n`` best nodes, best first, with the MaxSim score in
    ``NodeWithScore.score``; the inputs are never modified. Nodes whose score is ``None`` are
    reranked like any other; nodes without text cannot be scored and are left out with a warning.
    The weights load on first use (or ``warm_up()``), shared through ``lfm_retrievers.get_encoder``.

    Example:
        >>> from llama_index.postprocessor.lfm_rerank import LFMColBERTRerank
        >>> rerank = LFMColBERTRerank(top_n=3)
        >>> engine = index.as_query_engine(node_postprocessors=[rerank])  # doctest: +SKIP
    """

    model: str = Field(
        default=DEFAULT_COLBERT_MODEL,
        description="Hugging Face hub id, known short name or local ColBERT checkpoint folder.",
    )
    top_n: int = Field(default=5, description="Number of nodes to return, best first.")
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
    keep_retrieval_score: bool = Field(
        default=False,
        description=(
            "Keep the incoming score in metadata['retrieval_score'] of the returned copies."
        ),
    )
    score: Literal["raw", "mean"] = Field(
        default="raw",
        description="'raw': summed MaxSim (grows with query length); 'mean': raw / query vectors.",
    )
    batch_size: int = Field(default=32, gt=0, description="Documents per forward pass.")
    metadata_mode: MetadataMode = Field(
        default=MetadataMode.EMBED, description="Which node metadata goes into the scored text."
    )
    cache_documents: bool = Field(
        default=True,
        description="Keep document token vectors in a bounded in-memory cache across calls.",
    )

    _cache: EmbeddingCache | None = PrivateAttr(default=None)
    _encoder: ColBERTEncoder | None = PrivateAttr(default=None)
    _encoder_key: tuple[Any, ...] | None = PrivateAttr(default=None)

    @field_validator("model", mode="before")
    @classmethod
    def _path_to_str(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("device", "dtype", mode="before")
    @classmethod
    def _none_is_auto(cls, value: Any) -> Any:
        return "auto" if value is None else value

    @field_validator("top_n")
    @classmethod
    def _positive(cls, value: int) -> int:
        return check_positive_int(value, "top_n")

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex records for this class when serializing it."""
        return "LFMColBERTRerank"

    @property
    def encoder(self) -> ColBERTEncoder:
        """The shared ColBERT encoder (loaded on first access)."""
        key = (self.model, self.device, self.dtype, self.quantize, self.backend)
        if self._encoder is None or self._encoder_key != key:
            enc = get_colbert_encoder(
                self.model,
                device=self.device,
                dtype=self.dtype,
                quantize=self.quantize,
                backend=self.backend,
            )
            self._encoder = enc
            self._encoder_key = key
        return self._encoder

    def warm_up(self) -> None:
        """Load the weights now instead of on the first rerank."""
        _ = self.encoder

    def _document_cache(self) -> EmbeddingCache | None:
        if self.cache_documents and self._cache is None:
            self._cache = EmbeddingCache()
        return self._cache if self.cache_documents else None

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            msg = "LFMColBERTRerank needs a query: pass query_bundle= or query_str="
            raise ValueError(msg)
        check_positive_int(self.top_n, "top_n")  # the field can be reassigned after construction
        check_str(query_bundle.query_str, "query")
        if isinstance(nodes, NodeWithScore) or not isinstance(nodes, list | tuple):
            msg = f"nodes must be a list of NodeWithScore, got {type(nodes).__name__}"
            raise TypeError(msg)
        for i, item in enumerate(nodes):
            if not isinstance(item, NodeWithScore):
                msg = f"nodes[{i}] must be a NodeWithScore, got {type(item).__name__}"
                raise TypeError(msg)
            check_str(
                item.node.get_content(metadata_mode=MetadataMode.ALL),
                f"nodes[{i}] (id {item.node.node_id!r})",
            )
        if not nodes:
            return []
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle, nodes=nodes, top_n=self.top_n, model_name=self.model
            )
        )
        has_text = [
            bool(n.node.get_content(metadata_mode=MetadataMode.NONE).strip()) for n in nodes
        ]
        scorable = [n for n, ok in zip(nodes, has_text, strict=True) if ok]
        if len(scorable) < len(nodes):
            skipped = [n.node.node_id for n, ok in zip(nodes, has_text, strict=True) if not ok]
            logger.warning(
                "LFMColBERTRerank: skipping %d node(s) without text: %s", len(skipped), skipped
            )
        texts = [n.node.get_content(metadata_mode=self.metadata_mode) for n in scorable]

        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: self.model,
                EventPayload.QUERY_STR: query_bundle.query_str,
                EventPayload.TOP_K: self.top_n,
            },
        ) as event:
            results = rerank(
                self.encoder,
                query_bundle.query_str,
                texts,
                top_k=self.top_n,
                cache=self._document_cache(),
                score=self.score,
                batch_size=self.batch_size,
            )
            reranked = [self._scored_copy(scorable[r.index], float(r.score)) for r in results]
            event.on_end(payload={EventPayload.NODES: reranked})

        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked

    def _scored_copy(self, item: NodeWithScore, score: float) -> NodeWithScore:
        node = item.node.model_copy(deep=True)
        if self.keep_retrieval_score:
            node.metadata[RETRIEVAL_SCORE_KEY] = item.score
            for keys in (node.excluded_embed_metadata_keys, node.excluded_llm_metadata_keys):
                if RETRIEVAL_SCORE_KEY not in keys:
                    keys.append(RETRIEVAL_SCORE_KEY)
        return NodeWithScore(node=node, score=score)

    async def _apostprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        # The MaxSim forward pass runs in a worker thread; the event loop stays free.
        return await run_in_worker(self._postprocess_nodes, nodes, query_bundle)
