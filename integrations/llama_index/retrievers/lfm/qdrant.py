"""``LFMQdrantRetriever``: LlamaIndex retrieval from a Qdrant collection of ColBERT multivectors.

A thin shell over :class:`lfm_retrievers.QdrantIndex`, which owns the collection layout
(llama-index-vector-stores-qdrant cannot hold ColBERT multivectors). The payload is the same
for every framework (text, metadata, id), so a collection written by LangChain or Haystack
serves this retriever too: nodes come back as ``TextNode`` with their id, text and metadata.
``MetadataFilters`` are translated to a Qdrant ``Filter`` and evaluated by the engine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from lfm_retrievers.seam import require_extra as require

require("llama-index", "llama_index.core", "llama_index.retrievers.lfm")

from llama_index.core.callbacks import CallbackManager  # noqa: E402
from llama_index.core.retrievers import BaseRetriever  # noqa: E402
from llama_index.core.schema import (  # noqa: E402
    BaseNode,
    IndexNode,
    MetadataMode,
    NodeWithScore,
    QueryBundle,
    TextNode,
)
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from lfm_retrievers import EncoderSpec, QdrantIndex  # noqa: E402
from lfm_retrievers.seam import SCORE_MODES, SEARCH_MODES, payload_key, run_in_worker  # noqa: E402

_RANGE_BOUND = {
    FilterOperator.GT: "gt",
    FilterOperator.GTE: "gte",
    FilterOperator.LT: "lt",
    FilterOperator.LTE: "lte",
}


def qdrant_filter(filters: MetadataFilters | None, payload_key: Callable[[str], str]) -> Any:
    """Translate ``MetadataFilters`` to a ``qdrant_client.models.Filter`` (``None``: no filter).

    Semantics follow the in-process retriever's matcher: a node without the key fails every
    operator except ``!=``, ``nin`` and ``is_empty``; ``not`` keeps nodes that match none of
    its filters. ``text_match`` is Qdrant's ``MatchText``; ``text_match_insensitive`` has no
    Qdrant equivalent and is a ``ValueError``. llama-index-vector-stores-qdrant's own builder
    is private and targets its own payload layout, hence this one.
    """
    if filters is None:
        return None
    if not isinstance(filters, MetadataFilters):
        msg = f"filters must be llama_index MetadataFilters or None, got {type(filters).__name__}"
        raise TypeError(msg)
    if not filters.filters:
        return None
    from qdrant_client import models as m

    def one(value: Any, name: str, key: str, op: str) -> Any:
        if isinstance(value, bool | str | int):
            return m.FieldCondition(key=name, match=m.MatchValue(value=value))
        if isinstance(value, float):
            return m.FieldCondition(key=name, range=m.Range(gte=value, lte=value))
        msg = f"filter on {key!r} ({op}): value must be str, int, float or bool, got {value!r}"
        raise ValueError(msg)

    def cond(f: MetadataFilter) -> Any:
        name, op, value = payload_key(f.key), f.operator, f.value
        if op in (FilterOperator.EQ, FilterOperator.CONTAINS):
            return one(value, name, f.key, op.value)
        if op == FilterOperator.NE:
            return m.Filter(must_not=[one(value, name, f.key, op.value)])
        if op in _RANGE_BOUND:
            if isinstance(value, bool) or not isinstance(value, int | float):
                msg = f"filter on {f.key!r} ({op.value}): value must be a number, got {value!r}"
                raise ValueError(msg)
            return m.FieldCondition(key=name, range=m.Range(**{_RANGE_BOUND[op]: value}))
        if op in (FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY, FilterOperator.ALL):
            if not isinstance(value, list):
                msg = f"filter on {f.key!r} ({op.value}): value must be a list, got {value!r}"
                raise ValueError(msg)
            parts = [one(v, name, f.key, op.value) for v in value]
            if op == FilterOperator.ALL:
                return m.Filter(must=parts)
            anyof = m.Filter(should=parts) if parts else m.HasIdCondition(has_id=[])
            return m.Filter(must_not=[anyof]) if op == FilterOperator.NIN else anyof
        if op == FilterOperator.IS_EMPTY:
            return m.Filter(
                should=[
                    m.IsEmptyCondition(is_empty=m.PayloadField(key=name)),
                    m.FieldCondition(key=name, match=m.MatchValue(value="")),
                ]
            )
        if op == FilterOperator.TEXT_MATCH:
            return m.FieldCondition(key=name, match=m.MatchText(text=str(value)))
        msg = f"filter operator {op.value!r} on {f.key!r} is not supported on Qdrant"
        raise ValueError(msg)

    def group(fs: MetadataFilters) -> Any:
        parts = [group(f) if isinstance(f, MetadataFilters) else cond(f) for f in fs.filters]
        condition = fs.condition or FilterCondition.AND
        if condition == FilterCondition.OR:
            return m.Filter(should=parts)
        if condition == FilterCondition.NOT:
            return m.Filter(must_not=parts)
        return m.Filter(must=parts)

    return group(filters)


class LFMQdrantRetriever(BaseRetriever):
    """ColBERT retrieval from a Qdrant collection (optionally with dense and BM25 prefetch).

    Args:
        nodes: nodes to upload on first use (ids kept; an id already stored is replaced).
        client: a ``qdrant_client.QdrantClient``, or a URL, ``":memory:"`` or a local folder.
        collection_name: the collection (created on first use when missing).
        model: ColBERT model; ``None``: the collection's, else the package default.
        dense_model: dense model for dense/hybrid modes; ``None``: the collection's, else none.
        mode: one of ``SEARCH_MODES`` (default: hybrid with a dense model, else bm25+colbert).
        similarity_top_k: nodes per query.
        candidates: prefetch size per first stage.
        filters: ``MetadataFilters`` evaluated by the engine.
        score: ``"raw"`` MaxSim sum or ``"mean"`` (÷ query vectors).
        device: ``"auto"`` (cuda > mps > xpu > cpu) or a torch device string.
        dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        quantize: ``None`` or ``"int8"`` (dynamic quantization, CPU float32 only).
        backend: ``"torch"``, or ``"onnx"`` (ONNX Runtime; exported once and cached).
        language: BM25 vector stemming, an ISO 639-1 code or ``"auto"``; ``None``: the
            collection's.
        batch_size: documents per forward pass when uploading.

    Example:
        >>> from qdrant_client import QdrantClient  # doctest: +SKIP
        >>> retriever = LFMQdrantRetriever(
        ...     nodes, client=QdrantClient(url="http://localhost:6333"), collection_name="faq"
        ... )  # doctest: +SKIP
        >>> retriever.retrieve("how do I return an item?")  # doctest: +SKIP
    """

    def __init__(
        self,
        nodes: Sequence[BaseNode] | None = None,
        *,
        client: Any,
        collection_name: str,
        model: str | os.PathLike[str] | None = None,
        dense_model: str | os.PathLike[str] | None = None,
        mode: str | None = None,
        similarity_top_k: int = 10,
        candidates: int = 100,
        filters: MetadataFilters | None = None,
        score: str = "raw",
        device: str | None = "auto",
        dtype: str | None = "auto",
        quantize: str | None = None,
        backend: str = "torch",
        language: str | None = None,
        batch_size: int = 32,
        callback_manager: CallbackManager | None = None,
        object_map: dict[str, Any] | None = None,
        objects: list[IndexNode] | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(
            callback_manager=callback_manager,
            object_map=object_map,
            objects=objects,
            verbose=verbose,
        )
        if mode is not None and mode not in SEARCH_MODES:
            msg = f"unknown mode {mode!r}; choose one of {list(SEARCH_MODES)}"
            raise ValueError(msg)
        if score not in SCORE_MODES:
            msg = f"score must be one of {list(SCORE_MODES)}, got {score!r}"
            raise ValueError(msg)
        for name, value in (("model", model), ("dense_model", dense_model)):
            if value is not None and not isinstance(value, str | os.PathLike):
                msg = f"{name} must be a hub id, a local folder or None, got {type(value).__name__}"
                raise TypeError(msg)

        def spec(name: str | os.PathLike[str] | None) -> EncoderSpec | None:
            if name is None:
                return None
            return EncoderSpec(
                os.fspath(name), device or "auto", dtype or "auto", quantize, backend
            )

        self._index = QdrantIndex(
            client,
            collection_name,
            colbert=spec(model),
            dense=spec(dense_model),
            language=language,
            batch_size=batch_size,
        )
        self.mode = mode
        self.similarity_top_k = similarity_top_k
        self.candidates = candidates
        self.score = score
        self.filters = filters
        self._lock = threading.RLock()
        self._pending: list[BaseNode] = []
        if nodes is not None:
            self._pending = self._check_nodes(nodes)

    @classmethod
    def class_name(cls) -> str:
        """The name ``to_dict`` records."""
        return "LFMQdrantRetriever"

    @property
    def index(self) -> QdrantIndex:
        """The underlying ``lfm_retrievers.QdrantIndex``."""
        return self._index

    @property
    def similarity_top_k(self) -> int:
        """How many nodes a query returns (at most)."""
        return self._similarity_top_k

    @similarity_top_k.setter
    def similarity_top_k(self, value: int) -> None:
        self._similarity_top_k = _positive("similarity_top_k", value)

    @property
    def candidates(self) -> int:
        """Prefetch size per first stage."""
        return self._candidates

    @candidates.setter
    def candidates(self, value: int) -> None:
        self._candidates = _positive("candidates", value)

    @property
    def filters(self) -> MetadataFilters | None:
        """Metadata filters applied to every query (validated when set)."""
        return self._filters

    @filters.setter
    def filters(self, value: MetadataFilters | None) -> None:
        self._native_filter = qdrant_filter(value, payload_key)
        self._filters = value

    @staticmethod
    def _check_nodes(nodes: Sequence[BaseNode]) -> list[BaseNode]:
        if isinstance(nodes, BaseNode | str) or not isinstance(nodes, Sequence):
            msg = f"nodes must be a list of llama_index BaseNode, got {type(nodes).__name__}"
            raise TypeError(msg)
        for i, node in enumerate(nodes):
            if not isinstance(node, BaseNode):
                msg = f"nodes[{i}] must be a BaseNode, got {type(node).__name__}"
                raise TypeError(msg)
        return list(nodes)

    def add_nodes(self, nodes: Sequence[BaseNode]) -> list[str]:
        """Encode and upload nodes (text without metadata, metadata as payload); returns ids."""
        kept = self._check_nodes(nodes)
        with self._lock:
            self._flush()
            return self._upload(kept)

    def _upload(self, nodes: list[BaseNode]) -> list[str]:
        if not nodes:
            return []
        return self._index.add(
            [n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes],
            ids=[n.node_id for n in nodes],
            metadata=[dict(n.metadata) for n in nodes],
        )

    def _flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            self._upload(pending)

    def delete_nodes(self, node_ids: Sequence[str]) -> None:
        """Remove nodes by id (unknown ids raise KeyError; nothing is deleted)."""
        ids = [node_ids] if isinstance(node_ids, str) else list(node_ids)
        with self._lock:
            self._flush()
            self._index.delete(ids)

    def warm_up(self) -> None:
        """Connect, load the models and upload the constructor's nodes now."""
        with self._lock:
            self._flush()
            _ = self._index.record

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        with self._lock:
            self._flush()
        hits = self._index.search(
            query_bundle.query_str,
            k=self.similarity_top_k,
            mode=self.mode,
            candidates=self.candidates,
            filter=self._native_filter,
            score=self.score,
        )
        return [
            NodeWithScore(node=TextNode(id_=h.id, text=h.text, metadata=h.metadata), score=h.score)
            for h in hits
        ]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await run_in_worker(self._retrieve, query_bundle)


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        msg = f"{name} must be a positive int, got {value!r}"
        raise ValueError(msg)
    return value
