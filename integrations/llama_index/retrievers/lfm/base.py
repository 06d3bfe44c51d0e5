"""LlamaIndex retrievers over LFM2.5-ColBERT: an indexed one and a BM25 -> ColBERT one.

- ``LFMColBERTRetriever`` keeps a persistent ``lfm_retrievers.ColBERTIndex`` of the nodes
  (incremental add/delete, ``persist``/``from_persist_dir``, ``MetadataFilters``).
- ``LFMBM25ColBERTRetriever`` builds no vector index: rank-bm25 picks ``candidates`` among the
  nodes and ColBERT MaxSim reranks them; both scores are kept.

Both load the weights on first use through ``lfm_retrievers.get_encoder`` (one shared copy per
model, device and dtype) and return copies of the stored nodes, never the stored nodes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

from lfm_retrievers import get_colbert_encoder
from lfm_retrievers.seam import (
    ANY_GENERATION,
    FORMAT_PREFIX,
    open_folder,
    run_in_worker,
    save_folder,
)
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
)
from llama_index.core.storage.docstore.utils import doc_to_json, json_to_doc  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from lfm_retrievers import (  # noqa: E402
    BM25ColBERT,
    ColBERTEncoder,
    ColBERTIndex,
    EmbeddingCache,
    EncoderSpec,
)
from lfm_retrievers.seam import (  # noqa: E402
    FUSIONS,
    SCORE_MODES,
    check_choice,
    check_id_list,
    check_language,
    check_positive_int,
    check_str,
)

logger = logging.getLogger(__name__)

DEFAULT_COLBERT_MODEL = "LiquidAI/LFM2.5-ColBERT-350M"
DEFAULT_SIMILARITY_TOP_K = 10
DEFAULT_CANDIDATES = 100

PERSIST_FORMAT = f"{FORMAT_PREFIX}llama-index-colbert-retriever"
PERSIST_VERSION = 2
CONFIG_FILE = "retriever.json"  # version 1 (no checksums): replaced by persist, not read
NODES_FILE = "nodes.json"
INDEX_DIR = "colbert_index"

#: Score keys the BM25 -> ColBERT retriever adds to the returned copies' metadata.
BM25_SCORE_KEY = "bm25_score"
BM25_RANK_KEY = "bm25_rank"
COLBERT_SCORE_KEY = "colbert_score"
DENSE_SCORE_KEY = "dense_score"
DENSE_RANK_KEY = "dense_rank"

SUPPORTED_FILTER_OPERATORS = (
    FilterOperator.EQ,
    FilterOperator.NE,
    FilterOperator.GT,
    FilterOperator.GTE,
    FilterOperator.LT,
    FilterOperator.LTE,
    FilterOperator.IN,
    FilterOperator.NIN,
    FilterOperator.CONTAINS,
    FilterOperator.ANY,
    FilterOperator.ALL,
    FilterOperator.TEXT_MATCH,
    FilterOperator.TEXT_MATCH_INSENSITIVE,
    FilterOperator.IS_EMPTY,
)
SUPPORTED_FILTER_CONDITIONS = (FilterCondition.AND, FilterCondition.OR, FilterCondition.NOT)


# --------------------------------------------------------------------------- helpers


def _positive_int(name: str, value: object) -> int:
    return check_positive_int(value, name)


def _score_mode(score: object) -> Literal["raw", "mean"]:
    return cast(Literal["raw", "mean"], check_choice(score, "score", SCORE_MODES))


def _model_str(model: object) -> str:
    if not isinstance(model, str | os.PathLike):
        msg = f"model must be a hub id, a known name or a local folder path, got {model!r}"
        raise TypeError(msg)
    return os.fspath(model)


def _nodes_with_text(nodes: Iterable[BaseNode], who: str) -> list[BaseNode]:
    """Validate node types; drop (with one warning naming them) nodes that have no text."""
    if isinstance(nodes, BaseNode | str) or not isinstance(nodes, Iterable):
        msg = f"{who}: nodes must be a list of llama_index BaseNode, got {type(nodes).__name__}"
        raise TypeError(msg)
    kept: list[BaseNode] = []
    skipped: list[str] = []
    for i, node in enumerate(nodes):
        if not isinstance(node, BaseNode):
            hint = " (pass item.node)" if isinstance(node, NodeWithScore) else ""
            msg = f"{who}: nodes[{i}] must be a BaseNode, got {type(node).__name__}{hint}"
            raise TypeError(msg)
        check_str(
            node.get_content(metadata_mode=MetadataMode.ALL), f"nodes[{i}] (id {node.node_id!r})"
        )
        if node.get_content(metadata_mode=MetadataMode.NONE).strip():
            kept.append(node)
        else:
            skipped.append(node.node_id)
    if skipped:
        logger.warning("%s: skipping %d node(s) without text: %s", who, len(skipped), skipped)
    return kept


def _scored_copy(
    node: BaseNode, score: float, extra: Mapping[str, Any] | None = None
) -> NodeWithScore:
    """A deep copy of ``node`` with ``score``; ``extra`` metadata is hidden from embed/LLM text."""
    copy = node.model_copy(deep=True)
    for key, value in (extra or {}).items():
        copy.metadata[key] = value
        for keys in (copy.excluded_embed_metadata_keys, copy.excluded_llm_metadata_keys):
            if key not in keys:
                keys.append(key)
    return NodeWithScore(node=copy, score=score)


def check_filters(filters: object) -> MetadataFilters | None:
    """Validate ``MetadataFilters``: every operator and condition must be one this module runs."""
    if filters is None:
        return None
    if not isinstance(filters, MetadataFilters):
        msg = f"filters must be llama_index MetadataFilters or None, got {type(filters).__name__}"
        raise TypeError(msg)
    condition = filters.condition or FilterCondition.AND
    if condition not in SUPPORTED_FILTER_CONDITIONS:
        valid = ", ".join(c.value for c in SUPPORTED_FILTER_CONDITIONS)
        msg = f"filter condition {condition!r} is not supported; use one of: {valid}"
        raise ValueError(msg)
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            check_filters(f)
            continue
        if f.operator not in SUPPORTED_FILTER_OPERATORS:
            valid = ", ".join(op.value for op in SUPPORTED_FILTER_OPERATORS)
            msg = (
                f"filter operator {f.operator!r} on key {f.key!r} is not supported; "
                f"use one of: {valid}"
            )
            raise ValueError(msg)
    return filters


def _match_one(f: MetadataFilter, metadata: Mapping[str, Any]) -> bool:
    op, want = f.operator, f.value
    have = metadata.get(f.key)
    if op == FilterOperator.IS_EMPTY:
        return have is None or have == "" or have == []
    if have is None:
        return op in (FilterOperator.NE, FilterOperator.NIN)
    try:
        if op == FilterOperator.EQ:
            return bool(have == want)
        if op == FilterOperator.NE:
            return bool(have != want)
        if op == FilterOperator.GT:
            return bool(have > want)
        if op == FilterOperator.GTE:
            return bool(have >= want)
        if op == FilterOperator.LT:
            return bool(have < want)
        if op == FilterOperator.LTE:
            return bool(have <= want)
        if op == FilterOperator.IN:
            return have in want  # type: ignore[operator]
        if op == FilterOperator.NIN:
            return have not in want  # type: ignore[operator]
        if op == FilterOperator.CONTAINS:
            return want in have
        if op == FilterOperator.ANY:
            return any(v in have for v in want)  # type: ignore[union-attr]
        if op == FilterOperator.ALL:
            return all(v in have for v in want)  # type: ignore[union-attr]
        if op == FilterOperator.TEXT_MATCH:
            return isinstance(have, str) and isinstance(want, str) and want in have
        if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
            return isinstance(have, str) and isinstance(want, str) and want.lower() in have.lower()
    except TypeError:
        return False  # incomparable types (e.g. "2024" > 2020) do not match
    msg = f"filter operator {op!r} is not supported"  # unreachable after check_filters
    raise ValueError(msg)


def matches_filters(filters: MetadataFilters, metadata: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` passes ``filters`` (nested filters and and/or/not included)."""
    results = (
        matches_filters(f, metadata) if isinstance(f, MetadataFilters) else _match_one(f, metadata)
        for f in filters.filters
    )
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return all(results)
    if condition == FilterCondition.OR:
        return any(results)
    return not any(results)  # NOT: none of the filters match


# --------------------------------------------------------------------------- shared base


class _LFMColBERTRetrieverBase(BaseRetriever):
    """What both retrievers share.

    Configuration, the lazily shared encoder, ``similarity_top_k`` and async.
    """

    def __init__(
        self,
        *,
        model: str | os.PathLike[str],
        similarity_top_k: int,
        device: str | None,
        dtype: str | None,
        quantize: str | None,
        batch_size: int,
        backend: str = "torch",
        metadata_mode: MetadataMode | str,
        callback_manager: CallbackManager | None,
        object_map: dict[str, Any] | None,
        objects: list[IndexNode] | None,
        verbose: bool,
    ) -> None:
        super().__init__(
            callback_manager=callback_manager,
            object_map=object_map,
            objects=objects,
            verbose=verbose,
        )
        self.model = _model_str(model)
        self.similarity_top_k = similarity_top_k
        self.device = device or "auto"
        self.dtype = dtype or "auto"
        self.quantize = quantize
        self.backend = backend
        self.batch_size = _positive_int("batch_size", batch_size)
        self.metadata_mode = MetadataMode(metadata_mode)
        self._encoder: ColBERTEncoder | None = None
        self._encoder_key: tuple[Any, ...] | None = None
        self._lock = threading.RLock()

    @property
    def similarity_top_k(self) -> int:
        """How many nodes a query returns (at most)."""
        return self._similarity_top_k

    @similarity_top_k.setter
    def similarity_top_k(self, value: int) -> None:
        self._similarity_top_k = _positive_int("similarity_top_k", value)

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
        """Load the weights (and build the index or BM25 stage) now instead of on first use."""
        _ = self.encoder
        self._prepare()

    def _prepare(self) -> None:
        raise NotImplementedError

    def _text(self, node: BaseNode) -> str:
        return node.get_content(metadata_mode=self.metadata_mode)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # Encoding and MaxSim run in a worker thread; the event loop stays free.
        return await run_in_worker(self._retrieve, query_bundle)


# --------------------------------------------------------------------------- indexed retriever


class LFMColBERTRetriever(_LFMColBERTRetrieverBase):
    """ColBERT retrieval over a persistent index of LlamaIndex nodes.

    The index is built from ``nodes`` on first use (or by ``persist``), not in the constructor.
    ``filters`` (``MetadataFilters``, evaluated on each node's metadata; every operator of
    ``SUPPORTED_FILTER_OPERATORS``, nested and/or/not) restrict the search before scoring.
    Scores are raw MaxSim sums (higher is better, not bounded to [0, 1]); ``score="mean"``
    divides them by the number of query vectors, giving [-1, 1] in the same order.

    Example:
        >>> retriever = LFMColBERTRetriever(nodes, similarity_top_k=5)  # doctest: +SKIP
        >>> retriever.retrieve("how do I return an item?")  # doctest: +SKIP
        >>> retriever.persist("./colbert-store")  # doctest: +SKIP
        >>> same = LFMColBERTRetriever.from_persist_dir("./colbert-store")  # doctest: +SKIP
    """

    def __init__(
        self,
        nodes: Sequence[BaseNode] | None = None,
        *,
        model: str | os.PathLike[str] = DEFAULT_COLBERT_MODEL,
        similarity_top_k: int = DEFAULT_SIMILARITY_TOP_K,
        filters: MetadataFilters | None = None,
        score: Literal["raw", "mean"] = "raw",
        device: str | None = "auto",
        dtype: str | None = "auto",
        quantize: str | None = None,
        backend: str = "torch",
        batch_size: int = 32,
        metadata_mode: MetadataMode | str = MetadataMode.EMBED,
        callback_manager: CallbackManager | None = None,
        object_map: dict[str, Any] | None = None,
        objects: list[IndexNode] | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(
            model=model,
            similarity_top_k=similarity_top_k,
            device=device,
            dtype=dtype,
            quantize=quantize,
            backend=backend,
            batch_size=batch_size,
            metadata_mode=metadata_mode,
            callback_manager=callback_manager,
            object_map=object_map,
            objects=objects,
            verbose=verbose,
        )
        self.filters = filters
        self.score = _score_mode(score)
        self._nodes: dict[str, BaseNode] = {}
        self._pending: list[str] = []  # node ids stored but not yet encoded into the index
        self._index: ColBERTIndex | None = None
        self._index_dir: Path | None = None  # a persisted index, loaded on first use
        self._persisted: dict[str, int] = {}  # generation of each folder read or written
        if nodes is not None:
            self.add_nodes(nodes)

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex records for this class when serializing it."""
        return "LFMColBERTRetriever"

    @property
    def filters(self) -> MetadataFilters | None:
        """Metadata filters applied to every query (None: no filtering)."""
        return self._filters

    @filters.setter
    def filters(self, value: MetadataFilters | None) -> None:
        self._filters = check_filters(value)

    @property
    def node_ids(self) -> list[str]:
        """Ids of the indexed nodes, in insertion order."""
        return list(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def add_nodes(self, nodes: Sequence[BaseNode]) -> list[str]:
        """Add nodes (copied) to the index; returns the ids added.

        Nodes without text are skipped.
        """
        with self._lock:
            kept = _nodes_with_text(nodes, type(self).__name__)
            ids = [n.node_id for n in kept]
            clash = sorted({i for i in ids if i in self._nodes or ids.count(i) > 1})
            if clash:
                msg = f"node ids must be unique; already present or repeated: {clash[:10]}"
                raise ValueError(msg)
            copies = [node.model_copy(deep=True) for node in kept]
            if ids and (self._index is not None or self._index_dir is not None):
                # Encoded first: a node that fails leaves nothing behind (no ghost node).
                self._index_nodes(self._ensure_index(), copies)
            elif ids:
                self._pending.extend(ids)
            for node in copies:
                self._nodes[node.node_id] = node
            return ids

    def delete_nodes(self, node_ids: Sequence[str]) -> None:
        """Remove nodes by id from the index (unknown ids raise ValueError, nothing changes)."""
        node_ids = [node_ids] if isinstance(node_ids, str) else check_id_list(node_ids, "node_ids")
        with self._lock:
            missing = [i for i in node_ids if i not in self._nodes]
            if missing:
                msg = f"unknown node ids: {missing[:10]}"
                raise ValueError(msg)
            gone = set(node_ids)
            indexed = [i for i in gone if i not in self._pending]
            if indexed and (self._index is not None or self._index_dir is not None):
                self._load_index().delete(indexed)
            self._pending = [i for i in self._pending if i not in gone]
            for i in gone:
                del self._nodes[i]

    def _load_index(self) -> ColBERTIndex:
        """The index, opened or created (pending nodes not yet added)."""
        with self._lock:
            if self._index is None:
                if self._index_dir is not None:
                    self._index = ColBERTIndex.load(self._index_dir, encoder=self.encoder)
                    self._index_dir = None
                else:
                    self._index = ColBERTIndex(self.encoder)
            return self._index

    def _ensure_index(self) -> ColBERTIndex:
        with self._lock:
            self._load_index()
            assert self._index is not None
            if self._pending:  # cleared only once they are all in the index
                self._index_nodes(self._index, [self._nodes[i] for i in self._pending])
                self._pending = []
            return self._index

    def _index_nodes(self, index: ColBERTIndex, nodes: Sequence[BaseNode]) -> None:
        """Encode the nodes' embed text and add the vectors; the text lives in the nodes."""
        vectors = self.encoder.encode_documents(
            [self._text(n) for n in nodes], batch_size=self.batch_size, show_progress=False
        )
        index.add_vectors(vectors, ids=[n.node_id for n in nodes])

    def _prepare(self) -> None:
        self._ensure_index()

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        k = _positive_int("similarity_top_k", self.similarity_top_k)
        with self._lock:  # a consistent snapshot against concurrent add/delete
            nodes = dict(self._nodes)
            if not nodes:
                return []
            allowed = None
            if self._filters is not None and self._filters.filters:
                allowed = [
                    i for i, n in nodes.items() if matches_filters(self._filters, n.metadata)
                ]
                if not allowed:
                    return []
            index = self._ensure_index()
        hits = index.search(
            query_bundle.query_str,
            k=k,
            filter=None if allowed is None else {"ids": allowed},
            score=self.score,
        )
        return [_scored_copy(nodes[h.id], float(h.score)) for h in hits if h.id in nodes]

    # ----------------------------------------------------------------- persistence

    def persist(self, persist_dir: str | os.PathLike[str]) -> None:
        """Write the index, the nodes and this configuration to ``persist_dir``.

        Crash-safe and checksummed like every saved folder of lfm-retrievers
        (``manifest.json``; see ``lfm_retrievers.ColBERTIndex.save``): JSON and the index's
        own files, no pickle, each text stored once (in ``nodes.json``). An existing folder is
        replaced only if it is an earlier ``persist`` of a retriever; if another process
        persisted it since this retriever read or wrote it, ``ConcurrentWriteError``.
        """
        with self._lock:
            index = self._ensure_index()
            nodes = [doc_to_json(n) for n in self._nodes.values()]
            config = {
                "similarity_top_k": self.similarity_top_k,
                "score": self.score,
                "batch_size": self.batch_size,
                "metadata_mode": self.metadata_mode.value,
                "filters": None if self._filters is None else self._filters.model_dump(mode="json"),
            }

            def write(tmp: Path) -> dict[str, Any]:
                index.save(tmp / INDEX_DIR)
                (tmp / NODES_FILE).write_text(json.dumps(nodes, ensure_ascii=False), "utf-8")
                return config

            target = os.path.abspath(os.fspath(persist_dir))
            saved = save_folder(
                persist_dir,
                write,
                format=PERSIST_FORMAT,
                format_version=PERSIST_VERSION,
                model={"name": self.model, "fingerprint": self.encoder.fingerprint},
                expected_generation=self._persisted.get(target, ANY_GENERATION),
                replaces=(CONFIG_FILE,),
                what="LFMColBERTRetriever",
            )
            self._persisted[target] = saved.generation

    @classmethod
    def from_persist_dir(
        cls,
        persist_dir: str | os.PathLike[str],
        *,
        model: str | os.PathLike[str] | None = None,
        similarity_top_k: int | None = None,
        filters: MetadataFilters | None = None,
        device: str | None = "auto",
        dtype: str | None = "auto",
        quantize: str | None = None,
        backend: str = "torch",
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> LFMColBERTRetriever:
        """Restore a retriever written by ``persist``; the weights still load on first use.

        ``model`` overrides the stored model name (e.g. the same checkpoint in another folder);
        ``similarity_top_k`` and ``filters`` override the stored ones when given.
        """
        if not Path(persist_dir).exists():
            msg = f"{persist_dir} does not exist (no persisted LFMColBERTRetriever)"
            raise FileNotFoundError(msg)
        root, config = open_folder(
            persist_dir,
            formats=(PERSIST_FORMAT,),
            max_version=PERSIST_VERSION,
            what="LFMColBERTRetriever",
        )
        if not (root / INDEX_DIR).is_dir():
            msg = f"cannot load {root}: the {INDEX_DIR} folder is missing"
            raise ValueError(msg)
        stored_filters = config.get("filters")
        retriever = cls(
            model=config["model"]["name"] if model is None else model,
            similarity_top_k=config["similarity_top_k"]
            if similarity_top_k is None
            else similarity_top_k,
            filters=filters
            if filters is not None
            else (
                None if stored_filters is None else MetadataFilters.model_validate(stored_filters)
            ),
            score=config["score"],
            device=device,
            dtype=dtype,
            quantize=quantize,
            backend=backend,
            batch_size=config["batch_size"],
            metadata_mode=config["metadata_mode"],
            callback_manager=callback_manager,
            verbose=verbose,
        )
        for data in json.loads((root / NODES_FILE).read_text("utf-8")):
            node = json_to_doc(data)
            retriever._nodes[node.node_id] = node
        retriever._index_dir = root / INDEX_DIR
        retriever._persisted[os.path.abspath(os.fspath(persist_dir))] = int(config["generation"])
        return retriever


# --------------------------------------------------------------------------- BM25 -> ColBERT


class LFMBM25ColBERTRetriever(_LFMColBERTRetrieverBase):
    """BM25 candidates over the given nodes, reranked by ColBERT MaxSim; no vector index.

    rank-bm25 picks the ``candidates`` best nodes for the query, ColBERT scores only those
    (their token vectors are cached across queries), and the ``similarity_top_k`` best come back
    with the ColBERT score in ``NodeWithScore.score`` (raw MaxSim, or ``score="mean"``; the fused
    score with ``fusion="rrf"`` / ``"weighted"``) and ``bm25_score``, ``bm25_rank`` and
    ``colbert_score`` in the copies' metadata (hidden from the embed and LLM text; None where
    a stage did not return the node). ``similarity_top_k`` nodes come back whenever there are
    that many: when fewer than ``candidates`` nodes share a term with the query, zero-score
    nodes fill the pool (rank-bm25's ``get_top_n``) and ColBERT ranks them;
    ``require_match=True`` keeps only nodes sharing a term (a query matching nothing then
    returns ``[]``). ``language`` stems BM25 terms (an ISO 639-1 code or ``"auto"``).
    ``dense_model`` adds the dense model's top ``dense_candidates`` nodes to the pool (with
    ``dense_score`` / ``dense_rank`` in the metadata); every node is encoded once, on the first
    query.

    Example:
        >>> retriever = LFMBM25ColBERTRetriever(  # doctest: +SKIP
        ...     nodes, similarity_top_k=5, candidates=50
        ... )
        >>> engine = RetrieverQueryEngine.from_args(retriever, llm=llm)  # doctest: +SKIP
    """

    def __init__(
        self,
        nodes: Sequence[BaseNode],
        *,
        model: str | os.PathLike[str] = DEFAULT_COLBERT_MODEL,
        similarity_top_k: int = DEFAULT_SIMILARITY_TOP_K,
        candidates: int = DEFAULT_CANDIDATES,
        fusion: Literal["rrf", "weighted"] | None = None,
        score: Literal["raw", "mean"] = "raw",
        analyzer: str = "default",
        language: str | None = None,
        require_match: bool = False,
        dense_model: str | os.PathLike[str] | None = None,
        dense_candidates: int = DEFAULT_CANDIDATES,
        device: str | None = "auto",
        dtype: str | None = "auto",
        quantize: str | None = None,
        backend: str = "torch",
        batch_size: int = 32,
        metadata_mode: MetadataMode | str = MetadataMode.EMBED,
        callback_manager: CallbackManager | None = None,
        object_map: dict[str, Any] | None = None,
        objects: list[IndexNode] | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(
            model=model,
            similarity_top_k=similarity_top_k,
            device=device,
            dtype=dtype,
            quantize=quantize,
            backend=backend,
            batch_size=batch_size,
            metadata_mode=metadata_mode,
            callback_manager=callback_manager,
            object_map=object_map,
            objects=objects,
            verbose=verbose,
        )
        self.candidates = _positive_int("candidates", candidates)
        self.fusion = check_choice(fusion, "fusion", FUSIONS)
        self.score = _score_mode(score)
        self.analyzer = analyzer
        self.language = check_language(language)
        if not isinstance(require_match, bool):
            msg = f"require_match must be True or False, got {require_match!r}"
            raise TypeError(msg)
        self.require_match = require_match
        if dense_model is not None and not isinstance(dense_model, str | os.PathLike):
            msg = f"dense_model must be a model name or path, got {type(dense_model).__name__}"
            raise TypeError(msg)
        self.dense_model = None if dense_model is None else os.fspath(dense_model)
        self.dense_candidates = _positive_int("dense_candidates", dense_candidates)
        kept = _nodes_with_text(nodes, type(self).__name__)
        ids = [n.node_id for n in kept]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            msg = f"node ids must be unique; repeated: {repeated[:10]}"
            raise ValueError(msg)
        self._nodes: dict[str, BaseNode] = {n.node_id: n.model_copy(deep=True) for n in kept}
        self._cache = EmbeddingCache()
        self._pipeline: BM25ColBERT | None = None

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex records for this class when serializing it."""
        return "LFMBM25ColBERTRetriever"

    def _ensure_pipeline(self) -> BM25ColBERT:
        with self._lock:
            if self._pipeline is None:
                self._pipeline = BM25ColBERT(
                    self.encoder,
                    [self._text(n) for n in self._nodes.values()],
                    ids=list(self._nodes),
                    candidates=self.candidates,
                    fusion=self.fusion,  # type: ignore[arg-type]  # checked against FUSIONS
                    score=self.score,
                    cache=self._cache,
                    analyzer=self.analyzer,
                    language=self.language,
                    require_match=self.require_match,
                    dense=None
                    if self.dense_model is None
                    else EncoderSpec(
                        self.dense_model,
                        device=self.device,
                        dtype=self.dtype,
                        quantize=self.quantize,
                        backend=self.backend,
                    ),
                    dense_candidates=self.dense_candidates,
                )
            return self._pipeline

    def _prepare(self) -> None:
        self._ensure_pipeline()

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        k = _positive_int("similarity_top_k", self.similarity_top_k)
        if not self._nodes:
            return []
        hits = self._ensure_pipeline().search(query_bundle.query_str, k=k)
        return [
            _scored_copy(
                self._nodes[h.id],
                float(h.score),
                {
                    BM25_SCORE_KEY: h.bm25_score,
                    BM25_RANK_KEY: h.bm25_rank,
                    COLBERT_SCORE_KEY: h.colbert_score,
                    **(
                        {}
                        if self.dense_model is None
                        else {DENSE_SCORE_KEY: h.dense_score, DENSE_RANK_KEY: h.dense_rank}
                    ),
                },
            )
            for h in hits
        ]
